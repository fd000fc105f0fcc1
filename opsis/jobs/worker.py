"""Running stored-video jobs: one job (`run_job`), and a worker that takes jobs until told to stop.

A worker leases a job from the job store and renews the lease from a heartbeat thread while the
analysis runs; the analysis reports progress after every frame, which is where a worker that lost
its lease (another took the job after it stalled) or its parent process stops. A job ends
SUCCEEDED with all its results in one transaction, or FAILED with a message saying why; a worker
that dies leaves its job to be taken again (`opsis.store.jobs`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from opsis.errors import OpsisError
from opsis.jobs import analyses
from opsis.jobs.analyses import Analysis, Progress, Video
from opsis.jobs.notify import notify
from opsis.ops.audit import AUDITED, record_video_search
from opsis.ops.context import Context
from opsis.ops.shapes import video_metadata
from opsis.store.base import Job
from opsis.vision.video import VideoError, probe

log = logging.getLogger(__name__)

Analyse = Callable[[Context, Video, Mapping[str, Any], Progress], Analysis]
ANALYSES: dict[str, Analyse] = {
    "StartFaceDetection": analyses.detect_faces,
    "StartFaceSearch": analyses.search_faces,
    "StartPersonTracking": analyses.track_people,
    "StartLabelDetection": analyses.detect_labels,
    "StartTextDetection": analyses.detect_text,
    "StartContentModeration": analyses.moderate,
    "StartCelebrityRecognition": analyses.recognize_celebrities,
    "StartSegmentDetection": analyses.detect_segments,
}
IDLE_POLL_SECONDS = 0.5
# Progress is recorded (and the lease renewed) this often, or every quarter lease if that is sooner.
HEARTBEAT_SECONDS = 2.0


class StopSignal(Protocol):
    """threading.Event or multiprocessing.Event."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


class JobAbandoned(Exception):
    """The worker no longer holds the job (its lease was taken over) or is shutting down."""


def worker_name() -> str:
    """host:pid:nonce; the host and pid tell a later server on this machine whether it is alive."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def is_dead(worker: str) -> bool:
    """True for a worker of this host whose process is gone (its jobs can be taken at once)."""
    host, _, rest = worker.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def run_job(ctx: Context, job: Job, worker: str, on_progress: Callable[[float], None] = lambda _: None) -> str:
    """Run a leased job to its end; returns the status it ended with ("" if the lease was lost)."""
    heartbeat = _Heartbeat(ctx, job, worker)

    def progress(fraction: float) -> None:
        heartbeat.progress = fraction * 100
        on_progress(fraction)
        if heartbeat.lost.is_set():
            raise JobAbandoned(job.job_id)

    metadata: dict[str, Any] | None = None
    try:
        with heartbeat, video_file(ctx, job) as path:
            video = Video(path, probe(path))
            metadata = video_metadata(video.metadata)
            _check_duration(ctx, video)
            analysis = ANALYSES[job.operation](ctx, video, job.params, progress)
        ended = ctx.jobs.finish_job(job.job_id, worker, metadata, analysis.extras, analysis.results)
        status = "SUCCEEDED" if ended else ""
        if ended and job.operation in AUDITED:
            record_video_search(ctx, job, status, _identified(analysis))
    except JobAbandoned:
        log.warning("job %s abandoned by %s", job.job_id, worker)
        return ""
    except (VideoError, OpsisError) as error:
        status = _fail(ctx, job, worker, str(error), metadata)
    except Exception as error:  # an unexpected failure ends this job, not the worker
        log.exception("job %s failed", job.job_id)
        status = _fail(ctx, job, worker, f"Internal error while analysing the video ({type(error).__name__})", metadata)
    if status == "FAILED" and job.operation in AUDITED:
        record_video_search(ctx, job, status, [])
    if status:
        notify(ctx, job, status)
    return status


def _identified(analysis: Analysis) -> list[str]:
    """The face or celebrity ids a video search found, once per sighting."""
    found = []
    for result in analysis.results:
        found += [match["Face"]["FaceId"] for match in result.body.get("FaceMatches", [])]
        if "Celebrity" in result.body:
            found.append(result.body["Celebrity"]["Id"])
    return found


def work(ctx: Context, stop: StopSignal, parent_pid: int | None = None) -> None:
    """Take and run jobs until `stop` is set (or the parent process is gone)."""
    worker = worker_name()
    settings = ctx.settings
    log.info("video worker %s started", worker)
    while not stop.is_set() and (parent_pid is None or os.getppid() == parent_pid):
        job = ctx.jobs.claim_job(worker, settings.video_job_lease_seconds, settings.video_job_attempts)
        if job is None:
            stop.wait(IDLE_POLL_SECONDS)
            continue
        log.info("job %s (%s) taken by %s, attempt %d", job.job_id, job.operation, worker, job.attempts)

        def check_parent(_: float) -> None:
            if stop.is_set() or (parent_pid is not None and os.getppid() != parent_pid):
                raise JobAbandoned("the worker is stopping")

        run_job(ctx, job, worker, check_parent)


def run_now(ctx: Context, job_id: str, on_progress: Callable[[float], None]) -> str:
    """Run this job here and now if no worker has it ("" when one has: watch it instead)."""
    worker = worker_name()
    settings = ctx.settings
    job = ctx.jobs.claim_job(worker, settings.video_job_lease_seconds, settings.video_job_attempts, job_id)
    return "" if job is None else run_job(ctx, job, worker, on_progress)


@contextmanager
def video_file(ctx: Context, job: Job) -> Iterator[Path]:
    """The job's video as a local file: the CLI's own file, or the S3 object."""
    if job.local_path is not None:
        yield Path(job.local_path)
        return
    s3_object = job.params["Video"]["S3Object"]
    with ctx.objects.local_file(s3_object["Bucket"], s3_object["Name"], s3_object.get("Version")) as path:
        yield path


def _check_duration(ctx: Context, video: Video) -> None:
    limit = ctx.settings.video_max_seconds
    if video.metadata.duration_millis > limit * 1000:
        raise VideoError(f"The video lasts {video.metadata.duration_millis / 1000:.0f} s; the maximum is {limit} s")


def _fail(ctx: Context, job: Job, worker: str, message: str, metadata: dict[str, Any] | None) -> str:
    return "FAILED" if ctx.jobs.fail_job(job.job_id, worker, message, metadata) else ""


class _Heartbeat:
    """Renews the job's lease and records progress while the job runs."""

    def __init__(self, ctx: Context, job: Job, worker: str) -> None:
        self.ctx, self.job, self.worker = ctx, job, worker
        self.progress = 0.0
        self.lost = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{job.job_id[:8]}", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _beat(self) -> None:
        lease = self.ctx.settings.video_job_lease_seconds
        while not self._done.wait(min(lease / 4, HEARTBEAT_SECONDS)):
            if not self.ctx.jobs.renew_lease(self.job.job_id, self.worker, lease, self.progress):
                self.lost.set()
                return
