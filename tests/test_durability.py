"""Crash safety and consistency of collections, through boto3 against a real server process:
kill -9 during concurrent IndexFaces loses no acknowledged face, and concurrent
IndexFaces/DeleteFaces/SearchFacesByImage on one collection agree with each other."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from tests.conftest import LiveServer, client, read, start_server, stop_server

PEOPLE = "faces/identities/face_recognition/images"
PHOTOS = [f"{PEOPLE}/obama/obama-240p.jpg", f"{PEOPLE}/biden/biden.jpg", f"{PEOPLE}/obama/obama.jpg"]
PROBE = f"{PEOPLE}/obama/obama2.jpg"


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[tuple[Path, Callable[[], tuple[Any, LiveServer]]]]:
    """Starts servers on one data directory (one at a time); stops whatever is left running."""
    data_dir, log_path = tmp_path / "data", tmp_path / "server.log"
    running: list[Any] = []

    def start() -> tuple[Any, LiveServer]:
        process, live = start_server(data_dir, log_path)
        running.append(process)
        return process, live

    yield data_dir, start
    for process in running:
        if process.poll() is None:
            stop_server(process, log_path)


def all_face_ids(rekognition: Any, collection_id: str) -> set[str]:
    pages = rekognition.get_paginator("list_faces").paginate(CollectionId=collection_id)
    return {face["FaceId"] for page in pages for face in page["Faces"]}


def run_threads(workers: list[Callable[[], None]]) -> list[BaseException]:
    errors: list[BaseException] = []

    def guarded(work: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                work()
            except BaseException as error:  # reported to the test's thread
                errors.append(error)

        return run

    threads = [threading.Thread(target=guarded(work)) for work in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_kill_9_during_indexing_loses_no_acknowledged_face(
    own_server: tuple[Path, Callable[[], tuple[Any, LiveServer]]], data_root: Path
) -> None:
    data_dir, start = own_server
    process, live = start()
    rekognition = client(live)
    rekognition.create_collection(CollectionId="crash")
    photos = [read(data_root, photo) for photo in PHOTOS]
    acknowledged: set[str] = set()
    lock = threading.Lock()

    def indexer(worker: int) -> Callable[[], None]:
        def run() -> None:
            own_client = client(live)
            for n in range(1000):
                try:
                    response = own_client.index_faces(
                        CollectionId="crash", Image={"Bytes": photos[n % len(photos)]}, ExternalImageId=f"w{worker}-{n}"
                    )
                except (BotoCoreError, ClientError):
                    return  # the server is gone
                with lock:
                    acknowledged.update(record["Face"]["FaceId"] for record in response["FaceRecords"])

        return run

    def killer() -> None:
        deadline = time.monotonic() + 60
        while len(acknowledged) < 24 and time.monotonic() < deadline:
            time.sleep(0.05)
        process.kill()  # SIGKILL, with IndexFaces calls in flight

    assert run_threads([indexer(w) for w in range(4)] + [killer]) == []
    process.wait(timeout=30)
    assert len(acknowledged) >= 24
    with sqlite3.connect(data_dir / "faces.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    _, live = start()
    rekognition = client(live)
    stored = all_face_ids(rekognition, "crash")
    assert acknowledged <= stored, f"{len(acknowledged - stored)} acknowledged faces lost"
    assert rekognition.describe_collection(CollectionId="crash")["FaceCount"] == len(stored)
    matches = rekognition.search_faces_by_image(
        CollectionId="crash", Image={"Bytes": read(data_root, PROBE)}, MaxFaces=4096
    )["FaceMatches"]
    assert {match["Face"]["FaceId"] for match in matches} <= stored
    assert len(matches) >= len(stored) // 3, "the index serves the faces indexed before the crash"


def test_concurrent_index_delete_and_search_agree(rekognition: Any, server: LiveServer, data_root: Path) -> None:
    collection_id = "busy"
    rekognition.create_collection(CollectionId=collection_id)
    photo, probe = read(data_root, PHOTOS[0]), read(data_root, PROBE)
    indexed: list[str] = []
    deleted: set[str] = set()
    done = threading.Event()

    def indexer() -> None:
        own_client = client(server)
        for n in range(24):
            response = own_client.index_faces(
                CollectionId=collection_id, Image={"Bytes": photo}, ExternalImageId=f"n{n}", MaxFaces=1
            )
            indexed.append(response["FaceRecords"][0]["Face"]["FaceId"])
        done.set()

    def deleter() -> None:
        own_client = client(server)
        while not done.is_set() or len(deleted) < len(indexed) // 2:
            victims = [face_id for face_id in indexed[::2] if face_id not in deleted]
            if victims:
                response = own_client.delete_faces(CollectionId=collection_id, FaceIds=victims)
                assert response["UnsuccessfulFaceDeletions"] == []
                deleted.update(response["DeletedFaces"])
            time.sleep(0.02)

    def searcher() -> None:
        own_client = client(server)
        while not done.is_set():
            gone_before = set(deleted)
            response = own_client.search_faces_by_image(
                CollectionId=collection_id, Image={"Bytes": probe}, MaxFaces=100
            )
            found = {match["Face"]["FaceId"] for match in response["FaceMatches"]}
            assert not found & gone_before, "a face deleted before the search began was found"

    try:
        assert run_threads([indexer, deleter, searcher]) == []
        remaining = set(indexed) - deleted
        assert all_face_ids(rekognition, collection_id) == remaining
        assert rekognition.describe_collection(CollectionId=collection_id)["FaceCount"] == len(remaining)
        matches = rekognition.search_faces_by_image(CollectionId=collection_id, Image={"Bytes": probe}, MaxFaces=100)[
            "FaceMatches"
        ]
        assert {match["Face"]["FaceId"] for match in matches} == remaining
    finally:
        rekognition.delete_collection(CollectionId=collection_id)
