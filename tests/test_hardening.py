"""Hardening through boto3 against real server processes: per-key rate limits answered with
ThrottlingException (which boto3's standard retry mode retries), saturation answered with
ProvisionedThroughputExceededException, health checks never limited, and HTTPS when configured."""

from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import ssl
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from opsis.config import Settings
from tests.conftest import REGION, LiveServer, client, credentials, read, start_server, stop_server

PHOTO = "faces/identities/face_recognition/images/obama/obama.jpg"


@contextmanager
def live(tmp_path: Path, env: dict[str, str]) -> Iterator[LiveServer]:
    log_path = tmp_path / "server.log"
    process, server = start_server(tmp_path / "data", log_path, env)
    try:
        yield server
    finally:
        stop_server(process, log_path)


@pytest.fixture(scope="module")
def throttled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server allowing each key a request every 2 seconds, in bursts of 2."""
    env = {"OPSIS_RATE_LIMIT_PER_SECOND": "0.5", "OPSIS_RATE_LIMIT_BURST": "2"}
    with live(tmp_path_factory.mktemp("throttled"), env) as server:
        yield server


@pytest.fixture(scope="module")
def saturated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server with one inference worker and no room to wait for it."""
    env = {"OPSIS_INFERENCE_WORKERS": "1", "OPSIS_INFERENCE_QUEUE_DEPTH": "0", "OPSIS_RATE_LIMIT_PER_SECOND": "0"}
    with live(tmp_path_factory.mktemp("saturated"), env) as server:
        yield server


def error_code(call: Any) -> str | None:
    """None on success, else the error's code (throttling and saturation are HTTP 400, as in AWS)."""
    try:
        call()
    except ClientError as error:
        response = error.response
    else:
        return None
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return str(response["Error"]["Code"])


def test_past_the_rate_limit_boto3_sees_throttling(throttled: LiveServer) -> None:
    rekognition = client(throttled)  # retries off
    codes = Counter(error_code(rekognition.list_collections) for _ in range(8))
    assert codes["ThrottlingException"] >= 3
    assert set(codes) <= {None, "ThrottlingException"}


def test_health_is_never_throttled(throttled: LiveServer) -> None:
    rekognition = client(throttled)
    for _ in range(4):
        error_code(rekognition.list_collections)  # the key's bucket is empty now
    for _ in range(30):
        with urllib.request.urlopen(f"{throttled.url}/health", timeout=5) as response:
            assert response.status == 200


def test_standard_retries_get_through_the_throttle(throttled: LiveServer) -> None:
    rekognition = client(throttled, retries={"mode": "standard", "max_attempts": 10})
    responses = [rekognition.list_collections() for _ in range(5)]
    assert all(response["ResponseMetadata"]["HTTPStatusCode"] == 200 for response in responses)
    assert sum(response["ResponseMetadata"]["RetryAttempts"] for response in responses) >= 1


def test_saturation_answers_provisioned_throughput_exceeded(saturated: LiveServer, data_root: Path) -> None:
    photo = read(data_root, PHOTO)
    codes: Counter[str | None] = Counter()
    lock = threading.Lock()

    def caller() -> None:
        rekognition = client(saturated)
        for _ in range(3):
            code = error_code(lambda: rekognition.detect_faces(Image={"Bytes": photo}, Attributes=["ALL"]))
            with lock:
                codes[code] += 1

    threads = [threading.Thread(target=caller) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert codes["ProvisionedThroughputExceededException"] >= 1
    assert codes[None] >= 1
    assert set(codes) <= {None, "ProvisionedThroughputExceededException"}
    retrying = client(saturated, retries={"mode": "standard", "max_attempts": 10})
    assert retrying.detect_faces(Image={"Bytes": photo})["FaceDetails"]


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_https_when_configured(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    env = {"OPSIS_TLS_CERTFILE": str(cert), "OPSIS_TLS_KEYFILE": str(key)}
    with live(tmp_path, env) as server:
        assert server.url.startswith("https://127.0.0.1:")
        access_key_id, secret = credentials(server)

        def https_client(verify: str | bool, **config: Any) -> Any:
            return boto3.client(
                "rekognition",
                endpoint_url=server.url,
                region_name=REGION,
                aws_access_key_id=access_key_id,
                aws_secret_access_key=secret,
                verify=verify,
                config=Config(retries={"max_attempts": 1}, **config),
            )

        rekognition = https_client(str(cert))
        rekognition.create_collection(CollectionId="tls")
        assert "tls" in rekognition.list_collections()["CollectionIds"]
        rekognition.close()  # an open TLS connection would hold up the server's shutdown
        anonymous = urllib.request.Request(
            f"{server.url}/",
            data=b"{}",
            headers={
                "X-Amz-Target": "RekognitionService.ListCollections",
                "Content-Type": "application/x-amz-json-1.1",
            },
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(anonymous, context=ssl.create_default_context(cafile=str(cert)), timeout=5)
        with refused.value as response:
            assert response.code == 403
            assert json.loads(response.read())["Code"] == "MissingAuthenticationTokenException"
        port = int(server.url.rsplit(":", 1)[1])
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            pytest.raises(ssl.SSLCertVerificationError),  # not a certificate the system trusts
        ):
            ssl.create_default_context().wrap_socket(raw, server_hostname="127.0.0.1")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            raw.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert not raw.recv(100).startswith(b"HTTP/1.1 200")  # no plain HTTP beside HTTPS


def test_safe_defaults() -> None:
    settings = Settings.load({})
    assert settings.host == "127.0.0.1"
    assert settings.tls_certfile is None
    assert settings.tls_keyfile is None
    assert settings.rate_limit_per_second > 0
    assert settings.inference_queue_depth > 0
