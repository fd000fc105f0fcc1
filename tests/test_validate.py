"""Unit tests for opsis.api.validate, driven by real shapes of botocore's Rekognition model."""

from __future__ import annotations

import copy
import datetime
import re
from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest

from opsis.api import validate
from opsis.api.validate import validate_input, validate_output
from opsis.errors import ImageTooLargeException, InvalidParameterException, OpsisError

MODEL = botocore.session.get_session().get_service_model("rekognition")
IMAGE_MAX = 5_242_880
UUID = "11111111-2222-3333-4444-555555555555"
S3 = {"Bucket": "my-bucket", "Name": "photo.jpg", "Version": "v1"}
JPEG = b"\xff\xd8\xff\xe0fake-jpeg"
IPE = "InvalidParameterException"
TOO_LARGE = "ImageTooLargeException"


def input_shape(operation: str) -> Any:
    return MODEL.operation_model(operation).input_shape


def output_shape(operation: str) -> Any:
    return MODEL.operation_model(operation).output_shape


def error_of(operation: str, params: dict[str, Any]) -> OpsisError | None:
    try:
        validate_input(input_shape(operation), params)
    except OpsisError as error:
        return error
    return None


def message_of(operation: str, params: dict[str, Any]) -> str:
    error = error_of(operation, params)
    assert isinstance(error, InvalidParameterException)
    return error.message


def search(**extra: Any) -> dict[str, Any]:
    return {"CollectionId": "faces", "Image": {"Bytes": JPEG}, **extra}


