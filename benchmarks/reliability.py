"""Reliability under load, malformed input and crashes, against live `opsis serve` processes.

(a) N boto3 clients (threads, each with its own client) call DetectFaces, SearchFacesByImage,
    IndexFaces and ListFaces for T seconds: requests served and errors by type (aim: no 5xx);
(b) fuzzing of request parsing and image decoding (benchmarks/fuzz.py): executions and crashes;
(c) kill -9 of the server during concurrent IndexFaces, restart, and acknowledged faces lost (must be 0).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fuzz
from botocore.exceptions import BotoCoreError, ClientError
from common import argument_parser, client, uptime, wait_healthy

PEOPLE = "faces/identities/face_recognition/images"
PHOTOS = [f"{PEOPLE}/obama/obama-240p.jpg", f"{PEOPLE}/biden/biden.jpg", f"{PEOPLE}/obama/obama.jpg"]
PROBE = f"{PEOPLE}/obama/obama2.jpg"


def start(data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OPSIS_LOG_LEVEL": "warning"}
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "opsis", "serve", "--port", str(port), "--data-dir", str(data_dir)],
            env=env,
            stdout=out,
            stderr=out,
        )
    wait_healthy(f"http://127.0.0.1:{port}", process, log)
    return process


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_threads(workers: list[Callable[[], None]]) -> None:
    threads = [threading.Thread(target=work) for work in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def load(url: str, credentials: Path, photos: list[bytes], probe: bytes, *, clients: int, seconds: float) -> None:
    setup = client(url, credentials)
    setup.create_collection(CollectionId="load")
    setup.index_faces(CollectionId="load", Image={"Bytes": photos[0]})
    outcomes: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker(number: int) -> Callable[[], None]:
        def run() -> None:
            rekognition = client(url, credentials)
            calls: list[tuple[str, Callable[[], Any]]] = [
                ("DetectFaces", lambda: rekognition.detect_faces(Image={"Bytes": probe})),
                (
                    "SearchFacesByImage",
                    lambda: rekognition.search_faces_by_image(CollectionId="load", Image={"Bytes": probe}),
                ),
                (
                    "IndexFaces",
                    lambda: rekognition.index_faces(CollectionId="load", Image={"Bytes": photos[number % 3]}),
                ),
                ("ListFaces", lambda: rekognition.list_faces(CollectionId="load", MaxResults=100)),
            ]
            n = number
            while time.monotonic() < deadline:
                name, call = calls[n % len(calls)]
                n += 1
                try:
                    call()
                    outcome, status = "ok", 200
                except ClientError as error:
                    outcome = f"{name}: {error.response['Error']['Code']}"
                    status = int(error.response["ResponseMetadata"]["HTTPStatusCode"])
                except BotoCoreError as error:
                    outcome, status = f"{name}: {type(error).__name__}", 0
                with lock:
                    outcomes[outcome] += 1
                    statuses[status] += 1

        return run

    start_time = time.monotonic()
    run_threads([worker(number) for number in range(clients)])
    elapsed = time.monotonic() - start_time
    total = sum(outcomes.values())
    errors = {key: count for key, count in outcomes.items() if key != "ok"}
    server_errors = sum(count for status, count in statuses.items() if status >= 500)
    print(
        f"(a) load: {clients} clients x {seconds:.0f} s: {total} requests ({total / elapsed:.1f}/s), "
        f"{outcomes['ok']} ok, {sum(errors.values())} errors, {server_errors} 5xx"
    )
    for key, count in sorted(errors.items()):
        print(f"    {key}: {count}")


def kill_during_indexing(data_dir: Path, log: Path, photos: list[bytes], indexers: int, kill_after: int) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start(data_dir, port, log)
    credentials = data_dir / "credentials"
    client(url, credentials).create_collection(CollectionId="crash")
    acknowledged: set[str] = set()
    lock = threading.Lock()

    def indexer(number: int) -> Callable[[], None]:
        def run() -> None:
            rekognition = client(url, credentials)
            for n in range(100_000):
                try:
                    response = rekognition.index_faces(
                        CollectionId="crash", Image={"Bytes": photos[n % 3]}, ExternalImageId=f"w{number}-{n}"
                    )
                except (BotoCoreError, ClientError):
                    return  # the server is gone
                with lock:
                    acknowledged.update(record["Face"]["FaceId"] for record in response["FaceRecords"])

        return run

    def killer() -> None:
        deadline = time.monotonic() + 120
        while len(acknowledged) < kill_after and time.monotonic() < deadline:
            time.sleep(0.05)
        process.kill()  # SIGKILL with IndexFaces calls in flight

    run_threads([indexer(number) for number in range(indexers)] + [killer])
    process.wait(timeout=30)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start(data_dir, port, log)
    try:
        pages = client(url, credentials).get_paginator("list_faces").paginate(CollectionId="crash")
        stored = {face["FaceId"] for page in pages for face in page["Faces"]}
    finally:
        process.terminate()
        process.wait(timeout=30)
    lost = len(acknowledged - stored)
    print(
        f"(c) kill -9 during {indexers} concurrent IndexFaces: {len(acknowledged)} faces acknowledged, "
        f"{len(stored)} stored after restart, {lost} acknowledged faces lost"
    )


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--clients", type=int, default=8, help="concurrent boto3 clients in (a)")
    parser.add_argument("--seconds", type=float, default=45.0, help="duration of (a)")
    parser.add_argument("--fuzz-seconds", type=float, default=45.0, help="per fuzz target in (b)")
    parser.add_argument("--indexers", type=int, default=4, help="concurrent IndexFaces clients in (c)")
    parser.add_argument("--kill-after", type=int, default=40, help="acknowledged faces before the kill in (c)")
    args = parser.parse_args()
    photos = [(args.data / photo).read_bytes() for photo in PHOTOS]
    probe = (args.data / PROBE).read_bytes()
    print(f"uptime before: {uptime()}")
    with tempfile.TemporaryDirectory(prefix="opsis-reliability-") as tmp:
        port, log = free_port(), Path(tmp) / "server.log"
        process = start(Path(tmp) / "load", port, log)
        try:
            load(
                f"http://127.0.0.1:{port}",
                Path(tmp) / "load" / "credentials",
                photos,
                probe,
                clients=args.clients,
                seconds=args.seconds,
            )
        finally:
            process.terminate()
            process.wait(timeout=30)
        print(f"uptime: {uptime()}")
        for target in fuzz.TARGETS:
            result = fuzz.fuzz(target, args.fuzz_seconds)
            executions, crashes = result["executions"], result["crashes"]
            print(f"(b) fuzz {target}: {args.fuzz_seconds:.0f} s, {executions} executions, {crashes} crashes")
            for kind, message in result["kinds"].items():
                print(f"    {kind}: {message}")
        kill_during_indexing(Path(tmp) / "crash", log, photos, args.indexers, args.kill_after)
    print(f"uptime after: {uptime()}")


if __name__ == "__main__":
    main()
