"""Storage behind Protocols (`opsis.store.base`); this module picks the backend."""

from __future__ import annotations

from typing import TYPE_CHECKING

from opsis.config import Settings
from opsis.store.base import AuditLog, FaceStore, JobStore

if TYPE_CHECKING:
    from opsis.store.keys import KeyStore


def open_face_store(settings: Settings) -> FaceStore:
    """The configured face store: PostgreSQL when `store` is a postgresql:// URL, else the embedded
    SQLite store under the data directory."""
    if settings.store:
        return _open_server_store(settings)
    from opsis.store.sealing import Seal
    from opsis.store.sqlite import SQLiteFaceStore

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    seal = Seal.from_setting(settings.vector_key) if settings.vector_key else None
    store: FaceStore = SQLiteFaceStore(
        settings.data_dir / "faces.db", hnsw_threshold=settings.hnsw_threshold, seal=seal
    )
    return store


def _open_server_store(settings: Settings) -> FaceStore:
    assert settings.store
    if not settings.store.startswith(("postgresql://", "postgres://")):
        raise ValueError(f"OPSIS_STORE must be a postgresql:// URL, not {settings.store.split(':', 1)[0]!r}")
    if settings.vector_key:
        raise ValueError("OPSIS_VECTOR_KEY is not supported with a PostgreSQL store (pgvector searches clear vectors)")
    try:
        from opsis.store.postgres import PostgresFaceStore
    except ImportError as error:
        raise ValueError(f"a PostgreSQL store needs the extra: pip install 'opsis[postgresql]' ({error})") from None
    return PostgresFaceStore(settings.store, hnsw_threshold=settings.hnsw_threshold)


def open_job_store(settings: Settings) -> JobStore:
    """The configured job store: the embedded SQLite job store under the data directory."""
    from opsis.store.jobs import SQLiteJobStore

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store: JobStore = SQLiteJobStore(settings.jobs_db, retention_seconds=settings.video_job_retention_days * 86400)
    return store


def open_audit_log(settings: Settings) -> AuditLog:
    """The audit trail: the embedded SQLite log under the data directory."""
    from opsis.store.audit import SQLiteAuditLog

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    log: AuditLog = SQLiteAuditLog(settings.audit_db, retention_seconds=settings.audit_retention_days * 86400)
    return log


def open_key_store(settings: Settings) -> KeyStore:
    """The access keys of `opsis keys create` (<data_dir>/keys.db, created on the first key)."""
    from opsis.store.keys import KeyStore

    return KeyStore(settings.keys_db, settings.master_key_file, settings.master_key)
