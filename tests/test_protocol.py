"""Rekognition's JSON 1.1 wire protocol and SigV4 authentication, on raw signed HTTP and boto3."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import uuid
from pathlib import Path
from typing import Any

import boto3
import botocore.auth
import pytest
import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from opsis.errors import OpsisError, ProtocolError
from opsis.ops.registry import HANDLERS
from opsis.service_model import service_model
from tests.conftest import REGION, LiveServer, credentials

JSON_11 = "application/x-amz-json-1.1"
HTTP = urllib3.PoolManager()


def post(
    server: LiveServer,
    target: str | None,
    body: bytes = b"{}",
    *,
    key: tuple[str, str] | None = None,
    service: str = "rekognition",
    sent_body: bytes | None = None,
    extra_headers: dict[str, str] | None = None,
) -> urllib3.BaseHTTPResponse:
    """POST / signed the way botocore signs, optionally with a different body than was signed."""
    headers = {"Content-Type": JSON_11, **(extra_headers or {})}
    if target is not None:
        headers["X-Amz-Target"] = target
    request = AWSRequest(method="POST", url=f"{server.url}/", data=body, headers=headers)
    access_key_id, secret = key or credentials(server)
    SigV4Auth(Credentials(access_key_id, secret), service, REGION).add_auth(request)
    return HTTP.request(
        "POST", f"{server.url}/", body=body if sent_body is None else sent_body, headers=dict(request.headers.items())
    )


def error_of(response: urllib3.BaseHTTPResponse) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(response.data)
    assert body["__type"] == body["Code"]
    assert body["Message"]
    assert body["Logref"]
    assert response.headers["Content-Type"] == JSON_11
    uuid.UUID(response.headers["x-amzn-RequestId"])
    return body


@pytest.mark.parametrize(
    ("target", "body", "status", "code"),
    [
        (None, b"{}", 400, "UnknownOperationException"),
        ("RekognitionService.NoSuchOperation", b"{}", 400, "UnknownOperationException"),
        ("SomeOtherService.DetectFaces", b"{}", 400, "UnknownOperationException"),
        (
            "RekognitionService.DescribeProjects",  # Custom Labels: not offered
            b"{}",
            400,
            "UnsupportedOperationException",
        ),
        ("RekognitionService.DetectFaces", b"{not json", 400, "SerializationException"),
        ("RekognitionService.DetectFaces", b"[1, 2]", 400, "SerializationException"),
        # found by benchmarks/fuzz.py: nesting past Python's recursion limit was a 500
        ("RekognitionService.DetectFaces", b'{"Image": ' + b"[" * 100_000, 400, "SerializationException"),
        ("RekognitionService.DetectFaces", b'{"Image": {"Bytes": "***"}}', 400, "SerializationException"),
        ("RekognitionService.DetectFaces", b"{}", 400, "InvalidParameterException"),
        (
            "RekognitionService.DetectFaces",
            b'{"Image": {"Bytes": "/9j/"}, "Extra": 1}',
            400,
            "InvalidParameterException",
        ),
    ],
)
def test_protocol_errors(server: LiveServer, target: str | None, body: bytes, status: int, code: str) -> None:
    response = post(server, target, body)
    assert response.status == status
    assert error_of(response)["Code"] == code


def test_unsupported_operation_names_itself(server: LiveServer) -> None:
    response = post(server, "RekognitionService.DescribeProjects")
    assert "DescribeProjects" in error_of(response)["Message"]


def test_success_carries_request_id_and_json_11(rekognition: Any, data_root: Path) -> None:
    photo = (data_root / "misc/astronaut.png").read_bytes()
    headers = rekognition.detect_faces(Image={"Bytes": photo})["ResponseMetadata"]["HTTPHeaders"]
    assert headers["content-type"] == JSON_11
    uuid.UUID(headers["x-amzn-requestid"])


def test_health(server: LiveServer) -> None:
    response = HTTP.request("GET", f"{server.url}/health")
    assert response.status == 200
    assert json.loads(response.data)["status"] == "ok"
    assert any(model.startswith("face-detector:") for model in json.loads(response.data)["models"])


def test_get_on_the_api_path_is_not_allowed(server: LiveServer) -> None:
    assert HTTP.request("GET", f"{server.url}/").status == 405


# --- authentication -------------------------------------------------------------------------------


def test_missing_signature(server: LiveServer) -> None:
    response = HTTP.request(
        "POST",
        f"{server.url}/",
        body=b"{}",
        headers={"X-Amz-Target": "RekognitionService.DetectFaces", "Content-Type": JSON_11},
    )
    assert response.status == 403
    assert error_of(response)["Code"] == "MissingAuthenticationTokenException"


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        ("Bearer abc", "IncompleteSignatureException"),
        ("AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/rekognition/aws4_request", "IncompleteSignatureException"),
    ],
)
def test_malformed_authorization(server: LiveServer, authorization: str, code: str) -> None:
    response = HTTP.request(
        "POST",
        f"{server.url}/",
        body=b"{}",
        headers={"X-Amz-Target": "RekognitionService.DetectFaces", "Authorization": authorization},
    )
    assert error_of(response)["Code"] == code


def test_unknown_access_key(server: LiveServer) -> None:
    response = post(server, "RekognitionService.DetectFaces", key=("AKIDUNKNOWN", "secret"))
    assert response.status == 403
    assert error_of(response)["Code"] == "UnrecognizedClientException"


def test_wrong_secret_through_boto3(server: LiveServer) -> None:
    access_key_id, _ = credentials(server)
    client = boto3.client(
        "rekognition",
        endpoint_url=server.url,
        region_name=REGION,
        aws_access_key_id=access_key_id,
        aws_secret_access_key="not-the-secret",
    )
    with pytest.raises(ClientError) as raised:
        client.detect_faces(Image={"Bytes": b"\xff\xd8\xff"})
    assert raised.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_body_changed_after_signing(server: LiveServer) -> None:
    response = post(
        server,
        "RekognitionService.DetectFaces",
        b'{"Image": {"Bytes": "AAAA"}}',
        sent_body=b'{"Image": {"Bytes": "BBBB"}}',
    )
    assert error_of(response)["Code"] == "InvalidSignatureException"


def test_payload_hash_header_must_match_the_body(server: LiveServer) -> None:
    response = post(
        server, "RekognitionService.DetectFaces", extra_headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}
    )
    assert error_of(response)["Code"] == "InvalidSignatureException"


def test_credential_scoped_to_another_service(server: LiveServer) -> None:
    response = post(server, "RekognitionService.DetectFaces", service="s3")
    assert error_of(response)["Code"] == "InvalidSignatureException"


@pytest.mark.parametrize("minutes", [-20, 20])
def test_clock_skew_beyond_15_minutes(server: LiveServer, monkeypatch: pytest.MonkeyPatch, minutes: int) -> None:
    skewed = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(minutes=minutes)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: skewed)
    response = post(server, "RekognitionService.DetectFaces")
    body = error_of(response)
    assert body["Code"] == "InvalidSignatureException"
    assert "Signature" in body["Message"]


def test_small_clock_skew_is_accepted(server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    skewed = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(minutes=10)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: skewed)
    assert error_of(post(server, "RekognitionService.DetectFaces"))["Code"] == "InvalidParameterException"


def test_generated_credentials_file_works_as_an_aws_profile(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert stat.S_IMODE(os.stat(server.credentials_file).st_mode) == 0o600
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(server.credentials_file))
    monkeypatch.setenv("AWS_PROFILE", "opsis")
    client = boto3.Session(region_name=REGION).client("rekognition", endpoint_url=server.url)
    with pytest.raises(ClientError) as raised:
        client.detect_faces(Image={"Bytes": b"GIF89a"})
    assert raised.value.response["Error"]["Code"] == "InvalidImageFormatException"


# --- the tables behind dispatch and errors --------------------------------------------------------


def test_handlers_are_model_operations_named_by_xform_name() -> None:
    model = service_model()
    for operation, handler in HANDLERS.items():
        assert operation in model.operation_names
        assert handler.__name__ == botocore.xform_name(operation)


def all_subclasses(cls: type[OpsisError]) -> list[type[OpsisError]]:
    return [sub for direct in cls.__subclasses__() for sub in [direct, *all_subclasses(direct)]]


def test_modelled_error_codes_are_the_models_error_shapes() -> None:
    model = service_model()
    shapes = {error.name for op in model.operation_names for error in model.operation_model(op).error_shapes}
    for error in all_subclasses(OpsisError):
        if not issubclass(error, ProtocolError):
            assert error.code in shapes, error
