"""Shots and technical cues in a stored video (the engine behind StartSegmentDetection).

One decoding pass measures every frame at a reduced size (about `ANALYSIS_WIDTH` pixels wide):

* **Hard cuts**: PySceneDetect's ContentDetector score (mean absolute change of hue, saturation and
  value between neighbouring frames, equal weights, threshold 27, scenes of at least 15 frames), computed
  here on the same small frames so every cut keeps its score for a confidence.
* **Dissolves and fades**: for a window of `DISSOLVE_WINDOW_SECONDS`, a frame midway through a dissolve
  is the mean of the window's ends; a window that spans a large change, whose middle frame is that mean,
  and whose neighbouring windows changed less marks a boundary at its middle. Its thresholds were set on
  benchmarks/video_segments.py's three gradual transitions, so treat its recall there as optimistic.
* A run of black frames at least `BLACK_SHOT_SECONDS` long is a shot of its own (a cut or fade to black
  and back gives two boundaries, at the run's edges).
* **BlackFrames**: Rekognition's `BlackFrame` filter. A pixel is black when its BT.709 luma is at most
  `MaxPixelThreshold` of the luma range above black (limited-range video is expanded to full range
  first, which is the same test as `16 + t * 219`); a frame is black when at least
  `MinCoveragePercentage` of its pixels are. Consecutive black frames make one cue.
* **ColorBars**: SMPTE/EBU bars (white, yellow, cyan, green, magenta, red, blue, left to right, full
  width or between the 1/8 side pillars of SMPTE RP 219) in the frame's upper half, flat colours only.

Not detected, so never emitted: OpeningCredits, EndCredits, Content, Slate and StudioLogo need a model
of what credits, slates and logos look like; pixel statistics cannot tell them from programme.

Confidence (Rekognition's 50-100 `SegmentConfidence`) is a margin, not a probability. A cut at the
ContentDetector threshold scores 50, twice the threshold or more 100; a dissolve scores from how well its
middle frame matches the blend and how steady its neighbours are; a black run from how far its
coverage exceeds `MinCoveragePercentage` (100 for pure black); bars from how close the bar colours are to
the ideal. The video's first shot starts at frame 0 for certain and scores 100. Callers apply
`MinSegmentConfidence` with `keep_confident`.

Frames are numbered from 0 in presentation order. A segment covers frames `start_frame` to
`end_frame` inclusive; its end time is the end of its last frame (the next frame's start), so
`duration_millis = end_millis - start_millis` and `duration_frames = end_frame - start_frame + 1`.
Timecodes count frames at the nominal rate, drop-frame (`HH:MM:SS;FF`) at 29.97 and 59.94.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from av.video.reformatter import VideoReformatter
from numpy.typing import NDArray

from opsis.vision.video import VideoError, VideoMetadata, probe

ANALYSIS_WIDTH = 256  # px; PySceneDetect's automatic downscale aims at this width too
CUT_THRESHOLD = 27.0  # ContentDetector's default `threshold`
MIN_SHOT_FRAMES = 15  # ContentDetector's default `min_scene_len`
DISSOLVE_WINDOW_SECONDS = 0.7  # dissolves up to about this long are found best
DISSOLVE_MIN_CHANGE = 20.0  # mean |BGR| difference across the window, 0-255
DISSOLVE_MAX_RESIDUAL = 0.4  # |middle - mean of ends| / change across the window
DISSOLVE_STEADINESS = 1.2  # change across the window / change across the windows before and after
BLACK_SHOT_SECONDS = 0.2  # a black run this long is a shot of its own
EDGE_FRAMES = 3  # other boundaries this close to a black run's edge are the same boundary
BARS_MIN_QUALITY = 0.8  # 1 - mean channel error of the seven bars, in units of the white bar's level
MIN_SEGMENT_CONFIDENCE = 50.0  # the model's SegmentConfidence minimum, and GetSegmentDetection's default
MODEL_VERSION = "opsis-segments-1.0"  # SelectedSegmentTypes[].ModelVersion
PROGRESS_EVERY = 50  # frames between progress reports

ProgressCallback = Callable[[int, int], None]  # (frames done, frames expected)

# BT.709 luma weights, for OpenCV's B, G, R channel order.
_LUMA_BGR = np.array([[0.0722, 0.7152, 0.2126]], dtype=np.float32)
# The bars' colours, left to right, as R, G, B on/off: white, yellow, cyan, green, magenta, red, blue.
_BARS_RGB = np.array([[1, 1, 1], [1, 1, 0], [0, 1, 1], [0, 1, 0], [1, 0, 1], [1, 0, 0], [0, 0, 1]], np.float32)
_DROP_FRAME_RATES = {Fraction(30000, 1001): 2, Fraction(60000, 1001): 4}  # frames dropped per minute


class SegmentType(StrEnum):
    TECHNICAL_CUE = "TECHNICAL_CUE"
    SHOT = "SHOT"


class TechnicalCueType(StrEnum):
    """Rekognition's TechnicalCueType; only COLOR_BARS and BLACK_FRAMES are detected (see the module doc)."""

    COLOR_BARS = "ColorBars"
    END_CREDITS = "EndCredits"
    BLACK_FRAMES = "BlackFrames"
    OPENING_CREDITS = "OpeningCredits"
    STUDIO_LOGO = "StudioLogo"
    SLATE = "Slate"
    CONTENT = "Content"


