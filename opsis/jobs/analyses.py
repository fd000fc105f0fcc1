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

import numpy as np
from numpy.typing import NDArray

from opsis.ops.celebrities import celebrities_in_image
from opsis.ops.collection_faces import DEFAULT_MATCH_THRESHOLD, collection_for_embedder, face_matches
from opsis.ops.context import Context
from opsis.ops.face_attributes import requested_attributes
from opsis.ops.faces import face_details
from opsis.ops.labels import GENERAL_LABELS, labels_in_image
from opsis.ops.moderation import moderation_in_image
from opsis.ops.shapes import bounding_box, face_detail, segment_detection
from opsis.ops.text import text_filters, text_in_image
from opsis.store.base import JobResult
from opsis.vision import segments
from opsis.vision.faces import embed_faces
from opsis.vision.segments import MIN_SEGMENT_CONFIDENCE, BlackFrameFilter, SegmentType, keep_confident
from opsis.vision.tracking import TrackedFrame, track_persons
from opsis.vision.types import DecodedImage, Detections
from opsis.vision.video import VideoFrame, VideoMetadata, audio_metadata, sample_frames

# Called with the fraction done (0-1) after every frame; it is also where the worker stops a job
# it no longer holds (the callback raises).
Progress = Callable[[float], None]

# Rekognition's video defaults: labels and moderation labels at 50 or more.
DEFAULT_LABEL_MIN_CONFIDENCE = 50.0
DEFAULT_MODERATION_MIN_CONFIDENCE = 50.0
SEGMENTS = "SEGMENTS"
DEFAULT_BLACK = BlackFrameFilter()


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
    analysis = _each_frame(
        frames(ctx, video, progress),
        lambda image: labels_in_image(ctx, image, request),
        ("Labels", "Label", "LabelModelVersion"),
        sort_key=lambda label: label["Name"],
    )
    analysis.results += segments_of(analysis.results, "Label", _step(ctx), without=("Instances",))
    return analysis


def detect_text(ctx: Context, video: Video, params: Mapping[str, Any], progress: Progress) -> Analysis:
    """StartTextDetection: LINE and WORD detections per sampled frame (sampled less often: OCR is slow)."""
    filters = text_filters(params.get("Filters") or {})
    return _each_frame(
        frames(ctx, video, progress, ctx.settings.video_text_frames_per_second),
        lambda image: text_in_image(ctx, image, filters),
        ("TextDetections", "TextDetection", "TextModelVersion"),
    )


def moderate(ctx: Context, video: Video, params: Mapping[str, Any], progress: Progress) -> Analysis:
    """StartContentModeration: moderation labels per sampled frame and as time segments."""
    request = {"MinConfidence": params.get("MinConfidence", DEFAULT_MODERATION_MIN_CONFIDENCE)}
    analysis = _each_frame(
        frames(ctx, video, progress),
        lambda image: moderation_in_image(ctx, image, request),
        ("ModerationLabels", "ModerationLabel", "ModerationModelVersion"),
        sort_key=lambda label: label["Name"],
    )
    analysis.results += segments_of(analysis.results, "ModerationLabel", _step(ctx))
    return analysis


def _each_frame(
    sampled: Iterator[VideoFrame],
    analyse: Callable[[DecodedImage], Mapping[str, Any]],
    members: tuple[str, str, str],
    sort_key: Callable[[Mapping[str, Any]], str] = lambda _: "",
) -> Analysis:
    """An image operation's list (`members`: the response's list, each result's member, the
    response's model version) over every sampled frame, one result per item with its timestamp."""
    listed, member, version = members
    analysis = Analysis()
    for frame in sampled:
        response = analyse(frame.image)
        analysis.extras[version] = response[version]
        for item in response[listed]:
            body = {"Timestamp": frame.timestamp_millis, member: item}
            analysis.results.append(JobResult(frame.timestamp_millis, sort_key(item), body))
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


def track_people(ctx: Context, video: Video, params: Mapping[str, Any], progress: Progress) -> Analysis:
    """StartPersonTracking: every tracked person in each sampled frame, with its face when one is seen."""
    analysis = Analysis()
    for tracked, image in _tracked_frames(ctx, video, progress):
        for person in tracked.persons:
            detail = _person_detail(person.index, person.xyxy, tracked.faces, person.face_row, image)
            body = {"Timestamp": tracked.timestamp_millis, "Person": detail}
            analysis.results.append(JobResult(tracked.timestamp_millis, _index_key(person.index), body))
    return analysis


