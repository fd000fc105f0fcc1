"""Stored video: what a file holds (`probe`) and its frames sampled at a steady rate (`sample_frames`).

Decoding is PyAV's (FFmpeg's libraries in the wheel), so any container and codec FFmpeg reads is
accepted, a superset of Rekognition's H.264 in MP4/MOV. Every decoded frame is read (inter-frame
codecs need them all) but only the sampled ones are converted to RGB, which is most of the cost.
Timestamps are the frames' presentation times in milliseconds from the start of the stream.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from numpy.typing import NDArray

from opsis.vision.types import DecodedImage

FORMAT_NAME = "video"
STILL_IMAGE_DEMUXERS = frozenset({"image2", "gif", "webp", "apng"})


class VideoError(Exception):
    """The file is not a video FFmpeg can read: no video stream, an unknown codec, or corrupt data."""


@dataclass(frozen=True)
class VideoMetadata:
    """What a stored video is: its stream's codec, size, rate and duration (`ops.shapes.video_metadata` renders it)."""

    codec: str
    format: str
    duration_millis: int
    frame_rate: float
    frame_width: int
    frame_height: int
    color_range: str  # FULL or LIMITED
    frame_count: int  # as the container declares it, else estimated from duration x rate


@dataclass(frozen=True)
class VideoFrame:
    number: int  # 0-based position among all of the stream's frames
    timestamp_millis: int
    image: DecodedImage


def probe(path: Path) -> VideoMetadata:
    """The stream's metadata, read from the container (no frame is decoded)."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError("The file holds no video stream")
            # FFmpeg reads a photo as a one-frame "video" through its image demuxers.
            if container.format.name in STILL_IMAGE_DEMUXERS or container.format.name.endswith("_pipe"):
                raise VideoError(f"The file is a still image ({container.format.long_name}), not a video")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or Fraction(0)
            if stream.duration is not None and stream.time_base is not None:
                seconds = float(stream.duration * stream.time_base)
            else:
                seconds = (container.duration or 0) / av.time_base
            frames = stream.frames or round(seconds * float(rate))
            return VideoMetadata(
                codec=stream.codec_context.name,
                format=container.format.long_name,
                duration_millis=round(seconds * 1000),
                frame_rate=round(float(rate), 3),
                frame_width=stream.codec_context.width,
                frame_height=stream.codec_context.height,
                # FFmpeg's AVCOL_RANGE_JPEG (2) is full range; unspecified (0) and MPEG (1) are limited.
                color_range="FULL" if stream.codec_context.color_range == 2 else "LIMITED",
                frame_count=frames,
            )
    except av.FFmpegError as error:
        raise VideoError(f"The file is not a readable video: {error}") from error


def audio_metadata(path: Path) -> list[dict[str, object]]:
    """Rekognition's `AudioMetadata` of each audio stream (codec, duration, sample rate, channels)."""
    try:
        with av.open(str(path)) as container:
            return [
                {
                    "Codec": stream.codec_context.name,
                    "DurationMillis": round(float(stream.duration * stream.time_base) * 1000)
                    if stream.duration is not None and stream.time_base
                    else round((container.duration or 0) / av.time_base * 1000),
                    "SampleRate": stream.codec_context.sample_rate,
                    "NumberOfChannels": stream.codec_context.channels,
                }
                for stream in container.streams.audio
            ]
    except av.FFmpegError as error:
        raise VideoError(f"The file is not a readable video: {error}") from error


def sample_frames(path: Path, rate: float, start_millis: int = 0) -> Iterator[VideoFrame]:
    """Frames at `rate` per second (every frame when the video has fewer), from `start_millis` on.

    A frame is taken when its timestamp reaches the next tick of the sampling clock, so the samples
    stay evenly spaced whatever the source's frame rate (constant or variable).
    """
    step = 1000.0 / rate
    next_tick = float(start_millis)
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            # Timestamps count from the stream's first frame (MP4 edit lists often start it later than 0).
            base = stream.time_base
            origin = float(stream.start_time * base) if stream.start_time is not None and base else 0.0
            for number, frame in enumerate(container.decode(stream)):
                millis = round((frame.time - origin) * 1000) if frame.time is not None else round(number * step)
                if millis + 0.5 < next_tick:
                    continue
                next_tick = max(next_tick + step, millis + step / 2)
                yield VideoFrame(number, millis, _upright(frame))
    except av.FFmpegError as error:
        raise VideoError(f"The video could not be decoded: {error}") from error
    except IndexError:
        raise VideoError("The file holds no video stream") from None


def _upright(frame: av.VideoFrame) -> DecodedImage:
    """RGB pixels turned by the stream's display rotation (phones record sideways with a rotation tag)."""
    pixels: NDArray[np.uint8] = np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)
    quarter_turns = round(getattr(frame, "rotation", 0) / 90) % 4
    if quarter_turns:
        pixels = np.ascontiguousarray(np.rot90(pixels, quarter_turns))
    return DecodedImage(pixels=pixels, format=FORMAT_NAME)
