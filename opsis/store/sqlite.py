"""The embedded face store: SQLite (WAL) is the source of truth, the vector index a rebuildable cache.

* Durability: WAL with `synchronous=FULL`, so a method that returns has committed to disk; kill -9
  loses nothing acknowledged. Writes are serialised by SQLite's own lock (`BEGIN IMMEDIATE`), so
  several processes (a server and the CLI) can share one file.
* Erasure: `secure_delete` zeroes deleted rows in the database pages, a TRUNCATE checkpoint after
  every delete empties the WAL, removed vectors are zeroed in the in-memory index, and saved HNSW
  graphs of the collection are unlinked. No file under the data directory holds a deleted vector
  once the call returns (files deleted earlier are not shredded on the disk underneath).
* Index: per collection, loaded on first search; exact below `hnsw_threshold` faces, HNSW above
  (`opsis.store.vectors`). Index ids are the faces' rowids (AUTOINCREMENT: never reused), so an
  index is brought up to date with any database state by diffing ids (`_reconcile`). Each
  collection row carries a `generation` bumped by every face insert or delete: an index knows the
  generation it reflects, and `PRAGMA data_version` tells when another connection has written.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from opsis.errors import (
    ConflictException,
    InvalidParameterException,
    ResourceAlreadyExistsException,
    ResourceNotFoundException,
)
from opsis.store import sqlite_db
from opsis.store.base import Celebrity, Collection, Face, Neighbour, NewFace, User
from opsis.store.sealing import CHECK_PLAINTEXT, Seal, SealError
from opsis.store.vectors import BACKGROUND_MIN, HnswIndex, HnswParams, Ids, TieredIndex

log = logging.getLogger(__name__)

# Idempotency tokens are remembered this long (AWS keeps them for hours, not forever).
REQUEST_RETENTION_SECONDS = 24 * 3600

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE collections (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        collection_id TEXT NOT NULL UNIQUE,
        face_model_version TEXT NOT NULL,
        dimension INTEGER,
        created_at REAL NOT NULL,
        face_count INTEGER NOT NULL DEFAULT 0,
        user_count INTEGER NOT NULL DEFAULT 0,
        generation INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE tags (
        collection INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (collection, key)
    ) WITHOUT ROWID;
    CREATE TABLE users (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        collection INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
        user_id TEXT NOT NULL,
        created_at REAL NOT NULL,
        UNIQUE (collection, user_id)
    );
    CREATE TABLE faces (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        collection INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
        face_id TEXT NOT NULL,
        image_id TEXT NOT NULL,
        external_image_id TEXT,
        width REAL NOT NULL,
        height REAL NOT NULL,
        left REAL NOT NULL,
        top REAL NOT NULL,
        confidence REAL NOT NULL,
        user INTEGER REFERENCES users(id) ON DELETE SET NULL,
        created_at REAL NOT NULL,
        vector BLOB NOT NULL,
        UNIQUE (collection, face_id)
    );
    CREATE INDEX faces_by_image ON faces (collection, image_id);
    CREATE INDEX faces_by_user ON faces (user);
    CREATE TABLE requests (
        token TEXT NOT NULL,
        operation TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        response TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (token, operation)
    ) WITHOUT ROWID;
    """,
    # 2: the celebrity gallery's people (their faces live in an internal collection).
    """
    CREATE TABLE celebrities (
        celebrity_id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        urls TEXT NOT NULL,
        known_gender TEXT,
        created_at REAL NOT NULL
    ) WITHOUT ROWID;
    """,
    # 3: store-wide settings, e.g. the sealed check value of an encrypted store's vector key.
    """
    CREATE TABLE store_settings (
        name TEXT PRIMARY KEY,
        value BLOB NOT NULL
    ) WITHOUT ROWID;
    """,
)

FACE_COLUMNS = (
    "f.id, f.face_id, f.image_id, f.external_image_id, f.width, f.height, f.left, f.top, "
    "f.confidence, u.user_id, f.created_at"
)
FACES_WITH_USERS = "faces f LEFT JOIN users u ON u.id = f.user"