def search_faces(ctx: Context, video: Video, params: Mapping[str, Any], progress: Progress) -> Analysis:
    """StartFaceSearch: the tracked persons whose face matches faces of the collection (at
    FaceMatchThreshold, default 80), with those matches, in each sampled frame. A matching face
    that no tracked person holds is reported with its own box and no Index."""
    collection = collection_for_embedder(ctx, params["CollectionId"])
    request = {"FaceMatchThreshold": params.get("FaceMatchThreshold", DEFAULT_MATCH_THRESHOLD), "MaxFaces": 10}
    embedder = ctx.face_embedder()
    analysis = Analysis()
    for tracked, image in _tracked_frames(ctx, video, progress):
        if not len(tracked.faces):
            continue
        vectors = embed_faces(image, tracked.faces, embedder).data["embedding"]
        holders = {person.face_row: person for person in tracked.persons if person.face_row is not None}
        for row, vector in enumerate(vectors):
            matches = face_matches(ctx, collection, vector, request)
            if not matches:
                continue
            holder = holders.get(row)
            if holder is None:
                detail = _person_detail(None, tracked.faces.xyxy[row], tracked.faces, row, image)
            else:
                detail = _person_detail(holder.index, holder.xyxy, tracked.faces, row, image)
            body = {"Timestamp": tracked.timestamp_millis, "Person": detail, "FaceMatches": matches}
            key = _index_key(holder.index if holder else None)
            analysis.results.append(JobResult(tracked.timestamp_millis, key, body))
    return analysis


def _tracked_frames(ctx: Context, video: Video, progress: Progress) -> Iterator[tuple[TrackedFrame, DecodedImage]]:
    """Each sampled frame's tracked persons and faces, with the frame (the tracker answers one
    sample late, so the last two frames are kept at hand)."""
    recent: dict[int, DecodedImage] = {}

    def remembered(sampled: Iterator[VideoFrame]) -> Iterator[VideoFrame]:
        for frame in sampled:
            recent[frame.timestamp_millis] = frame.image
            yield frame

    rate = ctx.settings.video_frames_per_second
    sampled = remembered(frames(ctx, video, progress))
    for tracked in track_persons(sampled, ctx.object_detector(), rate, face_detector=ctx.face_detector()):
        image = recent.pop(tracked.timestamp_millis)
        yield tracked, image


def _person_detail(
    index: int | None, xyxy: NDArray[np.float32], faces: Detections, face_row: int | None, image: DecodedImage
) -> dict[str, Any]:
    detail: dict[str, Any] = {} if index is None else {"Index": index}
    detail["BoundingBox"] = bounding_box(xyxy, image.width, image.height)
    if face_row is not None:
        detail["Face"] = face_detail(faces, face_row, image.width, image.height)
    return detail


def _index_key(index: int | None) -> str:
    """SortBy INDEX orders the person indexes as numbers (untracked faces last)."""
    return "~" if index is None else f"{index:09d}"


def detect_segments(ctx: Context, video: Video, params: Mapping[str, Any], progress: Progress) -> Analysis:
    """StartSegmentDetection: shots and technical cues (`opsis.vision.segments`), in time order,
    each kept at its filter's MinSegmentConfidence (default 50)."""
    filters = params.get("Filters") or {}
    cue_filter, shot_filter = filters.get("TechnicalCueFilter") or {}, filters.get("ShotFilter") or {}
    black = cue_filter.get("BlackFrame") or {}
    # The model's ranges (0-1, 0-100) were checked when the job was started.
    black_frame = BlackFrameFilter(
        black.get("MaxPixelThreshold", DEFAULT_BLACK.max_pixel_threshold),
        black.get("MinCoveragePercentage", DEFAULT_BLACK.min_coverage_percentage),
    )
    types = [SegmentType(name) for name in dict.fromkeys(params["SegmentTypes"])]
    found = segments.detect_segments(
        video.path, types=types, black_frame=black_frame, progress=lambda done, total: progress(done / max(total, 1))
    )
    kept = keep_confident(found.shots, shot_filter.get("MinSegmentConfidence", MIN_SEGMENT_CONFIDENCE))
    kept += keep_confident(found.technical_cues, cue_filter.get("MinSegmentConfidence", MIN_SEGMENT_CONFIDENCE))
    kept.sort(key=lambda segment: (segment.start_frame, segment.type))
    analysis = Analysis(
        [JobResult(segment.start_millis, "", segment_detection(segment)) for segment in kept],
        {"SelectedSegmentTypes": [{"Type": kind, "ModelVersion": segments.MODEL_VERSION} for kind in types]},
    )
    analysis.extras["AudioMetadata"] = audio_metadata(video.path)
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
