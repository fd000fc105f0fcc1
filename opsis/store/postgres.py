"""The server face store: PostgreSQL with pgvector, for deployments that already run a database.

Selected with `OPSIS_STORE=postgresql://user:password@host/dbname` (unset: the embedded SQLite
store). Needs the optional `postgresql` extra (`pip install 'opsis[postgresql]'`: psycopg and the
pgvector adapter) and the `vector` extension in the database: the first open runs
`CREATE EXTENSION IF NOT EXISTS vector`, which needs a role allowed to create it (or a DBA who did).

* Semantics: the same as `SQLiteFaceStore`, with the same `opsis.errors` exceptions. Every method
  is one transaction (`with conn.transaction()`), committed before it returns; writes to a
  collection lock its row first, so several servers on one database serialise per collection.
  Face rows have identity ids (never reused, as SQLite's AUTOINCREMENT).
* Schema: versioned migrations (`MIGRATIONS`), applied on open under an advisory lock; the
  table `opsis_schema` records the version of each component (`face_store` here).
* Vectors: a `vector` column without a fixed dimension; a collection's dimension is set by its
  first face and checked on every insert and search. Search orders by pgvector's `<->`, the
  Euclidean (L2) distance, as `Neighbour.distance` promises. Below `hnsw_threshold` faces it is an
  exact scan of the collection; once a collection reaches it, a partial HNSW index
  (`vector_l2_ops`, on `vector::vector(d)` WHERE collection = its key) is built in the insert's
  transaction (writers to `faces` wait meanwhile), and searches run with `hnsw.ef_search` = 400
  and `hnsw.iterative_scan = strict_order` (approximate: recall >= 0.99 in the tests; MODELS.md
  §10 measured 0.997 / 0.999 at ef_search 64 / 128).
* Erasure: DELETE removes the rows from every query at once, and a VACUUM of `faces` follows
  every face or collection delete so the dead tuples are reclaimed (its cost grows with the
  table and its HNSW indexes, which it scans; the call waits for it). PostgreSQL does not zero
  what it reclaims: until overwritten, freed heap and HNSW index space, the write-ahead log
  (until its segments are recycled), base backups and replicas may still hold the bytes of a
  deleted vector. Unlike the SQLite store (secure_delete, emptied WAL), nothing here promises
  that no file holds them; encrypt the database's disk and expire its backups instead.
* Connection: one per store, shared by the process's threads under a lock (no pool, no
  reconnect: a database restart needs an Opsis restart). Driver errors other than the unique
  violations mapped above (a lost connection, say) reach the caller as psycopg errors.
* Not done: OPSIS_VECTOR_KEY (sealed vectors cannot be searched by pgvector) is refused; the job
  store, the audit log and Celery's broker stay embedded (SQLite under the data directory).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import numpy as np
import psycopg
from numpy.typing import NDArray
from pgvector.psycopg import register_vector
from psycopg import sql
from psycopg.rows import dict_row

from opsis.errors import (
    ConflictException,
    InvalidParameterException,
    ResourceAlreadyExistsException,
    ResourceNotFoundException,
)
from opsis.store.base import Celebrity, Collection, Face, Neighbour, NewFace, User
from opsis.store.sqlite import REQUEST_RETENTION_SECONDS

COMPONENT = "face_store"
# Searches through an HNSW index consider this many candidates (pgvector's default is 40).
EF_SEARCH = 400

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE EXTENSION IF NOT EXISTS vector;
    CREATE TABLE collections (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        collection_id TEXT COLLATE "C" NOT NULL UNIQUE,
        face_model_version TEXT NOT NULL,
        dimension INTEGER,
        created_at DOUBLE PRECISION NOT NULL,
        face_count BIGINT NOT NULL DEFAULT 0,
        user_count BIGINT NOT NULL DEFAULT 0
    );
    CREATE TABLE tags (
        collection BIGINT NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
        key TEXT COLLATE "C" NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (collection, key)
    );
    CREATE TABLE users (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        collection BIGINT NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
        user_id TEXT COLLATE "C" NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        UNIQUE (collection, user_id)
    );
    CREATE TABLE faces (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        collection BIGINT NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
        face_id TEXT COLLATE "C" NOT NULL,
        image_id TEXT NOT NULL,
        external_image_id TEXT,
        width DOUBLE PRECISION NOT NULL,
        height DOUBLE PRECISION NOT NULL,
        "left" DOUBLE PRECISION NOT NULL,
        top DOUBLE PRECISION NOT NULL,
        confidence DOUBLE PRECISION NOT NULL,
        "user" BIGINT REFERENCES users(id) ON DELETE SET NULL,
        created_at DOUBLE PRECISION NOT NULL,
        vector vector NOT NULL,
        UNIQUE (collection, face_id)
    );
    CREATE INDEX faces_by_image ON faces (collection, image_id);
    CREATE INDEX faces_by_user ON faces ("user");
    CREATE TABLE requests (
        token TEXT NOT NULL,
        operation TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        response TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (token, operation)
    );
    CREATE INDEX requests_by_age ON requests (created_at);
    CREATE TABLE celebrities (
        celebrity_id TEXT COLLATE "C" PRIMARY KEY,
        name TEXT NOT NULL,
        urls TEXT NOT NULL,
        known_gender TEXT,
        created_at DOUBLE PRECISION NOT NULL
    );
    """,
)

