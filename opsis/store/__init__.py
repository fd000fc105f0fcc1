"""Storage behind Protocols (`opsis.store.base`); this module picks the backend."""

from __future__ import annotations

from opsis.config import Settings
from opsis.store.base import FaceStore


def open_face_store(settings: Settings) -> FaceStore:
    """The configured face store: the embedded SQLite store under the data directory."""
    from opsis.store.sqlite import SQLiteFaceStore

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store: FaceStore = SQLiteFaceStore(settings.data_dir / "faces.db", hnsw_threshold=settings.hnsw_threshold)
    return store
