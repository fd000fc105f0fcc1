"""Unit tests for opsis.api.codec, driven by real shapes of botocore's Rekognition model."""

from __future__ import annotations

import base64
import copy
import datetime
import json
from typing import Any

import botocore.session
import pytest

from opsis.api.codec import decode_input, encode_output
from opsis.errors import SerializationException

MODEL = botocore.session.get_session().get_service_model("rekognition")
RAW = bytes(range(256)) * 4
B64 = base64.b64encode(RAW).decode("ascii")


def input_shape(operation: str) -> Any:
    return MODEL.operation_model(operation).input_shape


def output_shape(operation: str) -> Any:
    return MODEL.operation_model(operation).output_shape


def test_blob_is_base64_decoded() -> None:
    decoded = decode_input(input_shape("DetectFaces"), {"Image": {"Bytes": B64}, "Attributes": ["ALL"]})
    assert decoded == {"Image": {"Bytes": RAW}, "Attributes": ["ALL"]}


def test_base64_roundtrip_through_output_and_input() -> None:
    liveness = encode_output(output_shape("GetFaceLivenessSessionResults"), {"ReferenceImage": {"Bytes": RAW}})
    wire = json.loads(json.dumps(liveness))["ReferenceImage"]["Bytes"]
    assert wire == B64
    assert decode_input(input_shape("DetectFaces"), {"Image": {"Bytes": wire}})["Image"]["Bytes"] == RAW


def test_blobs_in_lists_are_encoded() -> None:
    value = {"AuditImages": [{"Bytes": b"a"}, {"Bytes": bytearray(b"bc")}]}
    encoded = encode_output(output_shape("GetFaceLivenessSessionResults"), value)
    assert encoded == {"AuditImages": [{"Bytes": "YQ=="}, {"Bytes": "YmM="}]}


def test_compare_faces_decodes_both_images() -> None:
    body = {"SourceImage": {"Bytes": B64}, "TargetImage": {"Bytes": "aGk="}, "SimilarityThreshold": 80}
    decoded = decode_input(input_shape("CompareFaces"), body)
    assert decoded == {
        "SourceImage": {"Bytes": RAW},
        "TargetImage": {"Bytes": b"hi"},
        "SimilarityThreshold": 80,
    }


@pytest.mark.parametrize(
    ("operation", "body", "path"),
    [
        pytest.param("DetectFaces", {"Image": {"Bytes": "not base64!"}}, "image.bytes", id="alphabet"),
        pytest.param("DetectFaces", {"Image": {"Bytes": "abc"}}, "image.bytes", id="padding"),
        pytest.param("DetectFaces", {"Image": {"Bytes": "YWJj\n"}}, "image.bytes", id="newline"),
        pytest.param("DetectFaces", {"Image": {"Bytes": "ñÿ=="}}, "image.bytes", id="non-ascii"),
        pytest.param("DetectFaces", {"Image": {"Bytes": "YW-j"}}, "image.bytes", id="urlsafe"),
        pytest.param(
            "CompareFaces",
            {"SourceImage": {"Bytes": B64}, "TargetImage": {"Bytes": "@@@@"}},
            "targetImage.bytes",
            id="compare-target",
        ),
    ],
)
def test_invalid_base64_is_a_serialization_error(operation: str, body: dict[str, Any], path: str) -> None:
    with pytest.raises(SerializationException, match=f"Value at '{path}' is not valid base64"):
        decode_input(input_shape(operation), body)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"Image": {"Bytes": 5}}, id="int-for-blob"),
        pytest.param({"Image": "photo.jpg"}, id="str-for-structure"),
        pytest.param({"Image": {"Bytes": ["aGk="]}}, id="list-for-blob"),
        pytest.param({"Attributes": "ALL", "MaxFaces": "5"}, id="str-for-list"),
        pytest.param({"Image": None, "Bogus": {"Bytes": "aGk="}}, id="null-and-unknown"),
        pytest.param({}, id="empty"),
    ],
)
def test_everything_else_is_left_for_the_validator(body: dict[str, Any]) -> None:
    assert decode_input(input_shape("DetectFaces"), body) == body


def test_timestamp_numbers_stay_numbers() -> None:
    assert decode_input(MODEL.shape_for("DateTime"), 1_700_000_000.5) == 1_700_000_000.5
    assert decode_input(MODEL.shape_for("DateTime"), 1_700_000_000) == 1_700_000_000


def test_decode_does_not_mutate_or_share_containers() -> None:
    body = {"Image": {"Bytes": B64}, "Attributes": ["ALL"], "Bogus": {"nested": [1]}}
    before = copy.deepcopy(body)
    decoded = decode_input(input_shape("DetectFaces"), body)
    assert body == before
    assert decoded["Attributes"] is not body["Attributes"]
    assert decoded["Bogus"] is not body["Bogus"]
    decoded["Bogus"]["nested"].append(2)
    assert body == before


@pytest.mark.parametrize(
    ("when", "epoch"),
    [
        pytest.param(datetime.datetime(2024, 1, 2, 3, 4, 5, 500000, tzinfo=datetime.UTC), 1704164645.5, id="utc"),
        pytest.param(datetime.datetime(2024, 1, 2, 3, 4, 5), 1704164645.0, id="naive-is-utc"),
        pytest.param(
            datetime.datetime(2024, 1, 2, 4, 4, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=1))),
            1704164645.0,
            id="offset",
        ),
        pytest.param(1704164645, 1704164645, id="number-unchanged"),
    ],
)
def test_encode_output_timestamps(when: Any, epoch: float) -> None:
    encoded = encode_output(output_shape("DescribeCollection"), {"CreationTimestamp": when, "FaceCount": 2})
    assert encoded == {"CreationTimestamp": epoch, "FaceCount": 2}
    assert type(encoded["CreationTimestamp"]) is type(epoch)


def test_encode_output_leaves_other_values_unchanged() -> None:
    response = {
        "FaceDetails": [{"BoundingBox": {"Width": 0.5}, "Gender": {"Value": "Female", "Confidence": 99.0}}],
        "OrientationCorrection": "ROTATE_0",
    }
    before = copy.deepcopy(response)
    encoded = encode_output(output_shape("DetectFaces"), response)
    assert encoded == response == before
    assert encoded["FaceDetails"] is not response["FaceDetails"]
    json.dumps(encoded)