FACE_COLUMNS = (
    'f.id, f.face_id, f.image_id, f.external_image_id, f.width, f.height, f."left", f.top,'
    " f.confidence, u.user_id, f.created_at"
)
FACES_WITH_USERS = 'faces f LEFT JOIN users u ON u.id = f."user"'


class PostgresFaceStore:
    """`FaceStore` on a PostgreSQL database with the pgvector extension."""

    def __init__(self, dsn: str, *, hnsw_threshold: int = 100_000) -> None:
        self.hnsw_threshold = hnsw_threshold
        self._lock = threading.RLock()  # one connection, shared by the server's threads
        self._closed = False
        self._db: psycopg.Connection[dict[str, Any]] = psycopg.connect(dsn, autocommit=True, row_factory=dict_row)
        try:
            with self._lock:
                self._migrate()
                register_vector(self._db)
        except BaseException:
            self._db.close()
            raise

    # --- plumbing ---------------------------------------------------------------------------------

    def _migrate(self) -> None:
        """Brings the schema to the last of `MIGRATIONS`, one process at a time."""
        with self._db.transaction():
            self._db.execute("SELECT pg_advisory_xact_lock(hashtext('opsis_schema'))")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS opsis_schema (component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
            )
            row = self._db.execute("SELECT version FROM opsis_schema WHERE component = %s", (COMPONENT,)).fetchone()
            version = 0 if row is None else int(row["version"])
            if version > len(MIGRATIONS):
                raise RuntimeError(f"the database has face store schema version {version}, newer than this Opsis knows")
            for script in MIGRATIONS[version:]:
                self._db.execute(script.encode())  # several statements: no parameters, simple protocol
            self._db.execute(
                "INSERT INTO opsis_schema VALUES (%s, %s) ON CONFLICT (component) DO UPDATE SET version = %s",
                (COMPONENT, len(MIGRATIONS), len(MIGRATIONS)),
            )

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        """One transaction on the shared connection, committed when the block ends."""
        with self._lock, self._db.transaction():
            yield self._db

    def _collection_row(self, collection_id: str, lock: bool = False) -> dict[str, Any]:
        """The collection's row; `lock` holds it until the transaction ends (writers of its faces)."""
        query = "SELECT * FROM collections WHERE collection_id = %s" + (" FOR UPDATE" if lock else "")
        row = self._db.execute(query, (collection_id,)).fetchone()
        if row is None:
            raise ResourceNotFoundException(f"The collection id: {collection_id} does not exist")
        return row

    def _vacuum(self) -> None:
        """Reclaims the dead tuples of deleted faces (see the module doc for what it cannot do)."""
        with self._lock:
            self._db.execute("VACUUM faces")

    # --- collections ------------------------------------------------------------------------------

    def create_collection(self, collection_id: str, face_model_version: str, tags: Mapping[str, str]) -> Collection:
        try:
            with self._transaction() as db:
                row = db.execute(
                    "INSERT INTO collections (collection_id, face_model_version, created_at) VALUES (%s, %s, %s)"
                    " RETURNING id",
                    (collection_id, face_model_version, time.time()),
                ).fetchone()
                assert row is not None
                with db.cursor() as cursor:
                    cursor.executemany(
                        "INSERT INTO tags (collection, key, value) VALUES (%s, %s, %s)",
                        [(row["id"], key, value) for key, value in tags.items()],
                    )
        except psycopg.errors.UniqueViolation:
            raise ResourceAlreadyExistsException(f"The collection id: {collection_id} already exists") from None
        return self.get_collection(collection_id)

    def get_collection(self, collection_id: str) -> Collection:
        with self._transaction():
            return self._collection(self._collection_row(collection_id))

    def list_collections(self, after: str | None, limit: int) -> list[Collection]:
        with self._transaction() as db:
            rows = db.execute(
                "SELECT * FROM collections WHERE collection_id > %s AND strpos(collection_id, ':') = 0"
                " ORDER BY collection_id LIMIT %s",
                (after or "", limit),
            ).fetchall()
            return [self._collection(row) for row in rows]

    def _collection(self, row: dict[str, Any]) -> Collection:
        tags = self._db.execute("SELECT key, value FROM tags WHERE collection = %s", (row["id"],)).fetchall()
        return Collection(
            collection_id=row["collection_id"],
            face_model_version=row["face_model_version"],
            created_at=_datetime(row["created_at"]),
            face_count=row["face_count"],
            user_count=row["user_count"],
            tags={tag["key"]: tag["value"] for tag in tags},
        )

    def delete_collection(self, collection_id: str) -> None:
        with self._lock:
            with self._transaction() as db:
                pk = self._collection_row(collection_id, lock=True)["id"]
                db.execute("DELETE FROM collections WHERE id = %s", (pk,))
                db.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(_index_name(pk)))
            self._vacuum()

    def tag_collection(self, collection_id: str, tags: Mapping[str, str]) -> None:
        with self._transaction() as db, db.cursor() as cursor:
            pk = self._collection_row(collection_id)["id"]
            cursor.executemany(
                "INSERT INTO tags (collection, key, value) VALUES (%s, %s, %s)"
                " ON CONFLICT (collection, key) DO UPDATE SET value = EXCLUDED.value",
                [(pk, key, value) for key, value in tags.items()],
            )

    def untag_collection(self, collection_id: str, keys: Sequence[str]) -> None:
        with self._transaction() as db:
            pk = self._collection_row(collection_id)["id"]
            db.execute("DELETE FROM tags WHERE collection = %s AND key = ANY(%s)", (pk, list(keys)))

    # --- faces ------------------------------------------------------------------------------------

    def add_faces(self, collection_id: str, faces: Sequence[NewFace]) -> list[Face]:
        if not faces:
            return []
        vectors = np.stack([np.asarray(face.vector, np.float32) for face in faces])
        now = time.time()
        with self._transaction() as db:
            collection = self._collection_row(collection_id, lock=True)
            dimension = collection["dimension"] or vectors.shape[1]
            if vectors.shape[1] != dimension:
                raise InvalidParameterException(
                    f"Collection {collection_id} holds {dimension}-d vectors, not {vectors.shape[1]}-d"
                )
            added = [
                Face(str(uuid.uuid4()), face.image_id, face.external_image_id, face.bounding_box, face.confidence,
                     None, _datetime(now))
                for face in faces
            ]  # fmt: skip
            with db.cursor() as cursor:
                cursor.executemany(
                    'INSERT INTO faces (collection, face_id, image_id, external_image_id, width, height, "left", top,'
                    " confidence, created_at, vector) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    [
                        (collection["id"], face.face_id, face.image_id, face.external_image_id, *face.bounding_box,
                         face.confidence, now, vector)
                        for face, vector in zip(added, vectors, strict=True)
                    ],
                )  # fmt: skip
            count = db.execute(
                "UPDATE collections SET dimension = %s, face_count = face_count + %s WHERE id = %s"
                " RETURNING face_count",
                (dimension, len(faces), collection["id"]),
            ).fetchone()
            assert count is not None
            if count["face_count"] >= self.hnsw_threshold and not self._has_index(collection["id"]):
                db.execute(
                    sql.SQL(
                        "CREATE INDEX IF NOT EXISTS {} ON faces USING hnsw ((vector::vector({})) vector_l2_ops)"
                        " WHERE collection = {}"
                    ).format(_index_name(collection["id"]), sql.Literal(dimension), sql.Literal(collection["id"]))
                )
        return added

    def _has_index(self, collection_pk: int) -> bool:
        """Whether the collection has its HNSW index (looked up without locking `faces`, which
        CREATE INDEX IF NOT EXISTS would do on every insert)."""
        row = self._db.execute(
            "SELECT to_regclass(%s) IS NOT NULL AS found", (f"faces_hnsw_{collection_pk}",)
        ).fetchone()
        return row is not None and bool(row["found"])

    def faces_of_image(self, collection_id: str, image_id: str, external_image_id: str | None) -> list[Face]:
        with self._transaction() as db:
            pk = self._collection_row(collection_id)["id"]
            rows = db.execute(
                f"SELECT {FACE_COLUMNS} FROM {FACES_WITH_USERS} WHERE f.collection = %s AND f.image_id = %s"
                " AND f.external_image_id IS NOT DISTINCT FROM %s ORDER BY f.id",
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
        query = f"SELECT {FACE_COLUMNS} FROM {FACES_WITH_USERS} WHERE f.collection = %s AND f.face_id > %s"
        with self._transaction() as db:
            args: list[Any] = [self._collection_row(collection_id)["id"], after or ""]
            if user_id is not None:
                query += " AND u.user_id = %s"
                args.append(user_id)
            if face_ids is not None:
                query += " AND f.face_id = ANY(%s)"
                args.append(list(face_ids))
            rows = db.execute(query + " ORDER BY f.face_id LIMIT %s", (*args, limit)).fetchall()
        return [_face(row) for row in rows]

    def get_faces(self, collection_id: str, face_ids: Sequence[str]) -> list[Face]:
        return self.list_faces(collection_id, None, len(face_ids), face_ids=face_ids)

    def face_vector(self, collection_id: str, face_id: str) -> NDArray[np.float32]:
        with self._transaction() as db:
            pk = self._collection_row(collection_id)["id"]
            row = db.execute(
                "SELECT vector FROM faces WHERE collection = %s AND face_id = %s", (pk, face_id), binary=True
            ).fetchone()
        if row is None:
            raise ResourceNotFoundException(f"Face {face_id} does not exist in collection {collection_id}")
        return np.array(row["vector"].to_numpy(), np.float32)

    def delete_faces(self, collection_id: str, face_ids: Sequence[str]) -> list[str]:
        if not face_ids:
            return []
        with self._lock:
            with self._transaction() as db:
                collection = self._collection_row(collection_id, lock=True)
                deleted = db.execute(
                    'DELETE FROM faces WHERE collection = %s AND "user" IS NULL AND face_id = ANY(%s)'
                    " RETURNING id, face_id",
                    (collection["id"], list(face_ids)),
                ).fetchall()
                if deleted:
                    db.execute(
                        "UPDATE collections SET face_count = face_count - %s WHERE id = %s",
                        (len(deleted), collection["id"]),
                    )
            if deleted:
                self._vacuum()
            return [row["face_id"] for row in sorted(deleted, key=lambda row: row["id"])]

    def search(
        self, collection_id: str, vector: NDArray[np.float32], limit: int, max_distance: float
    ) -> list[Neighbour]:
        with self._transaction() as db:
            collection = self._collection_row(collection_id)
            dimension = collection["dimension"]
            if dimension is None:
                return []
            if len(vector) != dimension:
                raise InvalidParameterException(
                    f"Collection {collection_id} holds {dimension}-d vectors, not {len(vector)}-d"
                )
            self._search_settings()
            rows = db.execute(
                self._nearest(collection["id"], dimension), {"q": np.asarray(vector, np.float32), "limit": limit}
            ).fetchall()
        return [Neighbour(_face(row), float(row["distance"])) for row in rows if row["distance"] <= max_distance]

    def _search_settings(self) -> None:
        """For this transaction: HNSW scans look at EF_SEARCH candidates, and go on (in distance
        order) while fewer than LIMIT rows have come out."""
        self._db.execute(sql.SQL("SET LOCAL hnsw.ef_search = {}").format(sql.Literal(EF_SEARCH)))
        self._db.execute("SET LOCAL hnsw.iterative_scan = strict_order")

    @staticmethod
    def _nearest(collection_pk: int, dimension: int) -> sql.Composed:
        """The search query (parameters `q` and `limit`). The collection and the dimension are
        literals, so the planner matches the collection's partial HNSW index when it has one."""
        return sql.SQL(
            "SELECT {columns}, f.vector::vector({d}) <-> %(q)s::vector({d}) AS distance FROM {faces}"
            " WHERE f.collection = {pk} ORDER BY distance LIMIT %(limit)s"
        ).format(
            columns=sql.SQL(FACE_COLUMNS),
            faces=sql.SQL(FACES_WITH_USERS),
            d=sql.Literal(dimension),
            pk=sql.Literal(collection_pk),
        )

    # --- users ------------------------------------------------------------------------------------

    def create_user(self, collection_id: str, user_id: str) -> User:
        try:
            with self._transaction() as db:
                pk = self._collection_row(collection_id, lock=True)["id"]
                db.execute(
                    "INSERT INTO users (collection, user_id, created_at) VALUES (%s, %s, %s)",
                    (pk, user_id, time.time()),
                )
                db.execute("UPDATE collections SET user_count = user_count + 1 WHERE id = %s", (pk,))
        except psycopg.errors.UniqueViolation:
            raise ConflictException(f"User {user_id} already exists in collection {collection_id}") from None
        return self.get_user(collection_id, user_id)

    def delete_user(self, collection_id: str, user_id: str) -> None:
        with self._transaction() as db:
            pk = self._collection_row(collection_id, lock=True)["id"]
            if db.execute("DELETE FROM users WHERE collection = %s AND user_id = %s", (pk, user_id)).rowcount == 0:
                raise _no_user(collection_id, user_id)
            db.execute("UPDATE collections SET user_count = user_count - 1 WHERE id = %s", (pk,))

    def get_user(self, collection_id: str, user_id: str) -> User:
        users = self._users(collection_id, "u.user_id = %s", (user_id,), 1)
        if not users:
            raise _no_user(collection_id, user_id)
        return users[0]

    def list_users(self, collection_id: str, after: str | None, limit: int) -> list[User]:
        return self._users(collection_id, "u.user_id > %s", (after or "",), limit)

    def _users(self, collection_id: str, condition: str, args: tuple[Any, ...], limit: int) -> list[User]:
        with self._transaction() as db:
            pk = self._collection_row(collection_id)["id"]
            rows = db.execute(
                'SELECT u.user_id, u.created_at, (SELECT COUNT(*) FROM faces f WHERE f."user" = u.id) AS face_count'
                f" FROM users u WHERE u.collection = %s AND {condition} ORDER BY u.user_id LIMIT %s",
                (pk, *args, limit),
            ).fetchall()
        return [User(row["user_id"], row["face_count"], _datetime(row["created_at"])) for row in rows]

    def associate_faces(self, collection_id: str, user_id: str, face_ids: Sequence[str]) -> list[str]:
        return self._set_user(collection_id, user_id, face_ids, '"user" = %(user)s', '"user" IS NULL')

    def disassociate_faces(self, collection_id: str, user_id: str, face_ids: Sequence[str]) -> list[str]:
        return self._set_user(collection_id, user_id, face_ids, '"user" = NULL', '"user" = %(user)s')

    def _set_user(
        self, collection_id: str, user_id: str, face_ids: Sequence[str], assignment: str, condition: str
    ) -> list[str]:
        with self._transaction() as db:
            pk = self._collection_row(collection_id, lock=True)["id"]
            user = db.execute("SELECT id FROM users WHERE collection = %s AND user_id = %s", (pk, user_id)).fetchone()
            if user is None:
                raise _no_user(collection_id, user_id)
            rows = db.execute(
                f"UPDATE faces SET {assignment} WHERE collection = %(collection)s AND {condition}"
                " AND face_id = ANY(%(ids)s) RETURNING id, face_id",
                {"user": user["id"], "collection": pk, "ids": list(face_ids)},
            ).fetchall()
        return [row["face_id"] for row in sorted(rows, key=lambda row: row["id"])]

    # --- the celebrity gallery's people -----------------------------------------------------------

    def put_celebrity(self, celebrity: Celebrity) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO celebrities (celebrity_id, name, urls, known_gender, created_at)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (celebrity_id) DO UPDATE SET name = EXCLUDED.name,"
                " urls = EXCLUDED.urls, known_gender = EXCLUDED.known_gender, created_at = EXCLUDED.created_at",
                (
                    celebrity.celebrity_id,
                    celebrity.name,
                    json.dumps(list(celebrity.urls)),
                    celebrity.known_gender,
                    time.time(),
                ),
            )

    def get_celebrity(self, celebrity_id: str) -> Celebrity:
        with self._transaction() as db:
            row = db.execute("SELECT * FROM celebrities WHERE celebrity_id = %s", (celebrity_id,)).fetchone()
        if row is None:
            raise ResourceNotFoundException(f"Celebrity {celebrity_id} does not exist")
        return _celebrity(row)

    def list_celebrities(self) -> list[Celebrity]:
        with self._transaction() as db:
            rows = db.execute("SELECT * FROM celebrities ORDER BY celebrity_id").fetchall()
        return [_celebrity(row) for row in rows]

    def delete_celebrity(self, celebrity_id: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM celebrities WHERE celebrity_id = %s", (celebrity_id,))

    # --- idempotency ------------------------------------------------------------------------------

    def recall_request(self, token: str, operation: str) -> tuple[str, dict[str, Any]] | None:
        with self._transaction() as db:
            row = db.execute(
                "SELECT fingerprint, response FROM requests WHERE token = %s AND operation = %s AND created_at > %s",
                (token, operation, time.time() - REQUEST_RETENTION_SECONDS),
            ).fetchone()
        return None if row is None else (row["fingerprint"], json.loads(row["response"]))

    def remember_request(self, token: str, operation: str, fingerprint: str, response: dict[str, Any]) -> None:
        now = time.time()
        with self._transaction() as db:
            db.execute("DELETE FROM requests WHERE created_at <= %s", (now - REQUEST_RETENTION_SECONDS,))
            db.execute(
                "INSERT INTO requests VALUES (%s, %s, %s, %s, %s) ON CONFLICT (token, operation) DO UPDATE"
                " SET fingerprint = EXCLUDED.fingerprint, response = EXCLUDED.response,"
                " created_at = EXCLUDED.created_at",
                (token, operation, fingerprint, json.dumps(response, default=str), now),
            )

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._db.close()


def _index_name(collection_pk: int) -> sql.Identifier:
    return sql.Identifier(f"faces_hnsw_{collection_pk}")


def _face(row: Mapping[str, Any]) -> Face:
    return Face(
        face_id=row["face_id"],
        image_id=row["image_id"],
        external_image_id=row["external_image_id"],
        bounding_box=(row["width"], row["height"], row["left"], row["top"]),
        confidence=row["confidence"],
        user_id=row["user_id"],
        created_at=_datetime(row["created_at"]),
    )


def _celebrity(row: Mapping[str, Any]) -> Celebrity:
    return Celebrity(row["celebrity_id"], row["name"], tuple(json.loads(row["urls"])), row["known_gender"])


def _datetime(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def _no_user(collection_id: str, user_id: str) -> ResourceNotFoundException:
    return ResourceNotFoundException(f"User {user_id} does not exist in collection {collection_id}")
