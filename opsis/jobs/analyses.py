"""What each kind of stored-video job computes, frame by frame, through the image operations' own code.

Every analysis samples frames (`opsis.vision.video.sample_frames`) and runs the same per-image
function its image operation runs (DetectFaces' `face_details`, DetectLabels' `labels_in_image`,
...), so a video frame is judged exactly as a photo would be. Each result row carries the
timestamp and the key its Get* operation may sort by.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opsis.ops.celebrities import celebrities_in_image
from opsis.ops.context import Context
from opsis.ops.face_attributes import requested_attributes
from opsis.ops.faces import face_details
from opsis.ops.labels import GENERAL_LABELS, labels_in_image
from opsis.ops.moderation import moderation_in_image
from opsis.ops.text import text_filters, text_in_image
from opsis.store.base import JobResult
from opsis.vision.video import VideoFrame, VideoMetadata, sample_frames

# Report progress (and give the worker a chance to notice it lost its lease) at least this often.
Progress = Callable[[float], None]

# Rekognition's video defaults: labels and moderation labels at 50 or more.
DEFAULT_LABEL_MIN_CONFIDENCE = 50.0
DEFAULT_MODERATION_MIN_CONFIDENCE = 50.0
SEGMENTS = "SEGMENTS"


@dataclass(frozen=True)
class Video:
    path: Path
    metadata: VideoMetadata


@dataclass
class Analysis:
    results: list[JobResult] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)  # response fields such as LabelModelVersion


def frames(ctx: Context, video: Video, progress: Progress, rate: float | None = None) -> Iterator[VideoFrame]:
    """The video's frames at the configured sampling rate, reporting progress after each."""
    duration = max(video.metadata.duration_millis, 1)
    for frame in sample_frames(video.path, rate or ctx.settings.video_frames_per_second):
        yield frame
        progress(min(frame.timestamp_millis / duration, 1.0))


def detect_faces(ctx: Context, video: Video, params: Mapping[str, Any], progress: Progress) -> Analysis:
    """StartFaceDetection: every face of every sampled frame, with DEFAULT or ALL attributes."""
    attributes = requested_attributes([params.get("FaceAttributes", "DEFAULT")])
    analysis = Analysis()
    for frame in frames(ctx, video, progress):
        for face in face_details(ctx, frame.image, attributes):
            body = {"Timestamp": frame.timestamp_millis, "Face": face}
            analysis.results.append(JobResult(frame.timestamp_millis, "", body))
    return analysis


def detect_labels(ctx: Context, video: Video, params: Mapping[str, Any], progress: Progress) -> Analysis:
    """StartLabelDetection: labels per sampled frame (TIMESTAMPS) and as time segments (SEGMENTS)."""
    request = {
        "MinConfidence": params.get("MinConfidence", DEFAULT_LABEL_MIN_CONFIDENCE),
        "Settings": params.get("Settings") or {},
        "Features": [GENERAL_LABELS],
    }
    analysis = Analysis()
    for frame in frames(ctx, video, progress):
        response = labels_in_image(ctx, frame.image, request)
        analysis.extras["LabelModelVersion"] = response["LabelModelVersion"]
        for label in response["Labels"]:
            body = {"Timestamp": frame.timestamp_millis, "Label": label}
            analysis.results.append(JobResult(frame.timestamp_millis, label["Name"], body))
    analysis.results += segments_of(analysis.results, "Label", _step(ctx), without=("Instances",))
    return analysis


def detect_text(ctx: Context, video: Video, params: Mapping[str, Any], progress: Progress) -> Analysis:
    """StartTextDetection: LINE and WORD detections per sampled frame (sampled less often: OCR is slow)."""
    filters = text_filters(params.get("Filters") or {})
    analysis = Analysis()
    for frame in frames(ctx, video, progress, ctx.settings.video_text_frames_per_second):
        response = text_in_image(ctx, frame.image, filters)
        analysis.extras["TextModelVersion"] = response["TextModelVersion"]
        for detection in response["TextDetections"]:
            body = {"Timestamp": frame.timestamp_millis, "TextDetection": detection}
            analysis.results.append(JobResult(frame.timestamp_millis, "", body))
    return analysis


def moderate(ctx: Context, video: Video, params: Mapping[str, Any], progress: Progress) -> Analysis:
    """StartContentModeration: moderation labels per sampled frame and as time segments."""
    request = {"MinConfidence": params.get("MinConfidence", DEFAULT_MODERATION_MIN_CONFIDENCE)}
    analysis = Analysis()
    for frame in frames(ctx, video, progress):
        response = moderation_in_image(ctx, frame.image, request)
        analysis.extras["ModerationModelVersion"] = response["ModerationModelVersion"]
        for label in response["ModerationLabels"]:
            body = {"Timestamp": frame.timestamp_millis, "ModerationLabel": label}
            analysis.results.append(JobResult(frame.timestamp_millis, label["Name"], body))
    analysis.results += segments_of(analysis.results, "ModerationLabel", _step(ctx))
    return analysis


def recognize_celebrities(ctx: Context, video: Video, params: Mapping[str, Any], progress: Progress) -> Analysis:
    """StartCelebrityRecognition: the gallery's celebrities in each sampled frame."""
    analysis = Analysis()
    for frame in frames(ctx, video, progress):
        for found in celebrities_in_image(ctx, frame.image)["CelebrityFaces"]:
            celebrity = {
                "Urls": found["Urls"],
                "Name": found["Name"],
                "Id": found["Id"],
                "Confidence": found["MatchConfidence"],
                "BoundingBox": found["Face"]["BoundingBox"],
                "Face": found["Face"],
            }
            if "KnownGender" in found:
                celebrity["KnownGender"] = found["KnownGender"]
            body = {"Timestamp": frame.timestamp_millis, "Celebrity": celebrity}
            analysis.results.append(JobResult(frame.timestamp_millis, found["Id"], body))
    return analysis


def segments_of(
    results: list[JobResult], member: str, step_millis: float, without: tuple[str, ...] = ()
) -> list[JobResult]:
    """AggregateBy SEGMENTS: each name's detections in consecutive samples merged into one time
    segment (most confident detection's fields, minus `without`), as Rekognition aggregates them."""
    runs: dict[str, list[JobResult]] = {}
    merged: list[list[JobResult]] = []
    for result in results:  # in time order
        run = runs.get(result.sort_key)
        if run is None or result.timestamp - run[-1].timestamp > 1.5 * step_millis:
            run = runs[result.sort_key] = []
            merged.append(run)
        run.append(result)
    segments = []
    for run in merged:
        best = max(run, key=lambda r: r.body[member]["Confidence"])
        start, end = run[0].timestamp, run[-1].timestamp
        detail = {key: value for key, value in best.body[member].items() if key not in without}
        body = {
            "Timestamp": start,
            member: detail,
            "StartTimestampMillis": start,
            "EndTimestampMillis": end,
            "DurationMillis": end - start,
        }
        segments.append(JobResult(start, run[0].sort_key, body, variant=SEGMENTS))
    return segments


def _step(ctx: Context) -> float:
    return 1000.0 / ctx.settings.video_frames_per_second