CASES = [
    # (operation, params, expected error code or None)
    pytest.param("DetectFaces", {"Image": {"Bytes": JPEG}}, None, id="detect-bytes"),
    pytest.param("DetectFaces", {"Image": {"Bytes": bytearray(JPEG)}}, None, id="detect-bytearray"),
    pytest.param("DetectFaces", {"Image": {"S3Object": S3}}, None, id="detect-s3"),
    pytest.param("DetectFaces", {"Image": {"Bytes": JPEG}, "Attributes": ["ALL"]}, None, id="detect-all"),
    pytest.param("DetectFaces", {"Image": {"Bytes": JPEG}, "Attributes": ["NOPE"]}, IPE, id="bad-attribute"),
    pytest.param("DetectFaces", {"Image": {"Bytes": JPEG}, "Attributes": "ALL"}, IPE, id="str-for-list"),
    pytest.param("DetectFaces", {"Image": {"Bytes": JPEG}, "Attributes": [None]}, IPE, id="null-in-list"),
    pytest.param("DetectFaces", {"Image": "photo.jpg"}, IPE, id="str-for-structure"),
    pytest.param("DetectFaces", {"Image": {"Bytes": "aGk="}}, IPE, id="str-for-blob"),
    pytest.param("DetectFaces", {"Image": {"Bytes": b""}}, IPE, id="empty-bytes"),
    pytest.param("DetectFaces", {"Image": {"Bytes": bytes(IMAGE_MAX)}}, None, id="bytes-at-limit"),
    pytest.param("DetectFaces", {"Image": {"Bytes": bytes(IMAGE_MAX + 1)}}, TOO_LARGE, id="bytes-over"),
    pytest.param("DetectFaces", {}, IPE, id="missing-image"),
    pytest.param("DetectFaces", {"Image": None}, IPE, id="null-image"),
    pytest.param("DetectFaces", {"Image": {"Bytes": JPEG}, "Bogus": 1}, IPE, id="unknown-member"),
    pytest.param("DetectFaces", {"Image": {"Bytes": JPEG, "Url": "x"}}, IPE, id="unknown-nested"),
    pytest.param("SearchFacesByImage", search(), None, id="search-valid"),
    pytest.param("SearchFacesByImage", search(MaxFaces=4096, FaceMatchThreshold=100), None, id="at-max"),
    pytest.param("SearchFacesByImage", search(MaxFaces=None), None, id="null-is-absent"),
    pytest.param("SearchFacesByImage", search(MaxFaces=4097), IPE, id="max-faces-over"),
    pytest.param("SearchFacesByImage", search(MaxFaces=0), IPE, id="max-faces-under"),
    pytest.param("SearchFacesByImage", search(MaxFaces="5"), IPE, id="str-for-int"),
    pytest.param("SearchFacesByImage", search(MaxFaces=True), IPE, id="bool-for-int"),
    pytest.param("SearchFacesByImage", search(MaxFaces=5.0), IPE, id="float-for-int"),
    pytest.param("SearchFacesByImage", search(FaceMatchThreshold=50), None, id="int-for-float"),
    pytest.param("SearchFacesByImage", search(FaceMatchThreshold=100.5), IPE, id="percent-over"),
    pytest.param("SearchFacesByImage", search(FaceMatchThreshold=-1), IPE, id="percent-under"),
    pytest.param("SearchFacesByImage", search(FaceMatchThreshold=float("nan")), IPE, id="nan"),
    pytest.param("SearchFacesByImage", search(FaceMatchThreshold=False), IPE, id="bool-for-float"),
    pytest.param("SearchFacesByImage", search(QualityFilter="X"), IPE, id="bad-quality-filter"),
    pytest.param("SearchFacesByImage", search(QualityFilter="AUTO"), None, id="quality-filter"),
    pytest.param("SearchFacesByImage", search(CollectionId="bad id!"), IPE, id="collection-pattern"),
    pytest.param("SearchFacesByImage", search(CollectionId=5), IPE, id="int-for-str"),
    pytest.param("SearchFacesByImage", search(CollectionId=""), IPE, id="collection-empty"),
    pytest.param("SearchFacesByImage", search(CollectionId="a" * 255), None, id="collection-255"),
    pytest.param("SearchFacesByImage", search(CollectionId="a" * 256), IPE, id="collection-256"),
    pytest.param(
        "SearchFacesByImage",
        {"CollectionId": "faces", "Image": {"S3Object": {**S3, "Bucket": "bad bucket!"}}},
        IPE,
        id="nested-bucket-pattern",
    ),
    pytest.param(
        "SearchFacesByImage",
        search(CollectionId="bad id!", Image={"Bytes": bytes(IMAGE_MAX + 1)}),
        TOO_LARGE,
        id="override-outranks-validation",
    ),
    pytest.param(
        "CompareFaces",
        {"SourceImage": {"Bytes": JPEG}, "TargetImage": {"Bytes": bytes(IMAGE_MAX + 1)}},
        TOO_LARGE,
        id="compare-target-too-large",
    ),
    pytest.param("IndexFaces", search(MaxFaces=2**31 - 1), None, id="int32-max"),
    pytest.param("IndexFaces", search(MaxFaces=2**31), IPE, id="int32-overflow"),
    pytest.param("CreateCollection", {"CollectionId": "c", "Tags": {"team": "vision"}}, None, id="tags"),
    pytest.param("CreateCollection", {"CollectionId": "c", "Tags": {"équipe": "café déjà"}}, None, id="tags-u"),
    pytest.param("CreateCollection", {"CollectionId": "c", "Tags": {"aws:x": "v"}}, IPE, id="tag-aws-prefix"),
    pytest.param("CreateCollection", {"CollectionId": "c", "Tags": {"k": "tab\there"}}, IPE, id="tag-ctrl"),
    pytest.param("CreateCollection", {"CollectionId": "c", "Tags": {"k": 1}}, IPE, id="tag-int-value"),
]


@pytest.mark.parametrize(("operation", "params", "expected"), CASES)
def test_validate_input_table(operation: str, params: dict[str, Any], expected: str | None) -> None:
    error = error_of(operation, params)
    assert (error.code if error else None) == expected, error


def test_single_error_uses_coral_format() -> None:
    assert message_of("SearchFacesByImage", search(CollectionId="bad id!")) == (
        "1 validation error detected: Value 'bad id!' at 'collectionId' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-zA-Z0-9_.\\-]+"
    )


