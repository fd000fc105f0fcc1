"""The audit trail of biometric operations: one append-only SQLite file (`audit.db`), hash-chained.

Each entry's hash is SHA-256 over the previous entry's hash and the entry's own fields, so editing,
inserting or removing an entry anywhere but the end breaks every hash after it (`verify`). Triggers
refuse UPDATE and DELETE outright; the only deletion is retention (`purge`), which keeps the last
purged entry's hash as the chain's anchor, so what remains still verifies. Removing entries from the
end cannot be detected from the file alone: keep the head hash `verify` reports somewhere else
(`opsis audit verify` prints it) to detect that too. Entries hold ids, thresholds and outcomes,
never an image or a face vector.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from opsis.store import sqlite_db
from opsis.store.base import AuditEntry, AuditQuery, AuditRecord, AuditVerification

GENESIS = "0" * 64
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE entries (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        time REAL NOT NULL,
        principal TEXT NOT NULL,
        request_id TEXT NOT NULL,
        operation TEXT NOT NULL,
        collection_id TEXT,
        outcome TEXT NOT NULL,
        details TEXT NOT NULL,
        previous_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE INDEX entries_by_time ON entries (time);
    CREATE TABLE anchor (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        seq INTEGER NOT NULL,
        hash TEXT NOT NULL,
        purging INTEGER NOT NULL DEFAULT 0
    );
    INSERT INTO anchor VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', 0);
    CREATE TRIGGER entries_are_never_changed BEFORE UPDATE ON entries
    BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
    CREATE TRIGGER entries_leave_only_by_retention BEFORE DELETE ON entries
    WHEN (SELECT purging FROM anchor) = 0
    BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END
    """,
)


class SQLiteAuditLog:
    """`AuditLog` on one SQLite file, shared by the server, its workers and the CLI."""

    def __init__(self, path: Path, retention_seconds: float) -> None:
        self.path = path
        self.retention_seconds = retention_seconds
        self._lock = threading.Lock()
        self._db = sqlite_db.connect(path)
        with self._lock:
            sqlite_db.migrate(self._db, MIGRATIONS, path)

    def append(self, record: AuditRecord) -> AuditEntry:
        now = time.time()
        with self._lock, sqlite_db.write(self._db) as db:
            self._purge(db, now - self.retention_seconds)
            last = db.execute("SELECT hash FROM entries ORDER BY seq DESC LIMIT 1").fetchone()
            previous = last["hash"] if last else db.execute("SELECT hash FROM anchor").fetchone()["hash"]
            fields = _fields(now, record)
            entry_hash = _hash(previous, fields)
            seq = db.execute(
                "INSERT INTO entries (time, principal, request_id, operation, collection_id, outcome, details,"
                " previous_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*fields, previous, entry_hash),
            ).lastrowid
        return AuditEntry(int(seq or 0), now, record, entry_hash)

    def entries(self, query: AuditQuery) -> list[AuditEntry]:
        conditions: list[str] = ["seq > ?"]
        args: list[Any] = [query.after_seq]
        for column, value in (
            ("principal", query.principal),
            ("operation", query.operation),
            ("collection_id", query.collection_id),
        ):
            if value is not None:
                conditions.append(f"{column} = ?")
                args.append(value)
        if query.since is not None:
            conditions.append("time >= ?")
            args.append(query.since)
        with self._lock:
            rows = self._db.execute(
                f"SELECT * FROM entries WHERE {' AND '.join(conditions)} ORDER BY seq LIMIT ?", (*args, query.limit)
            ).fetchall()
        return [_entry(row) for row in rows]

    def verify(self) -> AuditVerification:
        with self._lock, sqlite_db.read(self._db) as db:
            anchor = db.execute("SELECT seq, hash FROM anchor").fetchone()
            expected, count = anchor["hash"], 0
            for row in db.execute("SELECT * FROM entries ORDER BY seq"):
                fields = (
                    row["time"],
                    row["principal"],
                    row["request_id"],
                    row["operation"],
                    row["collection_id"],
                    row["outcome"],
                    row["details"],
                )
                if row["previous_hash"] != expected or row["hash"] != _hash(expected, fields):
                    return AuditVerification(False, count, expected, int(row["seq"]))
                expected, count = row["hash"], count + 1
        return AuditVerification(True, count, expected, None)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @staticmethod
    def _purge(db: Any, before: float) -> None:
        """Drops entries older than the retention period, keeping the last one's hash as the anchor."""
        oldest_kept = "SELECT seq, hash FROM entries WHERE time < ? ORDER BY seq DESC LIMIT 1"
        last = db.execute(oldest_kept, (before,)).fetchone()
        if last is None:
            return
        db.execute("UPDATE anchor SET seq = ?, hash = ?, purging = 1", (last["seq"], last["hash"]))
        db.execute("DELETE FROM entries WHERE seq <= ?", (last["seq"],))
        db.execute("UPDATE anchor SET purging = 0")


def _fields(now: float, record: AuditRecord) -> tuple[Any, ...]:
    details = json.dumps(record.details, sort_keys=True, separators=(",", ":"))
    return (
        now,
        record.principal,
        record.request_id,
        record.operation,
        record.collection_id,
        record.outcome,
        details,
    )


def _hash(previous: str, fields: tuple[Any, ...]) -> str:
    payload = json.dumps([previous, *fields], separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def _entry(row: Mapping[str, Any]) -> AuditEntry:
    record = AuditRecord(
        principal=row["principal"],
        request_id=row["request_id"],
        operation=row["operation"],
        collection_id=row["collection_id"],
        outcome=row["outcome"],
        details=json.loads(row["details"]),
    )
    return AuditEntry(int(row["seq"]), float(row["time"]), record, row["hash"])