@dataclass(frozen=True)
class BlackFrameFilter:
    """Rekognition's `BlackFrame` filter, with its defaults."""

    max_pixel_threshold: float = 0.2  # share of the luma range above black
    min_coverage_percentage: float = 99.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_pixel_threshold <= 1.0:
            raise ValueError(f"max_pixel_threshold must be within 0-1, got {self.max_pixel_threshold}")
        if not 0.0 <= self.min_coverage_percentage <= 100.0:
            raise ValueError(f"min_coverage_percentage must be within 0-100, got {self.min_coverage_percentage}")


@dataclass(frozen=True)
class Segment:
    """One shot or technical cue; `end_frame` is the segment's last frame (inclusive)."""

    type: SegmentType
    confidence: float  # 50-100
    start_frame: int
    end_frame: int
    start_millis: int
    end_millis: int  # the end of the last frame
    start_timecode: str
    end_timecode: str  # the timecode of the end of the last frame
    duration_timecode: str
    shot_index: int | None = None  # shots only, from 0
    cue_type: TechnicalCueType | None = None  # technical cues only

    @property
    def duration_frames(self) -> int:
        return self.end_frame - self.start_frame + 1

    @property
    def duration_millis(self) -> int:
        return self.end_millis - self.start_millis


@dataclass(frozen=True)
class SegmentResult:
    """What `detect_segments` found: shots and cues each sorted by start, and the video they came from."""

    metadata: VideoMetadata
    frame_rate: Fraction  # exact, for timecodes
    frame_count: int  # frames actually decoded
    shots: list[Segment] = field(default_factory=list)
    technical_cues: list[Segment] = field(default_factory=list)


def keep_confident(segments: Iterable[Segment], min_confidence: float = MIN_SEGMENT_CONFIDENCE) -> list[Segment]:
    """The segments at or above `min_confidence` (Rekognition's `MinSegmentConfidence`)."""
    return [segment for segment in segments if segment.confidence >= min_confidence]