def test_all_errors_are_counted_and_listed() -> None:
    message = message_of("SearchFacesByImage", {"CollectionId": "faces", "MaxFaces": 4097})
    assert message.startswith("2 validation errors detected: ")
    assert "Value '4097' at 'maxFaces' failed to satisfy constraint: " in message
    assert "Member must have value less than or equal to 4096" in message
    assert "Value null at 'image' failed to satisfy constraint: Member must not be null" in message
    many = {"CollectionId": "bad id!", "MaxFaces": 0, "QualityFilter": "X", "Bogus": True}
    assert message_of("SearchFacesByImage", many).startswith("5 validation errors detected: ")


def test_each_failed_constraint_of_one_value_is_an_error() -> None:
    message = message_of("SearchFacesByImage", search(CollectionId="!" * 300))
    assert message.startswith("2 validation errors detected: ")
    assert "Member must have length less than or equal to 255" in message
    assert "Member must satisfy regular expression pattern" in message


def test_long_values_are_truncated() -> None:
    message = message_of("SearchFacesByImage", search(CollectionId="a" * 256))
    assert f"Value '{'a' * validate.MAX_ECHO}...' at 'collectionId'" in message
    assert "a" * (validate.MAX_ECHO + 1) not in message


def test_blobs_are_never_echoed() -> None:
    message = message_of("DetectFaces", {"Image": {"Bytes": b""}})
    assert "Value of length 0 at 'image.bytes' failed to satisfy constraint: " in message
    assert "Member must have length greater than or equal to 1" in message


@pytest.mark.parametrize(
    ("operation", "params", "fragment"),
    [
        (
            "DetectFaces",
            {"Image": {"Bytes": JPEG}, "Attributes": ["ALL", "NOPE"]},
            "Value 'NOPE' at 'attributes.2.member' failed to satisfy constraint: Member must satisfy enum "
            "value set: [DEFAULT, ALL, AGE_RANGE,",
        ),
        (
            "SearchFacesByImage",
            {"CollectionId": "c", "Image": {"S3Object": {**S3, "Bucket": "bad bucket!"}}},
            "Value 'bad bucket!' at 'image.s3Object.bucket' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: [0-9A-Za-z\\.\\-_]*",
        ),
        (
            "SearchFacesByImage",
            search(MaxFaces="5"),
            "Value '5' at 'maxFaces' failed to satisfy constraint: Member must be of type integer",
        ),
        (
            "SearchFacesByImage",
            search(MaxFaces=True),
            "Value 'true' at 'maxFaces' failed to satisfy constraint: Member must be of type integer",
        ),
        (
            "DetectFaces",
            {"Image": {"Bytes": JPEG}, "Bogus": [1, 2]},
            "Value '[1, 2]' at 'bogus' failed to satisfy constraint: Member must be a known member of "
            "DetectFacesRequest",
        ),
        (
            "StartFaceDetection",
            {"Video": {}, "NotificationChannel": {"SNSTopicArn": "arn:aws:sns:x:1:t"}},
            "Value null at 'notificationChannel.roleArn' failed to satisfy constraint: Member must not be null",
        ),
        (
            "CreateCollection",
            {"CollectionId": "c", "Tags": {"aws:x": "v"}},
            "Value 'aws:x' at 'tags.aws:x.key' failed to satisfy constraint: Member must satisfy regular "
            "expression pattern: ^(?!aws:)",
        ),
        (
            "CreateCollection",
            {"CollectionId": "c", "Tags": {"k": 1}},
            "Value '1' at 'tags.k.member' failed to satisfy constraint: Member must be of type string",
        ),
        (
            "DeleteFaces",
            {"CollectionId": "c", "FaceIds": [UUID, "nope"]},
            "Value 'nope' at 'faceIds.2.member' failed to satisfy constraint",
        ),
        (
            "DeleteFaces",
            {"CollectionId": "c", "FaceIds": []},
            "Value '[]' at 'faceIds' failed to satisfy constraint: Member must have length greater than or equal to 1",
        ),
    ],
)
def test_paths_and_constraints(operation: str, params: dict[str, Any], fragment: str) -> None:
    assert fragment in message_of(operation, params)


def test_image_too_large_message() -> None:
    error = error_of("DetectFaces", {"Image": {"Bytes": bytes(6_000_000)}})
    assert isinstance(error, ImageTooLargeException)
    assert error.message == "Image size 6000000 bytes exceeds the 5242880-byte limit for image bytes"


