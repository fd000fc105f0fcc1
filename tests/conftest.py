"""One live Opsis server per test run, the real boto3 client, and the shared photos."""

from __future__ import annotations

import configparser
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from opsis.vision.runners.retinaface import RetinaFaceDetector
from tests.postgres_server import PostgresServer

REPO = Path(__file__).resolve().parent.parent
DATA_ROOT = Path(os.environ.get("OPSIS_SHARED_DATA", REPO.parent / "shared" / "data"))
REGION = "us-east-1"


@dataclass(frozen=True)
class LiveServer:
    url: str
    data_dir: Path

    @property
    def credentials_file(self) -> Path:
        return self.data_dir / "credentials"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_healthy(
    url: str, process: subprocess.Popen[bytes], timeout: float = 120.0, cafile: str | None = None
) -> None:
    context = ssl.create_default_context(cafile=cafile) if cafile else None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"opsis serve exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2, context=context) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"opsis serve did not become healthy within {timeout} s")


@pytest.fixture(scope="session")
def data_root() -> Path:
    if not DATA_ROOT.is_dir():
        pytest.skip(f"shared data not found at {DATA_ROOT} (set OPSIS_SHARED_DATA)")
    return DATA_ROOT


def start_server(
    data_dir: Path, log_path: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], LiveServer]:
    """`opsis serve` on `data_dir` in a subprocess on a free port, checking its own responses
    against the model (with `env`'s OPSIS_* settings added; https with OPSIS_TLS_CERTFILE);
    returns once it is healthy."""
    port = free_port()
    cafile = (env or {}).get("OPSIS_TLS_CERTFILE")
    env = {**os.environ, "OPSIS_VALIDATE_RESPONSES": "1", "OPSIS_LOG_LEVEL": "warning", **(env or {})}
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "opsis", "serve", "--port", str(port), "--data-dir", str(data_dir)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"{'https' if cafile else 'http'}://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process, cafile=cafile)
    except BaseException:
        process.kill()
        raise
    return process, LiveServer(url=url, data_dir=data_dir)


def stop_server(process: subprocess.Popen[bytes], log_path: Path) -> None:
    process.terminate()
    process.wait(timeout=30)
    if process.returncode not in (0, -15):
        sys.stderr.write(log_path.read_text(errors="replace")[-4000:])


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The test run's shared server."""
    data_dir = tmp_path_factory.mktemp("opsis-data")
    log_path = data_dir.parent / "server.log"
    process, live = start_server(data_dir, log_path)
    try:
        yield live
    finally:
        stop_server(process, log_path)


def credentials(server: LiveServer) -> tuple[str, str]:
    """The key pair the server wrote to <data-dir>/credentials on first start (profile opsis)."""
    parser = configparser.ConfigParser()
    parser.read(server.credentials_file)
    profile = parser["opsis"]
    return profile["aws_access_key_id"], profile["aws_secret_access_key"]


def client(server: LiveServer, **config: Any) -> Any:
    access_key_id, secret = credentials(server)
    return boto3.client(
        "rekognition",
        endpoint_url=server.url,
        region_name=REGION,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret,
        config=Config(**{"retries": {"max_attempts": 1}, **config}),
    )


@pytest.fixture(scope="session")
def rekognition(server: LiveServer) -> Any:
    """boto3's Rekognition client, signed with the key the server generated on first start."""
    return client(server)


@pytest.fixture(scope="session")
def unvalidated_rekognition(server: LiveServer) -> Any:
    """The same client with botocore's own parameter checks off, so the server's are tested."""
    return client(server, parameter_validation=False)


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """The session's embedded PostgreSQL; skips the test if the engine cannot start here."""
    server = PostgresServer(tmp_path_factory.mktemp("postgres"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def detector() -> RetinaFaceDetector:
    """The face detector, in-process, for tests of the runners that take its faces."""
    return RetinaFaceDetector(threads=2)


def read(data_root: Path, relative: str) -> bytes:
    return (data_root / relative).read_bytes()
