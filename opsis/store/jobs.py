"""The embedded job store: stored-video jobs and their results in one SQLite file (WAL, FULL sync).

A job is QUEUED when Start* returns; a worker leases it (IN_PROGRESS, `lease_until`), renews the
lease as it goes, and ends it SUCCEEDED with every result row in one transaction, or FAILED. A
worker that dies stops renewing: once its lease runs out (or its death is noticed sooner, through
`release_jobs`) the job is taken again from the start, up to a maximum number of attempts. So a job
is never left IN_PROGRESS for ever, and never half-written.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from opsis.errors import LimitExceededException, ResourceNotFoundException
from opsis.store import sqlite_db
from opsis.store.base import Job, JobResult, NewJob

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE jobs (
        job_id TEXT PRIMARY KEY,
        operation TEXT NOT NULL,
        params TEXT NOT NULL,
        client_token TEXT,
        fingerprint TEXT NOT NULL,
        local_path TEXT,
        principal TEXT NOT NULL,
        status TEXT NOT NULL,
        status_message TEXT,
        video_metadata TEXT,
        extras TEXT NOT NULL DEFAULT '{}',
        progress REAL NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        worker TEXT,
        lease_until REAL,
        created_at REAL NOT NULL,
        finished_at REAL
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX jobs_by_token ON jobs (operation, client_token) WHERE client_token IS NOT NULL;
    CREATE INDEX jobs_by_status ON jobs (status, created_at);
    CREATE TABLE job_results (
        job_id TEXT NOT NULL REFERENCES jobs(job_id) ON DELETE CASCADE,
        variant TEXT NOT NULL,
        seq INTEGER NOT NULL,
        timestamp INTEGER NOT NULL,
        sort_key TEXT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (job_id, variant, seq)
    ) WITHOUT ROWID;
    CREATE TABLE notifications (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id TEXT NOT NULL REFERENCES jobs(job_id) ON DELETE CASCADE,
        destination TEXT NOT NULL,
        message TEXT NOT NULL,
        outcome TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    """,
)

# Get* may sort by the time of each item, or by its name / index / id first.
ORDERS = {
    "TIMESTAMP": "timestamp, seq",
    "KEY": "sort_key, timestamp, seq",
}