def test_input_is_not_mutated() -> None:
    params = {"Image": {"Bytes": JPEG}, "Attributes": ["NOPE"], "Bogus": {"x": [1]}}
    before = copy.deepcopy(params)
    error_of("DetectFaces", params)
    assert params == before


# --- a table generated from the model: every patterned string must reject a non-matching value ----

BASELINES: dict[str, dict[str, Any]] = {
    "SearchFacesByImage": {"CollectionId": "faces", "Image": {"S3Object": S3}},
    "IndexFaces": {"CollectionId": "faces", "Image": {"S3Object": S3}, "ExternalImageId": "ext:1"},
    "SearchFaces": {"CollectionId": "faces", "FaceId": UUID},
    "DeleteFaces": {"CollectionId": "faces", "FaceIds": [UUID, UUID]},
    "CreateCollection": {"CollectionId": "faces", "Tags": {"team": "vision"}},
    "CreateUser": {"CollectionId": "faces", "UserId": "user-1", "ClientRequestToken": "tok-1"},
    "GetFaceDetection": {"JobId": "job-1"},
    "StartFaceDetection": {
        "Video": {"S3Object": S3},
        "ClientRequestToken": "tok_1",
        "JobTag": "tag",
        "NotificationChannel": {
            "SNSTopicArn": "arn:aws:sns:us-east-1:123456789012:topic",
            "RoleArn": "arn:aws:iam::123456789012:role/rekognition",
        },
    },
}
# Each misses some model pattern: '!' and spaces are outside every class, a lone space fails
# '\S' and '.*\S.*', a newline fails '.'.
BAD_CANDIDATES = ["bad value!", "  ", "\n"]


