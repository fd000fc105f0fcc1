"""Image.S3Object read from a real S3-compatible endpoint (moto's server), through the Python API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from opsis import Opsis, Settings
from opsis.errors import ImageTooLargeException, InvalidS3ObjectException
from tests.conftest import free_port

OBAMA = "faces/identities/face_recognition/images/obama/obama-480p.jpg"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def bucket(s3_endpoint: str, data_root: Path) -> Any:
    s3 = boto3.client(
        "s3", endpoint_url=s3_endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    s3.create_bucket(Bucket="photos")
    s3.put_bucket_versioning(Bucket="photos", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="photos", Key="portrait.jpg", Body=(data_root / OBAMA).read_bytes())
    s3.put_object(Bucket="photos", Key="huge.jpg", Body=b"\xff\xd8\xff" + bytes(15 * 1024 * 1024))
    return s3


@pytest.fixture(scope="module")
def opsis(s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Opsis:
    settings = Settings.load(
        data_dir=tmp_path_factory.mktemp("s3-data"),
        s3_endpoint_url=s3_endpoint,
        s3_access_key_id="test",
        s3_secret_access_key="test",
    )
    return Opsis(settings)


def detect(opsis: Opsis, s3_object: dict[str, str]) -> list[dict[str, Any]]:
    faces: list[dict[str, Any]] = opsis.call("DetectFaces", {"Image": {"S3Object": s3_object}})["FaceDetails"]
    return faces


def test_faces_from_the_endpoint_match_faces_from_bytes(opsis: Opsis, bucket: Any, data_root: Path) -> None:
    from_s3 = detect(opsis, {"Bucket": "photos", "Name": "portrait.jpg"})
    assert len(from_s3) == 1
    assert from_s3 == opsis.detect_faces(data_root / OBAMA)["FaceDetails"]


def test_a_version_is_read_when_given(opsis: Opsis, bucket: Any, data_root: Path) -> None:
    first = bucket.head_object(Bucket="photos", Key="portrait.jpg")["VersionId"]
    bucket.put_object(Bucket="photos", Key="portrait.jpg", Body=(data_root / "misc/chelsea.png").read_bytes())
    try:
        assert detect(opsis, {"Bucket": "photos", "Name": "portrait.jpg"}) == []
        assert len(detect(opsis, {"Bucket": "photos", "Name": "portrait.jpg", "Version": first})) == 1
    finally:
        bucket.put_object(Bucket="photos", Key="portrait.jpg", Body=(data_root / OBAMA).read_bytes())


@pytest.mark.parametrize(
    ("s3_object", "error"),
    [
        ({"Bucket": "photos", "Name": "missing.jpg"}, InvalidS3ObjectException),
        ({"Bucket": "no-such-bucket", "Name": "portrait.jpg"}, InvalidS3ObjectException),
        ({"Bucket": "photos", "Name": "portrait.jpg", "Version": "no-such-version"}, InvalidS3ObjectException),
        ({"Bucket": "photos", "Name": "huge.jpg"}, ImageTooLargeException),
    ],
)
def test_unreadable_objects(opsis: Opsis, bucket: Any, s3_object: dict[str, str], error: type[Exception]) -> None:
    with pytest.raises(error):
        detect(opsis, s3_object)


def test_a_video_job_reads_its_video_from_the_endpoint(opsis: Opsis, bucket: Any, data_root: Path) -> None:
    """The worker downloads the object to a temporary file, decodes it, and the file is gone after."""
    clip = data_root / "faces/identities/face_recognition/video/short_hamilton_clip.mp4"
    bucket.put_object(Bucket="photos", Key="clip.mp4", Body=clip.read_bytes())
    job_id = opsis.call(
        "StartSegmentDetection",
        {"Video": {"S3Object": {"Bucket": "photos", "Name": "clip.mp4"}}, "SegmentTypes": ["SHOT"]},
    )["JobId"]
    assert opsis.wait_for_video_job(job_id) == "SUCCEEDED"
    from_s3 = opsis.video_job_results(job_id)
    assert from_s3["VideoMetadata"][0]["DurationMillis"] > 9000
    local_job = opsis.start_video_job("StartSegmentDetection", clip, SegmentTypes=["SHOT"])
    opsis.wait_for_video_job(local_job)
    local = opsis.video_job_results(local_job)
    assert [s["StartFrameNumber"] for s in from_s3["Segments"]] == [s["StartFrameNumber"] for s in local["Segments"]]
    with pytest.raises(InvalidS3ObjectException):
        opsis.call(
            "StartSegmentDetection",
            {"Video": {"S3Object": {"Bucket": "photos", "Name": "none.mp4"}}, "SegmentTypes": ["SHOT"]},
        )
