"""Stored video: Start* queues a durable job, Get* reads its status and pages through its results.

Start* checks what can be checked at once, as Rekognition does: the video object exists and is
within the size limit (else InvalidS3ObjectException / VideoTooLargeException), the collection of a
face search exists, a ClientRequestToken reused with other parameters is refused. Everything that
needs the video decoded (codec, truncation, duration limit) ends the job FAILED with a
`StatusMessage`. The jobs themselves run in `opsis.jobs` workers; `JobStatus` IN_PROGRESS covers
jobs still waiting for a worker.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opsis.errors import (
    IdempotentParameterMismatchException,
    InvalidPaginationTokenException,
    InvalidParameterException,
    InvalidS3ObjectException,
    ResourceNotFoundException,
    VideoTooLargeException,
)
from opsis.ops.caller import current_caller
from opsis.ops.collection_faces import collection_for_embedder
from opsis.ops.context import Context
from opsis.store.base import Job, NewJob

# Rekognition: "The default value of MaxResults is 1000. If you specify a value greater than 1000,
# a maximum of 1000 results is returned."
MAX_RESULTS = 1000
API_STATUS = {"QUEUED": "IN_PROGRESS", "IN_PROGRESS": "IN_PROGRESS", "SUCCEEDED": "SUCCEEDED", "FAILED": "FAILED"}


@dataclass(frozen=True)
class VideoJobKind:
    """One Start*/Get* pair: where its results go in the Get* response and how they may be ordered."""

    start: str
    get: str
    results: str  # the Get* response member that lists the results
    sort_by: Mapping[str, str] = field(default_factory=dict)  # SortBy value -> job store order
    default_sort: str = "TIMESTAMP"
    aggregates: bool = False  # AggregateBy TIMESTAMPS / SEGMENTS, with GetRequestMetadata
    metadata_list: bool = False  # VideoMetadata is a list (GetSegmentDetection)


BY_TIME = {"TIMESTAMP": "TIMESTAMP"}
KINDS = {
    kind.start: kind
    for kind in (
        VideoJobKind("StartFaceDetection", "GetFaceDetection", "Faces"),
        VideoJobKind("StartFaceSearch", "GetFaceSearch", "Persons", {**BY_TIME, "INDEX": "KEY"}),
        VideoJobKind("StartPersonTracking", "GetPersonTracking", "Persons", {**BY_TIME, "INDEX": "KEY"}),
        VideoJobKind("StartLabelDetection", "GetLabelDetection", "Labels", {**BY_TIME, "NAME": "KEY"}, aggregates=True),
        VideoJobKind("StartTextDetection", "GetTextDetection", "TextDetections"),
        VideoJobKind(
            "StartContentModeration",
            "GetContentModeration",
            "ModerationLabels",
            {**BY_TIME, "NAME": "KEY"},
            aggregates=True,
        ),
        VideoJobKind("StartSegmentDetection", "GetSegmentDetection", "Segments", metadata_list=True),
        VideoJobKind("StartCelebrityRecognition", "GetCelebrityRecognition", "Celebrities", {**BY_TIME, "ID": "KEY"}),
    )
}
KIND_OF_GET = {kind.get: kind for kind in KINDS.values()}


def start_job(ctx: Context, operation: str, params: dict[str, Any], local_file: Path | None = None) -> dict[str, Any]:
    """Queue a job (or return the one this ClientRequestToken already started) and return its JobId.

    `local_file` (the in-process CLI and Python API only) is a video on this machine read in place
    of `Video.S3Object`, which then only names it."""
    request = {key: value for key, value in params.items() if key != "ClientRequestToken"}
    fingerprint = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()
    token = params.get("ClientRequestToken")
    size = _local_size(local_file) if local_file else _object_size(ctx, params)
    if size > ctx.settings.video_max_bytes:
        raise VideoTooLargeException(
            f"The video is {size} bytes; the maximum file size is {ctx.settings.video_max_bytes} bytes"
        )
    if operation == "StartFaceSearch":
        collection_for_embedder(ctx, params["CollectionId"])
    local_path = str(local_file.resolve()) if local_file else None
    job = ctx.jobs.create_job(
        NewJob(operation, request, token, fingerprint, local_path, current_caller().principal),
        ctx.settings.video_max_open_jobs,
    )
    if job.fingerprint != fingerprint:
        raise IdempotentParameterMismatchException(
            f"ClientRequestToken {token!r} was already used for {operation} with other parameters"
        )
    return {"JobId": job.job_id}


def get_results(ctx: Context, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    """Status, metadata and one page of results of a job started by this Get*'s Start*."""
    kind = KIND_OF_GET[operation]
    job = ctx.jobs.get_job(params["JobId"])
    if job.operation != kind.start:
        raise ResourceNotFoundException(f"Job {job.job_id} is not a {kind.start} job (it is {job.operation})")
    response = _status(job, kind)
    sort_by = params.get("SortBy", kind.default_sort)
    if sort_by not in kind.sort_by and sort_by != kind.default_sort:
        raise InvalidParameterException(f"SortBy {sort_by} is not one of {sorted(kind.sort_by)}")
    aggregate_by = params.get("AggregateBy", "TIMESTAMPS")
    if kind.aggregates:
        response["GetRequestMetadata"] = {"SortBy": sort_by, "AggregateBy": aggregate_by}
    offset = _offset(params.get("NextToken"))
    limit = min(params.get("MaxResults", MAX_RESULTS), MAX_RESULTS)
    items: list[Mapping[str, Any]] = []
    if job.status == "SUCCEEDED":
        variant = "SEGMENTS" if aggregate_by == "SEGMENTS" else ""
        order = kind.sort_by.get(sort_by, "TIMESTAMP")
        items = ctx.jobs.job_results(job.job_id, variant, order, offset, limit + 1)
        response.update(job.extras)
    if len(items) > limit:
        items = items[:limit]
        response["NextToken"] = str(offset + limit)
    response[kind.results] = items
    return response