class SQLiteJobStore:
    """`JobStore` on one SQLite file; safe to share between a server and its worker processes."""

    def __init__(self, path: Path, retention_seconds: float) -> None:
        self.path = path
        self.retention_seconds = retention_seconds
        self._lock = threading.RLock()
        self._db = sqlite_db.connect(path)
        with self._lock:
            sqlite_db.migrate(self._db, MIGRATIONS, path)

    def create_job(self, job: NewJob, max_open: int) -> Job:
        now = time.time()
        with self._lock, sqlite_db.write(self._db) as db:
            # Finished jobs are kept for the retention period (Rekognition: 7 days), then forgotten.
            db.execute("DELETE FROM jobs WHERE finished_at < ?", (now - self.retention_seconds,))
            if job.client_token is not None:
                row = db.execute(
                    "SELECT * FROM jobs WHERE operation = ? AND client_token = ?", (job.operation, job.client_token)
                ).fetchone()
                if row is not None:
                    return _job(row)
            open_jobs = db.execute("SELECT COUNT(*) FROM jobs WHERE status IN ('QUEUED', 'IN_PROGRESS')").fetchone()[0]
            if open_jobs >= max_open:
                raise LimitExceededException(
                    f"{open_jobs} video jobs are queued or in progress (the limit is {max_open}); start this one later"
                )
            job_id = uuid.uuid4().hex + uuid.uuid4().hex  # 64 characters, JobId's maximum
            db.execute(
                "INSERT INTO jobs (job_id, operation, params, client_token, fingerprint, local_path, principal,"
                " status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'QUEUED', ?)",
                (
                    job_id,
                    job.operation,
                    json.dumps(job.params),
                    job.client_token,
                    job.fingerprint,
                    job.local_path,
                    job.principal,
                    now,
                ),
            )
            return _job(self._row(db, job_id))

    def get_job(self, job_id: str) -> Job:
        with self._lock:
            return _job(self._row(self._db, job_id))

    def claim_job(self, worker: str, lease_seconds: float, max_attempts: int, job_id: str | None = None) -> Job | None:
        which = "" if job_id is None else " AND job_id = ?"
        with self._lock, sqlite_db.write(self._db) as db:
            now = time.time()
            while True:
                row = db.execute(
                    "SELECT * FROM jobs WHERE (status = 'QUEUED' OR (status = 'IN_PROGRESS' AND lease_until < ?))"
                    f"{which} ORDER BY created_at LIMIT 1",
                    (now,) if job_id is None else (now, job_id),
                ).fetchone()
                if row is None:
                    return None
                if row["attempts"] >= max_attempts:
                    message = f"The job was interrupted {row['attempts']} times (its worker stopped); not retried"
                    db.execute(
                        "UPDATE jobs SET status = 'FAILED', status_message = ?, worker = NULL, finished_at = ?"
                        " WHERE job_id = ?",
                        (message, now, row["job_id"]),
                    )
                    continue
                db.execute(
                    "UPDATE jobs SET status = 'IN_PROGRESS', worker = ?, lease_until = ?, attempts = attempts + 1,"
                    " progress = 0 WHERE job_id = ?",
                    (worker, now + lease_seconds, row["job_id"]),
                )
                return _job(self._row(db, row["job_id"]))

    def renew_lease(self, job_id: str, worker: str, lease_seconds: float, progress: float) -> bool:
        with self._lock, sqlite_db.write(self._db) as db:
            changed = db.execute(
                "UPDATE jobs SET lease_until = ?, progress = ?"
                " WHERE job_id = ? AND worker = ? AND status = 'IN_PROGRESS'",
                (time.time() + lease_seconds, progress, job_id, worker),
            ).rowcount
        return changed == 1

    def release_jobs(self, workers: Sequence[str]) -> int:
        if not workers:
            return 0
        marks = ",".join("?" * len(workers))
        with self._lock, sqlite_db.write(self._db) as db:
            return db.execute(
                f"UPDATE jobs SET lease_until = 0 WHERE status = 'IN_PROGRESS' AND worker IN ({marks})", tuple(workers)
            ).rowcount

    def leased_workers(self) -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT DISTINCT worker FROM jobs WHERE status = 'IN_PROGRESS'").fetchall()
        return [row["worker"] for row in rows]

    def finish_job(
        self,
        job_id: str,
        worker: str,
        metadata: Mapping[str, Any],
        extras: Mapping[str, Any],
        results: Sequence[JobResult],
    ) -> bool:
        with self._lock, sqlite_db.write(self._db) as db:
            changed = db.execute(
                "UPDATE jobs SET status = 'SUCCEEDED', progress = 100, video_metadata = ?, extras = ?, worker = NULL,"
                " finished_at = ? WHERE job_id = ? AND worker = ? AND status = 'IN_PROGRESS'",
                (json.dumps(metadata), json.dumps(extras), time.time(), job_id, worker),
            ).rowcount
            if changed != 1:
                return False
            db.executemany(
                "INSERT INTO job_results VALUES (?, ?, ?, ?, ?, ?)",
                (
                    (job_id, result.variant, seq, result.timestamp, result.sort_key, json.dumps(result.body))
                    for seq, result in enumerate(results)
                ),
            )
        return True

    def fail_job(
        self, job_id: str, worker: str | None, message: str, metadata: Mapping[str, Any] | None = None
    ) -> bool:
        holder = "" if worker is None else " AND worker = ?"
        with self._lock, sqlite_db.write(self._db) as db:
            changed = db.execute(
                "UPDATE jobs SET status = 'FAILED', status_message = ?, video_metadata = ?, worker = NULL,"
                f" finished_at = ? WHERE job_id = ? AND status IN ('QUEUED', 'IN_PROGRESS'){holder}",
                (message, None if metadata is None else json.dumps(metadata), time.time(), job_id)
                + (() if worker is None else (worker,)),
            ).rowcount
        return changed == 1

    def job_results(self, job_id: str, variant: str, order: str, offset: int, limit: int) -> list[Mapping[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT body FROM job_results WHERE job_id = ? AND variant = ? ORDER BY {ORDERS[order]}"
                " LIMIT ? OFFSET ?",
                (job_id, variant, limit, offset),
            ).fetchall()
        return [json.loads(row["body"]) for row in rows]

    def record_notification(self, job_id: str, destination: str, message: str, outcome: str) -> None:
        with self._lock, sqlite_db.write(self._db) as db:
            db.execute(
                "INSERT INTO notifications (job_id, destination, message, outcome, created_at) VALUES (?, ?, ?, ?, ?)",
                (job_id, destination, message, outcome, time.time()),
            )

    def notifications(self, job_id: str) -> list[Mapping[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT destination, message, outcome, created_at FROM notifications WHERE job_id = ? ORDER BY id",
                (job_id,),
            ).fetchall()
        return [dict(row) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @staticmethod
    def _row(db: sqlite3.Connection, job_id: str) -> sqlite3.Row:
        row: sqlite3.Row | None = db.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        if row is None:
            raise ResourceNotFoundException(f"Job {job_id} does not exist")
        return row


def _job(row: sqlite3.Row) -> Job:
    return Job(
        job_id=row["job_id"],
        operation=row["operation"],
        params=json.loads(row["params"]),
        status=row["status"],
        status_message=row["status_message"],
        progress=row["progress"],
        attempts=row["attempts"],
        created_at=datetime.fromtimestamp(row["created_at"], UTC),
        video_metadata=None if row["video_metadata"] is None else json.loads(row["video_metadata"]),
        extras=json.loads(row["extras"]),
        local_path=row["local_path"],
        fingerprint=row["fingerprint"],
        principal=row["principal"],
    )