@dataclass
class _LoadedIndex:
    """A collection's in-memory index and the collection generation it reflects."""

    index: TieredIndex
    generation: int


class SQLiteFaceStore:
    """`FaceStore` on one SQLite file, with vector indexes (and saved HNSW graphs) beside it."""

    def __init__(
        self,
        path: Path,
        *,
        hnsw_threshold: int = 100_000,
        hnsw_params: HnswParams | None = None,
        background_min: int = BACKGROUND_MIN,
        seal: Seal | None = None,
    ) -> None:
        self.path = path
        # With a seal, vectors are encrypted in the database and HNSW graphs (which would hold
        # them in the clear) are never saved: the index is rebuilt from the database on start.
        self.seal = seal
        self.graph_dir = path.with_name(path.name + ".graphs")
        self.hnsw_threshold = hnsw_threshold
        self.hnsw_params = hnsw_params or HnswParams()
        self.background_min = background_min
        self._lock = threading.RLock()
        # Held while a graph file is written or the files of a collection are unlinked, so a save
        # that began before a delete cannot land its file after the delete has erased the others.
        self._graph_lock = threading.Lock()
        self._indexes: dict[int, _LoadedIndex] = {}
        self._closed = False
        self._db = sqlite_db.connect(path)
        with self._lock:
            sqlite_db.migrate(self._db, MIGRATIONS, path)
            self._check_seal()
        self._data_version = self._current_data_version()

    # --- plumbing ---------------------------------------------------------------------------------

    def _check_seal(self) -> None:
        """Refuses a key that is missing or wrong; seals the vectors of a store that had none."""
        with self._write() as db:
            row = db.execute("SELECT value FROM store_settings WHERE name = 'vector_key_check'").fetchone()
            if row is not None:
                if self.seal is None:
                    raise SealError(f"{self.path} holds encrypted vectors: set OPSIS_VECTOR_KEY to open it")
                try:
                    self.seal.open(row["value"])
                except SealError:
                    raise SealError(
                        "OPSIS_VECTOR_KEY is not the key this store's vectors were sealed with"
                    ) from None
            elif self.seal is not None:
                for face in db.execute("SELECT id, vector FROM faces").fetchall():
                    db.execute("UPDATE faces SET vector = ? WHERE id = ?", (self.seal.seal(face["vector"]), face["id"]))
                db.execute(
                    "INSERT INTO store_settings VALUES ('vector_key_check', ?)", (self.seal.seal(CHECK_PLAINTEXT),)
                )
        if self.seal is not None:
            # The clear vectors are gone from the pages (secure_delete); empty the log, drop the graphs.
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            shutil.rmtree(self.graph_dir, ignore_errors=True)

    def _stored(self, vector: bytes) -> bytes:
        return vector if self.seal is None else self.seal.seal(vector)

    def _plain(self, stored: bytes) -> bytes:
        return stored if self.seal is None else self.seal.open(stored)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; the caller holds `_lock`."""
        with sqlite_db.write(self._db) as db:
            yield db

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One consistent snapshot for several reads; the caller holds `_lock`."""
        with sqlite_db.read(self._db) as db:
            yield db

    def _current_data_version(self) -> int:
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    def _collection_row(self, collection_id: str) -> sqlite3.Row:
        row: sqlite3.Row | None = self._db.execute(
            "SELECT * FROM collections WHERE collection_id = ?", (collection_id,)
        ).fetchone()
        if row is None:
            raise ResourceNotFoundException(f"The collection id: {collection_id} does not exist")
        return row

    def _erase_leftovers(self, collection_pk: int) -> None:
        """After a delete: no saved graph of the collection, and an empty WAL (see module doc)."""
        with self._graph_lock:
            for graph in self.graph_dir.glob(f"{collection_pk}.*"):
                graph.unlink(missing_ok=True)
        # TRUNCATE waits (busy timeout) for readers of other connections to leave the log first.
        if self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]:
            log.warning("%s: readers kept the write-ahead log from being emptied after a delete", self.path)

    # --- collections ------------------------------------------------------------------------------

    def create_collection(self, collection_id: str, face_model_version: str, tags: Mapping[str, str]) -> Collection:
        with self._lock:
            try:
                with self._write() as db:
                    pk = db.execute(
                        "INSERT INTO collections (collection_id, face_model_version, created_at) VALUES (?, ?, ?)",
                        (collection_id, face_model_version, time.time()),
                    ).lastrowid
                    db.executemany(
                        "INSERT INTO tags (collection, key, value) VALUES (?, ?, ?)",
                        [(pk, key, value) for key, value in tags.items()],
                    )
            except sqlite3.IntegrityError:
                raise ResourceAlreadyExistsException(f"The collection id: {collection_id} already exists") from None
            return self.get_collection(collection_id)

    def get_collection(self, collection_id: str) -> Collection:
        with self._lock, self._read():
            return self._collection(self._collection_row(collection_id))

    def list_collections(self, after: str | None, limit: int) -> list[Collection]:
        with self._lock, self._read() as db:
            rows = db.execute(
                "SELECT * FROM collections WHERE collection_id > ? AND instr(collection_id, ':') = 0"
                " ORDER BY collection_id LIMIT ?",
                (after or "", limit),
            ).fetchall()
            return [self._collection(row) for row in rows]

    def _collection(self, row: sqlite3.Row) -> Collection:
        tags = self._db.execute("SELECT key, value FROM tags WHERE collection = ?", (row["id"],)).fetchall()
        return Collection(
            collection_id=row["collection_id"],
            face_model_version=row["face_model_version"],
            created_at=_datetime(row["created_at"]),
            face_count=row["face_count"],
            user_count=row["user_count"],
            tags={key: value for key, value in tags},
        )

    def delete_collection(self, collection_id: str) -> None:
        with self._lock:
            with self._write() as db:
                pk = self._collection_row(collection_id)["id"]
                db.execute("DELETE FROM collections WHERE id = ?", (pk,))
            self._drop_index(pk)
            self._erase_leftovers(pk)

    def tag_collection(self, collection_id: str, tags: Mapping[str, str]) -> None:
        with self._lock, self._write() as db:
            pk = self._collection_row(collection_id)["id"]
            db.executemany(
                "INSERT OR REPLACE INTO tags (collection, key, value) VALUES (?, ?, ?)",
                [(pk, key, value) for key, value in tags.items()],
            )

    def untag_collection(self, collection_id: str, keys: Sequence[str]) -> None:
        with self._lock, self._write() as db:
            pk = self._collection_row(collection_id)["id"]
            db.executemany("DELETE FROM tags WHERE collection = ? AND key = ?", [(pk, key) for key in keys])

    # --- faces ------------------------------------------------------------------------------------

    def add_faces(self, collection_id: str, faces: Sequence[NewFace]) -> list[Face]:
        if not faces:
            return []
        vectors = np.stack([np.asarray(face.vector, np.float32) for face in faces])
        now = time.time()
        with self._lock:
            with self._write() as db:
                collection = self._collection_row(collection_id)
                dimension = collection["dimension"] or vectors.shape[1]
                if vectors.shape[1] != dimension:
                    raise InvalidParameterException(
                        f"Collection {collection_id} holds {dimension}-d vectors, not {vectors.shape[1]}-d"
                    )
                added = []
                for face, vector in zip(faces, vectors, strict=True):
                    face_id = str(uuid.uuid4())
                    rowid = db.execute(
                        "INSERT INTO faces (collection, face_id, image_id, external_image_id, width, height, left, top,"
                        " confidence, created_at, vector) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            collection["id"],
                            face_id,
                            face.image_id,
                            face.external_image_id,
                            *face.bounding_box,
                            face.confidence,
                            now,
                            self._stored(vector.tobytes()),
                        ),
                    ).lastrowid
                    added.append((rowid, Face(face_id, face.image_id, face.external_image_id, face.bounding_box,
                                              face.confidence, None, _datetime(now))))  # fmt: skip
                db.execute(
                    "UPDATE collections SET dimension = ?, face_count = face_count + ?, generation = generation + 1"
                    " WHERE id = ?",
                    (dimension, len(faces), collection["id"]),
                )
            ids = np.array([rowid for rowid, _ in added], np.int64)
            self._follow(collection["id"], collection["generation"], lambda index: index.add(ids, vectors))
            return [face for _, face in added]

    def _follow(self, pk: int, generation: int, change: Callable[[TieredIndex], None]) -> None:
        """Applies a committed change to the loaded index, if it was current before the change."""
        loaded = self._indexes.get(pk)
        if loaded is None:
            return
        if loaded.generation == generation:
            change(loaded.index)
            loaded.generation = generation + 1
        else:
            loaded.generation = -1  # another process wrote meanwhile: reconcile before next use

    def faces_of_image(self, collection_id: str, image_id: str, external_image_id: str | None) -> list[Face]:
        with self._lock, self._read() as db:
            pk = self._collection_row(collection_id)["id"]
            rows = db.execute(
                f"SELECT {FACE_COLUMNS} FROM {FACES_WITH_USERS}"
                " WHERE f.collection = ? AND f.image_id = ? AND f.external_image_id IS ? ORDER BY f.id",
                (pk, image_id, external_image_id),
            ).fetchall()
            return [_face(row) for row in rows]

    def list_faces(
        self,
        collection_id: str,
        after: str | None,
        limit: int,
        user_id: str | None = None,
        face_ids: Sequence[str] | None = None,
    ) -> list[Face]:
        query = f"SELECT {FACE_COLUMNS} FROM {FACES_WITH_USERS} WHERE f.collection = ? AND f.face_id > ?"
        with self._lock, self._read() as db:
            args: list[Any] = [self._collection_row(collection_id)["id"], after or ""]
            if user_id is not None:
                query += " AND u.user_id = ?"
                args.append(user_id)
            if face_ids is not None:
                query += " AND f.face_id IN (SELECT value FROM json_each(?))"
                args.append(json.dumps(list(face_ids)))
            rows = db.execute(query + " ORDER BY f.face_id LIMIT ?", (*args, limit)).fetchall()
            return [_face(row) for row in rows]

    def get_faces(self, collection_id: str, face_ids: Sequence[str]) -> list[Face]:
        return self.list_faces(collection_id, None, len(face_ids), face_ids=face_ids)

    def face_vector(self, collection_id: str, face_id: str) -> NDArray[np.float32]:
        with self._lock, self._read() as db:
            pk = self._collection_row(collection_id)["id"]
            row = db.execute("SELECT vector FROM faces WHERE collection = ? AND face_id = ?", (pk, face_id)).fetchone()
        if row is None:
            raise ResourceNotFoundException(f"Face {face_id} does not exist in collection {collection_id}")
        return np.frombuffer(self._plain(row["vector"]), np.float32).copy()

    def delete_faces(self, collection_id: str, face_ids: Sequence[str]) -> list[str]:
        if not face_ids:
            return []
        with self._lock:
            with self._write() as db:
                collection = self._collection_row(collection_id)
                deleted = db.execute(
                    "DELETE FROM faces WHERE collection = ? AND user IS NULL"
                    " AND face_id IN (SELECT value FROM json_each(?)) RETURNING id, face_id",
                    (collection["id"], json.dumps(list(face_ids))),
                ).fetchall()
                if deleted:
                    db.execute(
                        "UPDATE collections SET face_count = face_count - ?, generation = generation + 1 WHERE id = ?",
                        (len(deleted), collection["id"]),
                    )
            if deleted:
                ids = np.array([row["id"] for row in deleted], np.int64)
                self._follow(collection["id"], collection["generation"], lambda index: index.remove(ids))
                self._erase_leftovers(collection["id"])
            return [row["face_id"] for row in deleted]

    def search(
        self, collection_id: str, vector: NDArray[np.float32], limit: int, max_distance: float
    ) -> list[Neighbour]:
        with self._lock:
            collection = self._collection_row(collection_id)
            if collection["dimension"] is None:
                return []
            if len(vector) != collection["dimension"]:
                raise InvalidParameterException(
                    f"Collection {collection_id} holds {collection['dimension']}-d vectors, not {len(vector)}-d"
                )
            index = self._index_of(collection["id"], collection["dimension"])
            ids, distances = index.search(np.asarray(vector, np.float32), limit)
            near = distances <= max_distance
            ids, distances = ids[near], distances[near]
            if len(ids) == 0:
                return []
            rows = self._db.execute(
                f"SELECT {FACE_COLUMNS} FROM {FACES_WITH_USERS} WHERE f.id IN (SELECT value FROM json_each(?))",
                (json.dumps(ids.tolist()),),
            ).fetchall()
        faces = {row["id"]: _face(row) for row in rows}
        return [Neighbour(faces[int(i)], float(d)) for i, d in zip(ids, distances, strict=True) if int(i) in faces]

    # --- the vector index -------------------------------------------------------------------------

    def _index_of(self, pk: int, dimension: int) -> TieredIndex:
        """The collection's index, loaded or brought up to date with the database as needed."""
        self._notice_foreign_writes()
        loaded = self._indexes.get(pk)
        if loaded is None:
            loaded = _LoadedIndex(self._new_index(pk, dimension), -1)
            self._indexes[pk] = loaded
        self._catch_up(pk, loaded)
        return loaded.index

    def _catch_up(self, pk: int, loaded: _LoadedIndex) -> None:
        if loaded.generation == -1 or loaded.generation != self._generation(pk):
            loaded.generation = self._reconcile(pk, loaded.index)

    def _notice_foreign_writes(self) -> None:
        data_version = self._current_data_version()
        if data_version != self._data_version:
            self._data_version = data_version
            self._forget_foreign_deletions()

    def _forget_foreign_deletions(self) -> None:
        """Another connection wrote: drop (and zero) the indexes of collections it deleted, and
        have every other index checked against the database before its next use."""
        for pk in list(self._indexes):
            if self._generation(pk) == -2:
                self._drop_index(pk)
            else:
                self._indexes[pk].generation = -1

    def _drop_index(self, pk: int) -> None:
        loaded = self._indexes.pop(pk, None)
        if loaded is not None:
            loaded.index.close()
            loaded.index.remove(loaded.index.contents()[0])  # zeroes the vectors still in memory

    def _generation(self, pk: int) -> int:
        row = self._db.execute("SELECT generation FROM collections WHERE id = ?", (pk,)).fetchone()
        return -2 if row is None else int(row[0])

    def _new_index(self, pk: int, dimension: int) -> TieredIndex:
        index = TieredIndex(
            dimension,
            hnsw_threshold=self.hnsw_threshold,
            params=self.hnsw_params,
            background_min=self.background_min,
            on_rebuilt=lambda: self._save_graph(pk, index),
        )
        graph_path = self.graph_dir / f"{pk}.usearch"
        if graph_path.exists() and self.seal is None:
            try:
                index.adopt(HnswIndex.load(graph_path, dimension, self.hnsw_params))
                log.info("loaded the HNSW graph of collection %d (%d vectors)", pk, len(index))
            except (ValueError, RuntimeError, OSError):
                log.warning("ignoring unreadable graph %s; rebuilding from the database", graph_path)
        return index

    def _reconcile(self, pk: int, index: TieredIndex) -> int:
        """Makes `index` hold exactly the collection's stored vectors; returns their generation."""
        with self._read() as db:
            generation = self._generation(pk)
            rows = db.execute("SELECT id FROM faces WHERE collection = ? ORDER BY id", (pk,))
            stored = np.array([row[0] for row in rows], np.int64)
            held = index.contents()[0]
            gone = np.setdiff1d(held, stored)
            new = np.setdiff1d(stored, held)  # sorted, as `_vectors` wants
            vectors = self._vectors(new)
        if len(gone):
            index.remove(gone)
        if len(new):
            index.add(new, vectors)
        return generation

    def _vectors(self, ids: Ids) -> NDArray[np.float32]:
        """The stored vectors of `ids`, which are ascending and all stored."""
        blobs = b"".join(
            self._plain(row[0])
            for row in self._db.execute(
                "SELECT vector FROM faces WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id",
                (json.dumps(ids.tolist()),),
            )
        )
        return np.frombuffer(blobs, np.float32).reshape(len(ids), -1) if len(ids) else np.empty((0, 0), np.float32)

    def _save_graph(self, pk: int, index: TieredIndex) -> None:
        """Writes the collection's HNSW graph atomically, so a restart need not rebuild it."""
        if self.seal is not None:
            return
        final = self.graph_dir / f"{pk}.usearch"
        partial = final.with_suffix(".partial")
        with self._graph_lock:
            loaded = self._indexes.get(pk)
            if loaded is None or loaded.index is not index:
                return  # the collection was deleted or its index dropped meanwhile
            self.graph_dir.mkdir(exist_ok=True)
            self._write_graph(index, partial, final)

    @staticmethod
    def _write_graph(index: TieredIndex, partial: Path, final: Path) -> None:
        try:
            if index.save(partial):
                with open(partial, "rb") as written:
                    os.fsync(written.fileno())
                os.replace(partial, final)
        finally:
            partial.unlink(missing_ok=True)

    def wait_for_indexes(self, timeout: float | None = None) -> bool:
        """Waits for background HNSW builds (benchmarks and tests); True when none is left."""
        return all(loaded.index.wait(timeout) for loaded in list(self._indexes.values()))

    # --- users ------------------------------------------------------------------------------------

    def create_user(self, collection_id: str, user_id: str) -> User:
        with self._lock:
            try:
                with self._write() as db:
                    pk = self._collection_row(collection_id)["id"]
                    db.execute(
                        "INSERT INTO users (collection, user_id, created_at) VALUES (?, ?, ?)",
                        (pk, user_id, time.time()),
                    )
                    db.execute("UPDATE collections SET user_count = user_count + 1 WHERE id = ?", (pk,))
            except sqlite3.IntegrityError:
                raise ConflictException(f"User {user_id} already exists in collection {collection_id}") from None
            return self.get_user(collection_id, user_id)

    def delete_user(self, collection_id: str, user_id: str) -> None:
        with self._lock, self._write() as db:
            pk = self._collection_row(collection_id)["id"]
            if db.execute("DELETE FROM users WHERE collection = ? AND user_id = ?", (pk, user_id)).rowcount == 0:
                raise _no_user(collection_id, user_id)
            db.execute("UPDATE collections SET user_count = user_count - 1 WHERE id = ?", (pk,))

    def get_user(self, collection_id: str, user_id: str) -> User:
        users = self._users(collection_id, "u.user_id = ?", (user_id,), 1)
        if not users:
            raise _no_user(collection_id, user_id)
        return users[0]

    def list_users(self, collection_id: str, after: str | None, limit: int) -> list[User]:
        return self._users(collection_id, "u.user_id > ?", (after or "",), limit)

    def _users(self, collection_id: str, condition: str, args: tuple[Any, ...], limit: int) -> list[User]:
        with self._lock, self._read() as db:
            pk = self._collection_row(collection_id)["id"]
            rows = db.execute(
                "SELECT u.user_id, u.created_at, (SELECT COUNT(*) FROM faces f WHERE f.user = u.id) AS face_count"
                f" FROM users u WHERE u.collection = ? AND {condition} ORDER BY u.user_id LIMIT ?",
                (pk, *args, limit),
            ).fetchall()
        return [User(row["user_id"], row["face_count"], _datetime(row["created_at"])) for row in rows]

    def associate_faces(self, collection_id: str, user_id: str, face_ids: Sequence[str]) -> list[str]:
        return self._set_user(collection_id, user_id, face_ids, "user = :user", "user IS NULL")

    def disassociate_faces(self, collection_id: str, user_id: str, face_ids: Sequence[str]) -> list[str]:
        return self._set_user(collection_id, user_id, face_ids, "user = NULL", "user = :user")

    def _set_user(
        self, collection_id: str, user_id: str, face_ids: Sequence[str], assignment: str, condition: str
    ) -> list[str]:
        with self._lock, self._write() as db:
            pk = self._collection_row(collection_id)["id"]
            user = db.execute("SELECT id FROM users WHERE collection = ? AND user_id = ?", (pk, user_id)).fetchone()
            if user is None:
                raise _no_user(collection_id, user_id)
            rows = db.execute(
                f"UPDATE faces SET {assignment} WHERE collection = :collection AND {condition}"
                " AND face_id IN (SELECT value FROM json_each(:ids)) RETURNING face_id",
                {"user": user["id"], "collection": pk, "ids": json.dumps(list(face_ids))},
            ).fetchall()
            return [row["face_id"] for row in rows]

    # --- the celebrity gallery's people -----------------------------------------------------------

    def put_celebrity(self, celebrity: Celebrity) -> None:
        with self._lock, self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO celebrities (celebrity_id, name, urls, known_gender, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    celebrity.celebrity_id,
                    celebrity.name,
                    json.dumps(list(celebrity.urls)),
                    celebrity.known_gender,
                    time.time(),
                ),
            )

    def get_celebrity(self, celebrity_id: str) -> Celebrity:
        with self._lock:
            row = self._db.execute("SELECT * FROM celebrities WHERE celebrity_id = ?", (celebrity_id,)).fetchone()
        if row is None:
            raise ResourceNotFoundException(f"Celebrity {celebrity_id} does not exist")
        return _celebrity(row)

    def list_celebrities(self) -> list[Celebrity]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM celebrities ORDER BY celebrity_id").fetchall()
        return [_celebrity(row) for row in rows]

    def delete_celebrity(self, celebrity_id: str) -> None:
        with self._lock, self._write() as db:
            db.execute("DELETE FROM celebrities WHERE celebrity_id = ?", (celebrity_id,))

    # --- idempotency ------------------------------------------------------------------------------

    def recall_request(self, token: str, operation: str) -> tuple[str, dict[str, Any]] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT fingerprint, response FROM requests WHERE token = ? AND operation = ? AND created_at > ?",
                (token, operation, time.time() - REQUEST_RETENTION_SECONDS),
            ).fetchone()
        return None if row is None else (row["fingerprint"], json.loads(row["response"]))

    def remember_request(self, token: str, operation: str, fingerprint: str, response: dict[str, Any]) -> None:
        now = time.time()
        with self._lock, self._write() as db:
            db.execute("DELETE FROM requests WHERE created_at <= ?", (now - REQUEST_RETENTION_SECONDS,))
            db.execute(
                "INSERT OR REPLACE INTO requests VALUES (?, ?, ?, ?, ?)",
                (token, operation, fingerprint, json.dumps(response, default=str), now),
            )

    def close(self) -> None:
        """Saves HNSW graphs that changed (so the next start loads instead of rebuilding) and closes."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._notice_foreign_writes()
            for pk, loaded in self._indexes.items():
                self._catch_up(pk, loaded)  # another process's deletes must not reach a saved graph
                loaded.index.close()
                if loaded.index.dirty and loaded.index.tier == "hnsw":
                    with suppress(OSError):
                        self._save_graph(pk, loaded.index)
            self._indexes.clear()
            self._db.close()


def _face(row: sqlite3.Row) -> Face:
    return Face(
        face_id=row["face_id"],
        image_id=row["image_id"],
        external_image_id=row["external_image_id"],
        bounding_box=(row["width"], row["height"], row["left"], row["top"]),
        confidence=row["confidence"],
        user_id=row["user_id"],
        created_at=_datetime(row["created_at"]),
    )


def _celebrity(row: sqlite3.Row) -> Celebrity:
    return Celebrity(row["celebrity_id"], row["name"], tuple(json.loads(row["urls"])), row["known_gender"])


def _datetime(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def _no_user(collection_id: str, user_id: str) -> ResourceNotFoundException:
    return ResourceNotFoundException(f"User {user_id} does not exist in collection {collection_id}")
