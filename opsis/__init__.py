"""Opsis: self-hosted image analysis that speaks Amazon Rekognition's API.

The Python API calls the same operation handlers as the HTTP server, in-process, with the same
model-driven validation::

    from opsis import Opsis
    opsis = Opsis()
    opsis.detect_faces("group.jpg", attributes=("ALL",))["FaceDetails"]
    opsis.detect_labels("street.jpg", MinConfidence=40)["Labels"]
    opsis.call("DetectFaces", {"Image": {"S3Object": {"Bucket": "photos", "Name": "a.jpg"}}})

Stored video runs as jobs; in-process, a job can be run (and watched) where it was started::

    job_id = opsis.start_video_job("StartLabelDetection", "clip.mp4", MinConfidence=60)
    opsis.wait_for_video_job(job_id, on_progress=print)
    opsis.video_job_results(job_id)["Labels"]
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opsis.config import Settings

__all__ = ["Opsis", "Settings"]
__version__ = "0.1.0"


class Opsis:
    """An in-process Rekognition: parameters and results are exactly the API's."""

    def __init__(self, settings: Settings | None = None) -> None:
        from opsis.ops.context import Context

        self.ctx = Context.create(settings or Settings.load())

    def close(self) -> None:
        self.ctx.close()

    def __enter__(self) -> Opsis:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """Run a Rekognition operation by name (e.g. "DetectFaces") with its request parameters."""
        from opsis.api.validate import validate_input
        from opsis.ops.caller import LOCAL, Caller, calling_as
        from opsis.ops.registry import handler_for
        from opsis.service_model import operation_model

        model = operation_model(operation)
        validate_input(model.input_shape, params)
        with calling_as(Caller(LOCAL)):
            return dict(handler_for(model.name)(self.ctx, params))

    def detect_faces(self, image: bytes | str | Path, attributes: tuple[str, ...] = ("DEFAULT",)) -> dict[str, Any]:
        """DetectFaces on image bytes or a JPEG/PNG file path."""
        return self.call("DetectFaces", {"Image": _image(image), "Attributes": list(attributes)})

    def detect_labels(self, image: bytes | str | Path, **params: Any) -> dict[str, Any]:
        """DetectLabels; further parameters (MinConfidence, Features, ...) as the API names them."""
        return self.call("DetectLabels", {"Image": _image(image), **params})

    def detect_text(self, image: bytes | str | Path, **params: Any) -> dict[str, Any]:
        """DetectText; further parameters (Filters) as the API names them."""
        return self.call("DetectText", {"Image": _image(image), **params})

    def detect_moderation_labels(self, image: bytes | str | Path, **params: Any) -> dict[str, Any]:
        """DetectModerationLabels; further parameters (MinConfidence) as the API names them."""
        return self.call("DetectModerationLabels", {"Image": _image(image), **params})

    def recognize_celebrities(self, image: bytes | str | Path) -> dict[str, Any]:
        """RecognizeCelebrities against the gallery imported with `opsis celebrities import`."""
        return self.call("RecognizeCelebrities", {"Image": _image(image)})

    def start_video_job(self, operation: str, video: str | Path, **params: Any) -> str:
        """Start a stored-video job (e.g. "StartFaceDetection") on a local file or an s3://bucket/key
        object (local buckets or the configured S3 endpoint); returns its JobId."""
        from opsis.api.validate import validate_input
        from opsis.ops.caller import LOCAL, Caller, calling_as
        from opsis.ops.context import Context
        from opsis.ops.registry import governed
        from opsis.ops.video import start_job
        from opsis.service_model import operation_model

        text = str(video)
        local_file = None if text.startswith("s3://") else Path(video)
        bucket, _, key = text.removeprefix("s3://").partition("/")
        s3_object = {"Bucket": "local-file", "Name": local_file.name} if local_file else {"Bucket": bucket, "Name": key}
        request = {"Video": {"S3Object": s3_object}, **params}
        validate_input(operation_model(operation).input_shape, request)

        def start(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
            return start_job(ctx, operation, params, local_file)

        # Under the same rules (audit, threshold guard) as the registry's handlers.
        with calling_as(Caller(LOCAL)):
            job = governed(operation, start)(self.ctx, request)
        return str(job["JobId"])

    def wait_for_video_job(
        self, job_id: str, on_progress: Callable[[float], None] | None = None, poll_seconds: float = 0.5
    ) -> str:
        """Run the job here if no worker has taken it, else watch the worker's progress; returns
        the job's final status. `on_progress` gets the fraction done (0-1)."""
        from opsis.jobs.worker import run_now

        report = on_progress or (lambda _: None)
        while True:
            run_now(self.ctx, job_id, report)  # takes it only if queued or its worker's lease ran out
            job = self.ctx.jobs.get_job(job_id)
            if job.status not in ("QUEUED", "IN_PROGRESS"):
                report(1.0)
                return job.status
            report(job.progress / 100)
            time.sleep(poll_seconds)

    def video_job_results(self, job_id: str, **params: Any) -> dict[str, Any]:
        """The job's Get* response with the results of every page (SortBy, AggregateBy as the API has them)."""
        from opsis.ops.video import KINDS

        kind = KINDS[self.ctx.jobs.get_job(job_id).operation]
        response = self.call(kind.get, {"JobId": job_id, **params})
        while token := response.pop("NextToken", None):
            page = self.call(kind.get, {"JobId": job_id, **params, "NextToken": token})
            response[kind.results] += page[kind.results]
        return response


def _image(image: bytes | str | Path) -> dict[str, bytes]:
    """An `Image` from bytes or a JPEG/PNG file path."""
    return {"Bytes": image if isinstance(image, bytes) else Path(image).read_bytes()}