def patterned_strings(shape: Any, value: Any, keys: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Every location in `value` whose shape is a string with a pattern."""
    if shape.type_name == "structure":
        for name, item in value.items():
            yield from patterned_strings(shape.members[name], item, (*keys, name))
    elif shape.type_name == "list":
        for index, item in enumerate(value):
            yield from patterned_strings(shape.member, item, (*keys, index))
    elif shape.type_name == "map":
        for key, item in value.items():
            yield from patterned_strings(shape.value, item, (*keys, key))
    elif shape.type_name == "string" and "pattern" in shape.metadata:
        yield keys, shape


def bad_value_for(shape: Any) -> str:
    low, high = shape.metadata.get("min", 0), shape.metadata.get("max", 10**6)
    # The test's own, cruder stand-in for Java's \p{..} so the choice does not trust the module.
    pattern = re.sub(r"\\p\{[LN]\}", r"\\w", shape.metadata["pattern"]).replace(r"\p{Z}", " ")
    for candidate in BAD_CANDIDATES:
        if low <= len(candidate) <= high and not re.fullmatch(pattern, candidate):
            return candidate
    raise AssertionError(f"no candidate misses {shape.metadata['pattern']!r}")


def coral_path(shape: Any, keys: tuple[Any, ...]) -> str:
    path = ""
    for key in keys:
        if shape.type_name == "structure":
            path, shape = validate.member_path(path, key), shape.members[key]
        elif shape.type_name == "list":
            path, shape = validate.element_path(path, key), shape.member
        else:
            path, shape = validate.map_path(path, key), shape.value
    return path


def pattern_cases() -> Iterator[Any]:
    for operation, baseline in BASELINES.items():
        for keys, shape in patterned_strings(input_shape(operation), baseline, ()):
            yield pytest.param(operation, keys, bad_value_for(shape), id=f"{operation}-{'.'.join(map(str, keys))}")


PATTERN_CASES = list(pattern_cases())


@pytest.mark.parametrize("operation", BASELINES)
def test_baselines_are_valid(operation: str) -> None:
    validate_input(input_shape(operation), BASELINES[operation])


def test_generated_table_covers_many_patterns() -> None:
    assert len(PATTERN_CASES) >= 15


@pytest.mark.parametrize(("operation", "keys", "bad"), PATTERN_CASES)
def test_pattern_violation_is_rejected(operation: str, keys: tuple[Any, ...], bad: str) -> None:
    params = copy.deepcopy(BASELINES[operation])
    target = params
    for key in keys[:-1]:
        target = target[key]
    target[keys[-1]] = bad
    error = error_of(operation, params)
    assert error is not None
    assert error.code == IPE
    assert error.message.startswith("1 validation error detected: ")
    path = coral_path(input_shape(operation), keys)
    assert f"at '{path}' failed to satisfy constraint: Member must satisfy regular expression" in error.message


def test_every_model_pattern_compiles() -> None:
    patterns = {
        MODEL.shape_for(name).metadata["pattern"]
        for name in MODEL.shape_names
        if "pattern" in MODEL.shape_for(name).metadata
    }
    assert patterns
    assert all(validate._compiled(pattern) is not None for pattern in patterns)


def test_java_unicode_classes_are_translated() -> None:
    assert validate._to_python_regex(r"[\p{L}_]+") == r"[\w_]+"
    assert validate._to_python_regex(r"\p{N}+") == r"[\w]+"
    assert validate._to_python_regex(r"\[\p{N}") == r"\[[\w]"
    tag_key = validate._compiled(MODEL.shape_for("TagKey").metadata["pattern"])
    assert tag_key is not None
    assert tag_key.fullmatch("équipe 1\u00a0x")
    assert not tag_key.fullmatch("aws:team")
    assert not tag_key.fullmatch("tab\tkey")


# --- responses ------------------------------------------------------------------------------------

FACE = {
    "BoundingBox": {"Width": 0.5, "Height": 0.4, "Left": 0.1, "Top": 0.2},
    "Confidence": 99.5,
    "Gender": {"Value": "Female", "Confidence": 90},
    "Emotions": [{"Type": "CALM", "Confidence": 80.0}],
    "Pose": {"Roll": -10.0, "Yaw": 5, "Pitch": 0.0},
}


def detect_response(**face: Any) -> dict[str, Any]:
    return {"FaceDetails": [{**FACE, **face}], "OrientationCorrection": "ROTATE_0"}


@pytest.mark.parametrize(
    ("response", "fragment"),
    [
        pytest.param(detect_response(), None, id="valid"),
        pytest.param({}, None, id="empty"),
        pytest.param(detect_response(Confidence=101.0), "'faceDetails.1.member.confidence'", id="percent"),
        pytest.param(detect_response(Pose={"Roll": 181}), "Member must have value less than or equal", id="deg"),
        pytest.param(detect_response(Gender={"Value": "Robot"}), "enum value set: [Male, Female]", id="enum"),
        pytest.param(detect_response(Extra=1), "Member must be a known member of FaceDetail", id="unknown"),
        pytest.param(detect_response(BoundingBox={"Width": "0.5"}), "Member must be of type float", id="type"),
        pytest.param(detect_response(Emotions=[None]), "'faceDetails.1.member.emotions.1.member'", id="null"),
    ],
)
def test_validate_output(response: dict[str, Any], fragment: str | None) -> None:
    problems = validate_output(output_shape("DetectFaces"), response)
    if fragment is None:
        assert problems == []
    else:
        assert len(problems) == 1
        assert fragment in problems[0]


def test_output_skips_string_lengths_and_patterns() -> None:
    face = {"FaceId": "not-a-uuid", "ExternalImageId": "bad value!" * 100}
    response = {"FaceRecords": [{"Face": face}]}
    assert validate_output(output_shape("IndexFaces"), response) == []


def test_output_required_members_and_timestamps() -> None:
    shape = output_shape("GetFaceLivenessSessionResults")
    problems = validate_output(shape, {"Status": "SUCCEEDED"})
    assert problems == ["Value null at 'sessionId' failed to satisfy constraint: Member must not be null"]
    described = output_shape("DescribeCollection")
    now = datetime.datetime.now(datetime.UTC)
    assert validate_output(described, {"CreationTimestamp": now, "FaceCount": 3}) == []
    assert validate_output(described, {"CreationTimestamp": 1.7e9}) == []
    assert validate_output(described, {"CreationTimestamp": "yesterday"}) != []
