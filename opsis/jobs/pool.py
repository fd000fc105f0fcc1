"""The server's video workers: separate processes, each with its own models, at a lower priority.

Processes, not threads: a video job keeps two cores busy for minutes, and the kernel's scheduler
(the workers run at `video_worker_nice`) is what keeps the image API responsive meanwhile; a
thread would also contend for the server's GIL. At start-up, jobs leased by workers of this host
that are gone (a server killed mid-job) are released at once to be run again.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Event

from opsis.config import Settings
from opsis.jobs.worker import is_dead, work
from opsis.store import open_job_store

log = logging.getLogger(__name__)

STOP_TIMEOUT_SECONDS = 10.0


class WorkerPool:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._spawn = multiprocessing.get_context("spawn")
        self._stop: Event = self._spawn.Event()
        self._processes: list[SpawnProcess] = []

    def start(self) -> None:
        jobs = open_job_store(self.settings)
        try:
            released = jobs.release_jobs([w for w in jobs.leased_workers() if is_dead(w)])
        finally:
            jobs.close()
        if released:
            log.warning("%d video job(s) of stopped workers will run again", released)
        for number in range(self.settings.video_workers):
            process = self._spawn.Process(
                target=run_worker, args=(self.settings, self._stop, os.getpid()), name=f"opsis-video-{number}"
            )
            process.start()
            self._processes.append(process)

    def stop(self) -> None:
        """Ask the workers to stop; a job in progress is left to be taken again by the next start."""
        self._stop.set()
        for process in self._processes:
            process.join(STOP_TIMEOUT_SECONDS)
            if process.is_alive():
                process.kill()
        self._processes.clear()


def run_worker(settings: Settings, stop: Event, parent_pid: int) -> None:
    """A worker process's main: lower priority, own models and stores, jobs until told to stop."""
    from opsis.ops.context import Context

    os.nice(settings.video_worker_nice)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx = Context.create(settings)
    try:
        work(ctx, stop, parent_pid)
    finally:
        ctx.close()