def smpte_timecode(frames: int, rate: Fraction) -> str:
    """`frames` as HH:MM:SS:FF at the nominal rate; drop-frame HH:MM:SS;FF at 29.97 and 59.94 fps."""
    nominal = max(1, round(rate))
    dropped = next((count for drop_rate, count in _DROP_FRAME_RATES.items() if abs(rate - drop_rate) < 0.001), 0)
    if dropped:
        # Frame numbers 0..dropped-1 are skipped at the start of every minute but each tenth.
        per_ten_minutes = 600 * nominal - 9 * dropped
        per_minute = 60 * nominal - dropped
        tens, rest = divmod(frames, per_ten_minutes)
        frames += 9 * dropped * tens + (dropped * ((rest - dropped) // per_minute) if rest > dropped else 0)
    hours, rest = divmod(frames, 3600 * nominal)
    minutes, rest = divmod(rest, 60 * nominal)
    seconds, frame = divmod(rest, nominal)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{';' if dropped else ':'}{frame:02d}"


@dataclass
class _Measures:
    """Per-frame statistics from the decoding pass; index i is frame i."""

    seconds: list[float] = field(default_factory=list)
    cut_score: list[float] = field(default_factory=list)  # ContentDetector's content_val against frame i-1
    black_share: list[float] = field(default_factory=list)  # share of black pixels, 0-1
    bars_quality: list[float] = field(default_factory=list)  # 0-1, 0 when the frame is not bars
    window_change: list[float] = field(default_factory=list)  # frames i-w and i
    window_residual: list[float] = field(default_factory=list)  # |frame i-w/2 - mean(i-w, i)|


def detect_segments(
    path: Path,
    *,
    types: Sequence[SegmentType] = (SegmentType.SHOT, SegmentType.TECHNICAL_CUE),
    black_frame: BlackFrameFilter | None = None,
    progress: ProgressCallback | None = None,
    analysis_width: int = ANALYSIS_WIDTH,
) -> SegmentResult:
    """Shots and technical cues of the video at `path`, every frame decoded once.

    `progress(done, expected)` is called every few frames; `expected` is the container's frame count,
    so `done` can end a little above or below it. Raises VideoError for a file FFmpeg cannot read.
    """
    metadata = probe(path)
    rate, measures = _measure(path, black_frame or BlackFrameFilter(), metadata.frame_count, progress, analysis_width)
    result = SegmentResult(metadata=metadata, frame_rate=rate, frame_count=len(measures.seconds))
    if not measures.seconds:
        return result
    clock = _Clock(rate, measures.seconds)
    black_runs = _runs(np.array(measures.black_share) > 0)
    if SegmentType.TECHNICAL_CUE in types:
        result.technical_cues.extend(_black_cues(measures, black_runs, black_frame or BlackFrameFilter(), clock))
        result.technical_cues.extend(_bars_cues(measures, clock))
        result.technical_cues.sort(key=lambda segment: segment.start_frame)
    if SegmentType.SHOT in types:
        result.shots.extend(_shots(measures, black_runs, rate, clock))
    return result


def _measure(
    path: Path, black_frame: BlackFrameFilter, expected: int, progress: ProgressCallback | None, width: int
) -> tuple[Fraction, _Measures]:
    measures = _Measures()
    black_level = 255.0 * black_frame.max_pixel_threshold
    min_black_share = black_frame.min_coverage_percentage / 100.0
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError("The file holds no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            rate = Fraction(stream.average_rate or stream.guessed_rate or 25)
            window = _dissolve_window(rate)
            recent: deque[NDArray[np.int16]] = deque(maxlen=window + 1)
            start, time_base = stream.start_time, stream.time_base
            origin = float(start * time_base) if start is not None and time_base is not None else 0.0
            size = _analysis_size(stream.codec_context.width, stream.codec_context.height, width)
            previous_hsv: NDArray[np.uint8] | None = None
            scaler = VideoReformatter()
            for number, frame in enumerate(container.decode(stream)):
                bgr = _small_bgr(frame, size, scaler)
                hsv: NDArray[np.uint8] = cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV).astype(np.uint8, copy=False)
                measures.seconds.append(frame.time - origin if frame.time is not None else number / float(rate))
                measures.cut_score.append(_content_score(hsv, previous_hsv))
                previous_hsv = hsv
                luma = cv2.transform(bgr, _LUMA_BGR)  # rounded to whole levels
                share = float(np.count_nonzero(luma <= black_level)) / luma.size
                measures.black_share.append(share if share >= min_black_share else 0.0)
                measures.bars_quality.append(_bars_quality(bgr))
                recent.append(bgr[::2, ::2].astype(np.int16))  # a quarter of the pixels is plenty
                change, residual = _window_change(recent, window)
                measures.window_change.append(change)
                measures.window_residual.append(residual)
                if progress is not None and (number + 1) % PROGRESS_EVERY == 0:
                    progress(number + 1, expected)
    except av.FFmpegError as error:
        raise VideoError(f"The video could not be decoded: {error}") from error
    if progress is not None:
        progress(len(measures.seconds), max(expected, len(measures.seconds)))
    return rate, measures


def _analysis_size(width: int, height: int, target: int) -> tuple[int, int]:
    scale = min(1.0, target / max(1, width))
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def _small_bgr(frame: av.VideoFrame, size: tuple[int, int], scaler: VideoReformatter) -> NDArray[np.uint8]:
    """The frame shrunk to `size` as full-range BGR.

    FFmpeg's scaler reads the frame's declared range (limited unless tagged full), so black is 0 either
    way. Naming the ranges explicitly takes a path six times slower, hence the defaults. One `scaler`
    serves every frame: `VideoFrame.reformat` would build a new scaling context for each.
    """
    small = scaler.reformat(frame, width=size[0], height=size[1], format="bgr24", interpolation="AREA")
    return small.to_ndarray().astype(np.uint8, copy=False)


def _content_score(hsv: NDArray[np.uint8], previous: NDArray[np.uint8] | None) -> float:
    """ContentDetector's `content_val`: mean |change| of H, S and V, averaged with equal weights."""
    if previous is None:
        return 0.0
    return float(cv2.absdiff(hsv, previous).mean())


def _window_change(recent: deque[NDArray[np.int16]], window: int) -> tuple[float, float]:
    """Change between the window's ends, and how far its middle frame is from the ends' mean."""
    if len(recent) <= window:
        return 0.0, 0.0
    first, middle, last = recent[0], recent[window // 2], recent[-1]
    change = float(np.abs(last - first).mean())
    residual = float(np.abs(2 * middle - first - last).mean()) / 2.0
    return change, residual


def _bars_quality(bgr: NDArray[np.uint8]) -> float:
    """How closely the upper half shows seven flat colour bars (0 when it does not at all)."""
    height, width = bgr.shape[:2]
    band = bgr[height // 10 : height // 2 : 2]
    best = 0.0
    for left, right in ((0, width), (width // 8, width - width // 8)):
        edges = np.linspace(left, right, 8)
        bars = []
        for start, stop in itertools.pairwise(edges):
            inner = band[:, int(start + (stop - start) * 0.2) : int(stop - (stop - start) * 0.2)]
            if inner.size == 0 or float(inner.std(axis=(0, 1)).max()) > 12.0:
                break
            bars.append(inner.mean(axis=(0, 1))[::-1])  # to R, G, B
        if len(bars) < 7:
            continue
        colours = np.array(bars, dtype=np.float32)
        level = float(colours[0].mean())
        if level < 100.0:
            continue
        error = float(np.abs(colours / level - _BARS_RGB).mean())
        best = max(best, 1.0 - error)
    return best


class _Clock:
    """Frame numbers to timestamps (from the frames' own times) and timecodes (at the nominal rate)."""

    def __init__(self, rate: Fraction, seconds: list[float]) -> None:
        self.rate = rate
        self.seconds = seconds

    def segment(
        self,
        type_: SegmentType,
        start: int,
        end: int,
        *,
        confidence: float,
        shot_index: int | None = None,
        cue_type: TechnicalCueType | None = None,
    ) -> Segment:
        after = self.seconds[end + 1] if end + 1 < len(self.seconds) else self.seconds[end] + 1 / float(self.rate)
        return Segment(
            type=type_,
            confidence=float(min(100.0, max(50.0, confidence))),
            start_frame=start,
            end_frame=end,
            start_millis=math.floor(self.seconds[start] * 1000 + 1e-6),
            end_millis=math.floor(after * 1000 + 1e-6),
            start_timecode=smpte_timecode(start, self.rate),
            end_timecode=smpte_timecode(end + 1, self.rate),
            duration_timecode=smpte_timecode(end - start + 1, self.rate),
            shot_index=shot_index,
            cue_type=cue_type,
        )


def _runs(flags: NDArray[np.bool_]) -> list[tuple[int, int]]:
    """(first, last) frame of each run of True."""
    padded = np.concatenate([[0], flags.astype(np.int8), [0]])
    steps = np.flatnonzero(np.diff(padded))
    return [(int(start), int(stop) - 1) for start, stop in zip(steps[::2], steps[1::2], strict=True)]


def _black_cues(
    measures: _Measures, runs: list[tuple[int, int]], black_frame: BlackFrameFilter, clock: _Clock
) -> list[Segment]:
    """One BlackFrames cue per run of black frames; confidence from the coverage above the minimum."""
    floor = black_frame.min_coverage_percentage / 100.0
    cues = []
    for start, end in runs:
        share = float(np.mean(measures.black_share[start : end + 1]))
        margin = 1.0 if floor >= 1.0 else (share - floor) / (1.0 - floor)
        confidence = 50.0 + 50.0 * margin
        cues.append(
            clock.segment(
                SegmentType.TECHNICAL_CUE, start, end, confidence=confidence, cue_type=TechnicalCueType.BLACK_FRAMES
            )
        )
    return cues


def _bars_cues(measures: _Measures, clock: _Clock) -> list[Segment]:
    """One ColorBars cue per run of bar frames; confidence from how close the colours are to ideal."""
    quality = np.array(measures.bars_quality)
    cues = []
    for start, end in _runs(quality >= BARS_MIN_QUALITY):
        margin = (float(quality[start : end + 1].mean()) - BARS_MIN_QUALITY) / (1.0 - BARS_MIN_QUALITY)
        confidence = 50.0 + 50.0 * margin
        cues.append(
            clock.segment(
                SegmentType.TECHNICAL_CUE, start, end, confidence=confidence, cue_type=TechnicalCueType.COLOR_BARS
            )
        )
    return cues


def _shots(measures: _Measures, black_runs: list[tuple[int, int]], rate: Fraction, clock: _Clock) -> list[Segment]:
    """Shots between the boundaries: the edges of black runs, hard cuts, then dissolves.

    A run of at least BLACK_SHOT_SECONDS of black frames is a shot of its own (a cut or fade to black
    and back); other boundaries inside such a run or within EDGE_FRAMES of its edges are dropped.
    """
    count = len(measures.seconds)
    long_runs = [(start, end) for start, end in black_runs if end - start + 1 >= BLACK_SHOT_SECONDS * float(rate)]
    boundaries: dict[int, float] = {}
    for start, end in long_runs:
        confidence = 50.0 + 50.0 * min(1.0, float(np.mean(measures.black_share[start : end + 1])))
        boundaries.update({edge: confidence for edge in (start, end + 1) if 0 < edge < count})

    def near_black(first: int, last: int) -> bool:
        return any(first <= end + EDGE_FRAMES and last >= start - EDGE_FRAMES for start, end in long_runs)

    for frame, confidence in _hard_cuts(np.array(measures.cut_score), black_runs).items():
        if not near_black(frame, frame):
            boundaries[frame] = confidence
    window = _dissolve_window(rate)
    for frame, confidence in _dissolves(measures, window).items():
        clear = all(abs(frame - cut) > window // 2 for cut in boundaries)
        if clear and not near_black(frame - window // 2, frame + window // 2):
            boundaries[frame] = confidence
    boundaries[0] = 100.0
    starts = sorted(boundaries)
    ends = [*(start - 1 for start in starts[1:]), count - 1]
    return [
        clock.segment(SegmentType.SHOT, start, end, confidence=boundaries[start], shot_index=index)
        for index, (start, end) in enumerate(zip(starts, ends, strict=True))
    ]


def _dissolve_window(rate: Fraction) -> int:
    """DISSOLVE_WINDOW_SECONDS in frames, even so the window has a middle frame."""
    return max(2, round(float(rate) * DISSOLVE_WINDOW_SECONDS / 2) * 2)


def _hard_cuts(scores: NDArray[np.float64], black_runs: list[tuple[int, int]]) -> dict[int, float]:
    """First frames of new shots at ContentDetector cuts, with confidences.

    A cut closer than MIN_SHOT_FRAMES to the previous one is dropped (ContentDetector's flash filter),
    unless either is the edge of a black run: cutting to black and back is two real boundaries.
    """
    black_edges = {start for start, _ in black_runs} | {end + 1 for _, end in black_runs}
    cuts: dict[int, float] = {}
    last = -MIN_SHOT_FRAMES
    for frame in np.flatnonzero(scores >= CUT_THRESHOLD).tolist():
        if frame - last < MIN_SHOT_FRAMES and frame not in black_edges and last not in black_edges:
            continue
        cuts[frame] = 50.0 + 50.0 * min(1.0, (float(scores[frame]) - CUT_THRESHOLD) / CUT_THRESHOLD)
        last = frame
    return cuts


def _dissolves(measures: _Measures, window: int) -> dict[int, float]:
    """Middle frames of gradual transitions (dissolves, fades), with confidences.

    A window [t - w, t] qualifies when its ends differ by at least DISSOLVE_MIN_CHANGE, its middle
    frame is within DISSOLVE_MAX_RESIDUAL of the ends' mean (a blend, unlike a hard cut's middle, which
    is one end), the windows before and after changed DISSOLVE_STEADINESS times less (unlike a pan),
    and no hard cut lies inside. Of a run of such windows, the one with the best-matching middle wins.
    """
    change = np.array(measures.window_change)
    residual = np.array(measures.window_residual)
    scores = np.array(measures.cut_score)
    ratio = np.divide(residual, change, out=np.ones_like(change), where=change > 0)
    count = len(change)
    candidates: dict[int, tuple[float, float]] = {}  # end frame -> (ratio, steadiness)
    for end in np.flatnonzero((change >= DISSOLVE_MIN_CHANGE) & (ratio <= DISSOLVE_MAX_RESIDUAL)).tolist():
        if scores[end - window + 1 : end + 1].max(initial=0.0) >= CUT_THRESHOLD:
            continue
        around = [change[other] for other in (end - window, end + window) if window <= other < count]
        steadiness = change[end] / max(max(around, default=0.0), 1.0)
        if steadiness >= DISSOLVE_STEADINESS:
            candidates[end] = (float(ratio[end]), float(steadiness))
    dissolves: dict[int, float] = {}
    for first, last in _runs(np.isin(np.arange(count), list(candidates))):
        best = min(range(first, last + 1), key=lambda end: candidates[end][0])
        match, steadiness = candidates[best]
        confidence = (
            50.0
            + 25.0 * (1.0 - match / DISSOLVE_MAX_RESIDUAL)
            + 25.0 * min(1.0, steadiness / (2 * DISSOLVE_STEADINESS))
        )
        dissolves[best - window // 2] = confidence
    return dissolves