def _status(job: Job, kind: VideoJobKind) -> dict[str, Any]:
    response: dict[str, Any] = {
        "JobStatus": API_STATUS[job.status],
        "JobId": job.job_id,
        "Video": job.params["Video"],
    }
    if "JobTag" in job.params:
        response["JobTag"] = job.params["JobTag"]
    if job.status_message:
        response["StatusMessage"] = job.status_message
    if job.video_metadata:
        metadata = dict(job.video_metadata)
        response["VideoMetadata"] = [metadata] if kind.metadata_list else metadata
    return response


def _offset(token: object) -> int:
    """A NextToken is the offset of the page it starts; results never change once a job succeeded."""
    if token is None:
        return 0
    if not isinstance(token, str) or not token.isdigit() or len(token) > 12:
        raise InvalidPaginationTokenException(f"Invalid pagination token: {str(token)[:64]!r}")
    return int(token)


def _object_size(ctx: Context, params: Mapping[str, Any]) -> int:
    s3_object = (params.get("Video") or {}).get("S3Object")
    if not s3_object or not s3_object.get("Bucket") or not s3_object.get("Name"):
        raise InvalidParameterException("Video.S3Object with a Bucket and a Name is required")
    return ctx.objects.size(s3_object["Bucket"], s3_object["Name"], s3_object.get("Version"))


def _local_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as error:
        raise InvalidS3ObjectException(f"Cannot read the video file {path}: {error.strerror}") from error


# --- the operations, named as botocore names them ------------------------------------------------


def start_face_detection(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    return start_job(ctx, "StartFaceDetection", params)


def get_face_detection(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    return get_results(ctx, "GetFaceDetection", params)


def start_face_search(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    return start_job(ctx, "StartFaceSearch", params)


def get_face_search(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    return get_results(ctx, "GetFaceSearch", params)


def start_person_tracking(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    return start_job(ctx, "StartPersonTracking", params)


def get_person_tracking(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    return get_results(ctx, "GetPersonTracking", params)


def start_label_detection(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    return start_job(ctx, "StartLabelDetection", params)


def get_label_detection(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    return get_results(ctx, "GetLabelDetection", params)


def start_text_detection(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    return start_job(ctx, "StartTextDetection", params)


def get_text_detection(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    return get_results(ctx, "GetTextDetection", params)


def start_content_moderation(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    return start_job(ctx, "StartContentModeration", params)


def get_content_moderation(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    return get_results(ctx, "GetContentModeration", params)


def start_segment_detection(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    return start_job(ctx, "StartSegmentDetection", params)


def get_segment_detection(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    return get_results(ctx, "GetSegmentDetection", params)


def start_celebrity_recognition(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    return start_job(ctx, "StartCelebrityRecognition", params)


def get_celebrity_recognition(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    return get_results(ctx, "GetCelebrityRecognition", params)
