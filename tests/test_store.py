"""The FaceStore contract, run against every backend, plus the embedded backend's own guarantees:
persistence, erasure, sharing one file between processes, and the HNSW tier's recall."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from opsis.errors import (
    ConflictException,
    InvalidParameterException,
    ResourceAlreadyExistsException,
    ResourceNotFoundException,
)
from opsis.store.base import Celebrity, FaceStore, NewFace
from opsis.store.sqlite import MIGRATIONS, SQLiteFaceStore
from tests.postgres_server import PostgresServer

DIMENSION = 128
OpenStore = Callable[..., FaceStore]


@pytest.fixture(params=["sqlite", "postgresql"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenStore]:
    """Opens stores of one backend on one database (a fresh one per test); every store opened is
    closed afterwards."""
    opened: list[FaceStore] = []
    with ExitStack() as stack:
        if request.param == "postgresql":
            from opsis.store.postgres import PostgresFaceStore

            url = stack.enter_context(request.getfixturevalue("postgres_server").database())

            def open_one(hnsw_threshold: int = 100_000) -> FaceStore:
                store: FaceStore = PostgresFaceStore(url, hnsw_threshold=hnsw_threshold)
                opened.append(store)
                return store

        else:

            def open_one(hnsw_threshold: int = 100_000) -> FaceStore:
                store: FaceStore = SQLiteFaceStore(tmp_path / "faces.db", hnsw_threshold=hnsw_threshold)
                opened.append(store)
                return store

        yield open_one
        for store in opened:
            store.close()


# Tests of what only the embedded store has (its files, saved graphs, in-memory indexes) run on it alone.
sqlite_only = pytest.mark.parametrize("open_store", ["sqlite"], indirect=True)
postgresql_only = pytest.mark.parametrize("open_store", ["postgresql"], indirect=True)


@pytest.fixture
def store(open_store: OpenStore) -> FaceStore:
    return open_store()


def vectors(count: int, seed: int = 0) -> NDArray[np.float32]:
    return np.random.default_rng(seed).normal(0, 0.1, (count, DIMENSION)).astype(np.float32)


def new_faces(data: NDArray[np.float32], image_id: str = "image", external: str | None = None) -> list[NewFace]:
    return [NewFace(image_id, external, (0.1, 0.2, 0.3, 0.4), 99.5, vector) for vector in data]


def exact_nearest(data: NDArray[np.float32], query: NDArray[np.float32], k: int) -> NDArray[np.intp]:
    return np.argsort(np.linalg.norm(data - query, axis=1), kind="stable")[:k]


# --- collections ----------------------------------------------------------------------------------


def test_collections(store: FaceStore) -> None:
    created = store.create_collection("people", "model-v1", {"team": "doors"})
    assert (created.face_count, created.user_count, created.face_model_version) == (0, 0, "model-v1")
    assert store.get_collection("people").tags == {"team": "doors"}
    with pytest.raises(ResourceAlreadyExistsException):
        store.create_collection("people", "model-v1", {})
    store.tag_collection("people", {"owner": "ana", "team": "gates"})
    store.untag_collection("people", ["owner", "absent"])
    assert store.get_collection("people").tags == {"team": "gates"}
    store.delete_collection("people")
    for call in (store.get_collection, store.delete_collection):
        with pytest.raises(ResourceNotFoundException, match="people"):
            call("people")


def test_list_collections_by_keyset(store: FaceStore) -> None:
    for name in ("c", "a", "e", "b", "d"):
        store.create_collection(name, "model-v1", {})
    assert [c.collection_id for c in store.list_collections(None, 2)] == ["a", "b"]
    assert [c.collection_id for c in store.list_collections("b", 2)] == ["c", "d"]
    assert [c.collection_id for c in store.list_collections("d", 2)] == ["e"]


# --- faces ----------------------------------------------------------------------------------------


def test_add_list_and_find_faces(store: FaceStore) -> None:
    store.create_collection("people", "model-v1", {})
    first = store.add_faces("people", new_faces(vectors(3), "img-1"))
    second = store.add_faces("people", new_faces(vectors(2, seed=1), "img-1", external="door-7"))
    assert store.get_collection("people").face_count == 5
    assert len({face.face_id for face in first + second}) == 5
    # NULL external ids match NULL only; a given one matches itself only.
    assert {f.face_id for f in store.faces_of_image("people", "img-1", None)} == {f.face_id for f in first}
    assert {f.face_id for f in store.faces_of_image("people", "img-1", "door-7")} == {f.face_id for f in second}
    assert store.faces_of_image("people", "img-2", None) == []
    listed = store.list_faces("people", None, 10)
    assert [f.face_id for f in listed] == sorted(f.face_id for f in first + second)
    page = store.list_faces("people", listed[1].face_id, 2)
    assert [f.face_id for f in page] == [f.face_id for f in listed[2:4]]
    wanted = [first[0].face_id, second[1].face_id, "not-a-face"]
    assert {f.face_id for f in store.get_faces("people", wanted)} == set(wanted[:2])
    np.testing.assert_array_equal(store.face_vector("people", first[1].face_id), vectors(3)[1])
    with pytest.raises(ResourceNotFoundException):
        store.face_vector("people", "not-a-face")
    with pytest.raises(ResourceNotFoundException):
        store.add_faces("nobody", new_faces(vectors(1)))


def test_a_collection_holds_vectors_of_one_dimension(store: FaceStore) -> None:
    store.create_collection("people", "model-v1", {})
    store.add_faces("people", new_faces(vectors(1)))
    wrong = np.zeros(64, np.float32)
    with pytest.raises(InvalidParameterException):
        store.add_faces("people", new_faces(wrong[None]))
    with pytest.raises(InvalidParameterException):
        store.search("people", wrong, 1, 10.0)


def test_search_is_exact_below_the_hnsw_threshold(store: FaceStore) -> None:
    data = vectors(500)
    store.create_collection("people", "model-v1", {})
    faces = store.add_faces("people", new_faces(data))
    for query in vectors(5, seed=9):
        found = store.search("people", query, 10, 100.0)
        assert [n.face.face_id for n in found] == [faces[i].face_id for i in exact_nearest(data, query, 10)]
        distances = [n.distance for n in found]
        assert distances == sorted(distances)
        np.testing.assert_allclose(distances, np.sort(np.linalg.norm(data - query, axis=1))[:10], rtol=1e-5)
    near = store.search("people", data[7], 10, max_distance=0.01)
    assert [n.face.face_id for n in near] == [faces[7].face_id]
    store.create_collection("empty", "model-v1", {})
    assert store.search("empty", data[0], 10, 100.0) == []


def test_delete_faces_spares_faces_of_users(store: FaceStore) -> None:
    data = vectors(4)
    store.create_collection("people", "model-v1", {})
    faces = store.add_faces("people", new_faces(data))
    store.create_user("people", "ana")
    store.associate_faces("people", "ana", [faces[0].face_id])
    deleted = store.delete_faces("people", [faces[0].face_id, faces[1].face_id, "not-a-face"])
    assert deleted == [faces[1].face_id]
    assert store.get_collection("people").face_count == 3
    found = store.search("people", data[1], 10, 100.0)
    assert faces[1].face_id not in {n.face.face_id for n in found}
    assert len(found) == 3


# --- users ----------------------------------------------------------------------------------------


def test_users(store: FaceStore) -> None:
    store.create_collection("people", "model-v1", {})
    faces = store.add_faces("people", new_faces(vectors(3)))
    ids = [face.face_id for face in faces]
    assert store.create_user("people", "ana").face_count == 0
    with pytest.raises(ConflictException):
        store.create_user("people", "ana")
    store.create_user("people", "bo")
    assert store.associate_faces("people", "ana", ids[:2]) == ids[:2] or set(ids[:2])
    assert store.associate_faces("people", "bo", ids) == [ids[2]]  # the others belong to ana
    assert store.get_user("people", "ana").face_count == 2
    assert {f.face_id for f in store.list_faces("people", None, 10, user_id="ana")} == set(ids[:2])
    assert store.disassociate_faces("people", "bo", ids[:2]) == []
    assert store.disassociate_faces("people", "ana", [ids[0]]) == [ids[0]]
    assert [(u.user_id, u.face_count) for u in store.list_users("people", None, 10)] == [("ana", 1), ("bo", 1)]
    assert [u.user_id for u in store.list_users("people", "ana", 10)] == ["bo"]
    store.delete_user("people", "ana")
    assert store.get_faces("people", [ids[1]])[0].user_id is None
    assert store.get_collection("people").user_count == 1
    for call in (store.get_user, store.delete_user):
        with pytest.raises(ResourceNotFoundException):
            call("people", "ana")
    with pytest.raises(ResourceNotFoundException):
        store.associate_faces("people", "ana", ids)


def test_deleting_a_collection_takes_everything_with_it(store: FaceStore) -> None:
    store.create_collection("people", "model-v1", {"a": "b"})
    store.add_faces("people", new_faces(vectors(3)))
    store.create_user("people", "ana")
    store.delete_collection("people")
    store.create_collection("people", "model-v1", {})
    again = store.get_collection("people")
    assert (again.face_count, again.user_count, again.tags) == (0, 0, {})
    assert store.list_faces("people", None, 10) == []
    assert store.search("people", vectors(1)[0], 10, 100.0) == []


def test_request_tokens(store: FaceStore) -> None:
    assert store.recall_request("token-1", "CreateUser") is None
    store.remember_request("token-1", "CreateUser", "fingerprint", {"answer": [1, 2]})
    assert store.recall_request("token-1", "CreateUser") == ("fingerprint", {"answer": [1, 2]})
    assert store.recall_request("token-1", "DeleteUser") is None


def test_internal_collections_are_not_listed(store: FaceStore) -> None:
    store.create_collection("opsis:celebrities", "model-v1", {})
    store.create_collection("people", "model-v1", {})
    assert [c.collection_id for c in store.list_collections(None, 10)] == ["people"]
    assert store.get_collection("opsis:celebrities").collection_id == "opsis:celebrities"


def test_celebrities(store: FaceStore) -> None:
    store.put_celebrity(Celebrity("b2", "Bea", ("https://example.org/b",), "Female"))
    store.put_celebrity(Celebrity("a1", "Al"))
    store.put_celebrity(Celebrity("a1", "Al Again", (), "Unlisted"))  # replaces
    assert store.list_celebrities() == [
        Celebrity("a1", "Al Again", (), "Unlisted"),
        Celebrity("b2", "Bea", ("https://example.org/b",), "Female"),
    ]
    store.delete_celebrity("a1")
    store.delete_celebrity("a1")  # already gone: no error
    with pytest.raises(ResourceNotFoundException):
        store.get_celebrity("a1")
    assert store.get_celebrity("b2").urls == ("https://example.org/b",)


# --- the embedded backend's guarantees -------------------------------------------------------------


def test_a_version_1_database_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "faces.db"
    with sqlite3.connect(path) as db:
        db.executescript(MIGRATIONS[0] + "PRAGMA user_version = 1;")
        db.execute("INSERT INTO collections (collection_id, face_model_version, created_at) VALUES ('old', 'v1', 0)")
    store = SQLiteFaceStore(path)
    try:
        assert store.get_collection("old").face_model_version == "v1"
        store.put_celebrity(Celebrity("c1", "Cy"))
        assert store.get_celebrity("c1").name == "Cy"
    finally:
        store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_everything_survives_a_reopen(open_store: OpenStore) -> None:
    first = open_store()
    first.create_collection("people", "model-v1", {"team": "doors"})
    faces = first.add_faces("people", new_faces(vectors(5), external="x"))
    first.create_user("people", "ana")
    first.associate_faces("people", "ana", [faces[0].face_id])
    first.close()
    again = open_store()
    assert again.get_collection("people").tags == {"team": "doors"}
    assert again.get_user("people", "ana").face_count == 1
    assert again.search("people", vectors(5)[3], 1, 100.0)[0].face.face_id == faces[3].face_id


def test_two_stores_on_one_file_see_each_others_writes(open_store: OpenStore) -> None:
    """As a server and the CLI do: each one's index follows the other's inserts and deletes."""
    server, cli = open_store(), open_store()
    data = vectors(20)
    server.create_collection("people", "model-v1", {})
    faces = server.add_faces("people", new_faces(data[:10]))
    assert server.search("people", data[3], 1, 100.0)[0].face.face_id == faces[3].face_id  # index loaded
    added = cli.add_faces("people", new_faces(data[10:]))
    assert server.search("people", data[15], 1, 100.0)[0].face.face_id == added[5].face_id
    cli.delete_faces("people", [added[5].face_id])
    assert server.search("people", data[15], 1, 0.001) == []
    more = server.add_faces("people", new_faces(vectors(1, seed=5)))  # applied on top of cli's changes
    assert cli.search("people", vectors(1, seed=5)[0], 1, 100.0)[0].face.face_id == more[0].face_id
    cli.delete_collection("people")
    with pytest.raises(ResourceNotFoundException):
        server.search("people", data[0], 1, 100.0)


@sqlite_only  # saved HNSW graph files
def test_hnsw_tier_recall_deletes_and_reopen(open_store: OpenStore, tmp_path: Path) -> None:
    data = vectors(3000)
    graphs = tmp_path / "faces.db.graphs"
    store = open_store(hnsw_threshold=1000)
    store.create_collection("people", "model-v1", {})
    faces = store.add_faces("people", new_faces(data))
    queries = data[:200] + vectors(200, seed=3) * 0.3  # probes near enrolled faces, as in use
    hits = 0
    for query in queries:
        found = {n.face.face_id for n in store.search("people", query, 10, 100.0)}
        hits += len(found & {faces[i].face_id for i in exact_nearest(data, query, 10)})
    assert hits / (10 * len(queries)) >= 0.99
    store.close()
    assert list(graphs.glob("*.usearch")), "the graph is saved on close"
    store = open_store(hnsw_threshold=1000)
    assert store.search("people", data[1], 1, 100.0)[0].face.face_id == faces[1].face_id
    store.delete_faces("people", [faces[i].face_id for i in range(0, 3000, 7)])
    assert not list(graphs.glob("*")), "a graph holding deleted vectors is unlinked"
    for i in range(0, 3000, 7)[:50]:
        assert faces[i].face_id not in {n.face.face_id for n in store.search("people", data[i], 10, 100.0)}
    store.close()
    assert not list(graphs.glob("*")), "a graph with removed vectors is never saved"
    again = open_store(hnsw_threshold=1000)
    assert again.search("people", data[1], 1, 100.0)[0].face.face_id == faces[1].face_id
    assert again.search("people", data[7], 1, 0.001) == []


def files_holding(root: Path, needle: bytes) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file() and needle in path.read_bytes()]


@postgresql_only
def test_postgresql_hnsw_index_recall_deletes_and_reopen(open_store: OpenStore) -> None:
    """At the threshold a collection gets its own HNSW index, which searches use (and the others'
    exact scans do not see); recall stays high and deleted faces are never found."""
    data = vectors(3000)
    store = open_store(hnsw_threshold=1000)
    store.create_collection("people", "model-v1", {})
    store.create_collection("small", "model-v1", {})
    small = store.add_faces("small", new_faces(data[:5]))
    faces = store.add_faces("people", new_faces(data))
    queries = data[:200] + vectors(200, seed=3) * 0.3
    hits = 0
    for query in queries:
        found = {n.face.face_id for n in store.search("people", query, 10, 100.0)}
        hits += len(found & {faces[i].face_id for i in exact_nearest(data, query, 10)})
    assert hits / (10 * len(queries)) >= 0.99
    assert store.search("small", data[3], 5, 100.0)[0].face.face_id == small[3].face_id
    assert "faces_hnsw_" in plan_of_search(store, "people", data[0])
    assert "faces_hnsw_" not in plan_of_search(store, "small", data[0])
    store.delete_faces("people", [faces[i].face_id for i in range(0, 3000, 7)])
    store.close()
    again = open_store(hnsw_threshold=1000)
    for i in range(0, 3000, 7)[:50]:
        assert faces[i].face_id not in {n.face.face_id for n in again.search("people", data[i], 10, 100.0)}
    assert again.search("people", data[1], 1, 100.0)[0].face.face_id == faces[1].face_id
    again.delete_collection("people")
    assert "faces_hnsw_" not in plan_of_search(again, "small", data[0])


def plan_of_search(store: FaceStore, collection_id: str, query: NDArray[np.float32]) -> str:
    """EXPLAIN of the query `search` runs, with the same settings."""
    from psycopg import sql

    from opsis.store.postgres import PostgresFaceStore

    assert isinstance(store, PostgresFaceStore)
    with store._transaction() as db:
        row = db.execute("SELECT id, dimension FROM collections WHERE collection_id = %s", (collection_id,)).fetchone()
        assert row is not None
        store._search_settings()
        explain = sql.SQL("EXPLAIN ") + store._nearest(row["id"], row["dimension"])
        rows = db.execute(explain, {"q": query, "limit": 10}).fetchall()
    return "\n".join(str(row["QUERY PLAN"]) for row in rows)


def test_postgresql_schema_is_versioned_and_selected_by_settings(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    from opsis.config import Settings
    from opsis.store import open_face_store
    from opsis.store.postgres import MIGRATIONS, PostgresFaceStore

    with postgres_server.database() as url:
        store = open_face_store(Settings(data_dir=tmp_path, store=url))
        try:
            assert isinstance(store, PostgresFaceStore)
            store.create_collection("people", "model-v1", {})
            with store._transaction() as db:
                row = db.execute("SELECT version FROM opsis_schema WHERE component = 'face_store'").fetchone()
            assert row == {"version": len(MIGRATIONS)}
        finally:
            store.close()
        again = PostgresFaceStore(url)  # the schema is current: opening applies nothing
        try:
            assert [c.collection_id for c in again.list_collections(None, 10)] == ["people"]
        finally:
            again.close()
    with pytest.raises(ValueError, match="OPSIS_VECTOR_KEY"):
        open_face_store(Settings(data_dir=tmp_path, store="postgresql:///x", vector_key="k"))
    with pytest.raises(ValueError, match="postgresql://"):
        open_face_store(Settings(data_dir=tmp_path, store="mysql://x"))


@sqlite_only  # PostgreSQL keeps reclaimed bytes until overwritten (opsis.store.postgres)
@pytest.mark.parametrize("threshold", [100_000, 100], ids=["exact", "hnsw"])
def test_deleted_vectors_are_in_no_file(open_store: OpenStore, tmp_path: Path, threshold: int) -> None:
    """Erasure: once DeleteFaces/DeleteCollection return, no file of the store holds the vectors."""
    store = open_store(hnsw_threshold=threshold)
    data = vectors(400)
    store.create_collection("people", "model-v1", {})
    faces = store.add_faces("people", new_faces(data))
    store.search("people", data[0], 1, 100.0)
    store.close()  # saves the HNSW graph, so the deleted vectors were on disk in two places
    store = open_store(hnsw_threshold=threshold)
    doomed = list(range(0, 400, 3))
    store.delete_faces("people", [faces[i].face_id for i in doomed])
    for i in doomed[:40]:
        assert files_holding(tmp_path, data[i].tobytes()) == []
    assert files_holding(tmp_path, data[1].tobytes()), "a kept vector is still found (the scan works)"
    store.search("people", data[1], 1, 100.0)
    store.delete_collection("people")
    for i in (1, 2, 4, 5, 399):
        assert files_holding(tmp_path, data[i].tobytes()) == []


@sqlite_only  # saved HNSW graph files
def test_a_graph_saved_on_close_holds_no_face_another_process_deleted(open_store: OpenStore, tmp_path: Path) -> None:
    server, cli = open_store(hnsw_threshold=100), open_store(hnsw_threshold=100)
    data = vectors(300)
    server.create_collection("people", "model-v1", {})
    faces = server.add_faces("people", new_faces(data))
    server.search("people", data[0], 1, 100.0)  # the server's HNSW graph now holds every vector
    cli.delete_faces("people", [faces[5].face_id])
    server.close()
    assert files_holding(tmp_path, data[5].tobytes()) == []
    assert files_holding(tmp_path, data[6].tobytes())


def test_concurrent_writers_and_searchers_agree(store: FaceStore) -> None:
    """Threads adding, deleting and searching one collection: no errors, no deleted face found
    after its delete returned, and the final index matches the database."""
    store.create_collection("people", "model-v1", {})
    deleted: set[str] = set()
    errors: list[BaseException] = []

    def writer(seed: int) -> None:
        for round_ in range(15):
            faces = store.add_faces("people", new_faces(vectors(20, seed=seed * 100 + round_)))
            victims = [face.face_id for face in faces[::2]]
            store.delete_faces("people", victims)
            deleted.update(victims)

    def searcher(seed: int) -> None:
        for query in vectors(60, seed=1000 + seed):
            before = set(deleted)
            found = {n.face.face_id for n in store.search("people", query, 20, 100.0)}
            assert not found & before, "a face deleted before the search began was found"

    def guarded(work: Callable[[int], None], seed: int) -> Callable[[], None]:
        def run() -> None:
            try:
                work(seed)
            except BaseException as error:  # re-raised in the test's thread below
                errors.append(error)

        return run

    threads = [threading.Thread(target=guarded(writer, s)) for s in range(3)]
    threads += [threading.Thread(target=guarded(searcher, s)) for s in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    kept = store.list_faces("people", None, 10_000)
    assert len(kept) == store.get_collection("people").face_count == 3 * 15 * 10
    found = {n.face.face_id for q in vectors(20, seed=7) for n in store.search("people", q, 900, 100.0)}
    assert found == {face.face_id for face in kept}


def test_usearch_and_onnxruntime_load_in_either_order() -> None:
    """usearch 2.26 wheels broke onnxruntime imported after them (a segfault); the pin avoids it."""
    for first, second in (("usearch.index", "onnxruntime"), ("onnxruntime", "usearch.index")):
        done = subprocess.run([sys.executable, "-c", f"import {first}, {second}"], capture_output=True, check=False)
        assert done.returncode == 0, (first, second, done.stderr[-500:])
