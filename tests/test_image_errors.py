"""Every bad image gets Rekognition's error through boto3, never a 500."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError
from PIL import Image

from tests.conftest import LiveServer, read

OBAMA = "faces/identities/face_recognition/images/obama/obama.jpg"


def encoded(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_claiming_size(width: int, height: int) -> bytes:
    """A tiny, valid-looking PNG whose header claims a huge image (a decompression bomb)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def noise_jpeg(side: int) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    return encoded(Image.fromarray(pixels), "JPEG", quality=100)


def corrupt_png(data_root: Path) -> bytes:
    data = bytearray(encoded(Image.open(data_root / "misc/astronaut.png"), "PNG"))
    start = data.index(b"IDAT") + 100
    data[start : start + 200] = bytes(200)
    return bytes(data)


BAD_BYTES: list[tuple[str, Callable[[Path], bytes], str]] = [
    ("text", lambda root: b"this is not an image at all", "InvalidImageFormatException"),
    ("tiff", lambda root: read(root, "text/tesseract/phototest.tif"), "InvalidImageFormatException"),
    ("gif", lambda root: encoded(Image.new("RGB", (200, 200)), "GIF"), "InvalidImageFormatException"),
    ("webp", lambda root: encoded(Image.new("RGB", (200, 200)), "WEBP"), "InvalidImageFormatException"),
    ("truncated jpeg", lambda root: read(root, OBAMA)[: len(read(root, OBAMA)) // 2], "InvalidImageFormatException"),
    ("jpeg header only", lambda root: read(root, OBAMA)[:600], "InvalidImageFormatException"),
    ("corrupt png", corrupt_png, "InvalidImageFormatException"),
    ("png magic only", lambda root: b"\x89PNG\r\n\x1a\n", "InvalidImageFormatException"),
    ("decompression bomb", lambda root: png_claiming_size(100_000, 100_000), "ImageTooLargeException"),
    ("too small", lambda root: encoded(Image.new("RGB", (79, 200)), "PNG"), "InvalidParameterException"),
    ("over 5 MB", lambda root: noise_jpeg(1700), "ImageTooLargeException"),
    ("request body over the limit", lambda root: noise_jpeg(2600), "ImageTooLargeException"),
]


@pytest.mark.parametrize(("case", "make", "code"), BAD_BYTES, ids=[case for case, *_ in BAD_BYTES])
def test_bad_image_bytes(
    rekognition: Any, data_root: Path, case: str, make: Callable[[Path], bytes], code: str
) -> None:
    data = make(data_root)
    with pytest.raises(ClientError) as raised:
        rekognition.detect_faces(Image={"Bytes": data})
    error = raised.value.response
    assert error["Error"]["Code"] == code, error
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Message"]


def test_zero_byte_image_is_refused_by_the_server_too(unvalidated_rekognition: Any) -> None:
    with pytest.raises(ClientError) as raised:
        unvalidated_rekognition.detect_faces(Image={"Bytes": b""})
    assert raised.value.response["Error"]["Code"] == "InvalidParameterException"


@pytest.mark.parametrize(
    ("image", "code"),
    [
        ({}, "InvalidParameterException"),
        ({"Bytes": b"x", "S3Object": {"Bucket": "b", "Name": "k"}}, "InvalidParameterException"),
        ({"S3Object": {"Bucket": "photos", "Name": "missing.jpg"}}, "InvalidS3ObjectException"),
        ({"S3Object": {"Bucket": "no-such-bucket", "Name": "a.jpg"}}, "InvalidS3ObjectException"),
        ({"S3Object": {"Bucket": "photos", "Name": "../credentials"}}, "InvalidS3ObjectException"),
        ({"S3Object": {"Bucket": "photos", "Name": "../../credentials"}}, "InvalidS3ObjectException"),
        ({"S3Object": {"Bucket": "..", "Name": "credentials"}}, "InvalidParameterException"),
        ({"S3Object": {"Bucket": "...", "Name": "credentials"}}, "InvalidS3ObjectException"),
        ({"S3Object": {"Bucket": "photos", "Name": "a.jpg", "Version": "3"}}, "InvalidS3ObjectException"),
        ({"S3Object": {"Bucket": "photos"}}, "InvalidParameterException"),
        ({"S3Object": {"Bucket": "bad bucket!", "Name": "a.jpg"}}, "InvalidParameterException"),
    ],
)
def test_bad_image_references(
    unvalidated_rekognition: Any, server: LiveServer, image: dict[str, Any], code: str
) -> None:
    (server.data_dir / "buckets" / "photos").mkdir(parents=True, exist_ok=True)
    (server.data_dir / "buckets" / "photos" / "a.jpg").write_bytes(b"\xff\xd8\xff")
    with pytest.raises(ClientError) as raised:
        unvalidated_rekognition.detect_faces(Image=image)
    assert raised.value.response["Error"]["Code"] == code


def test_s3_object_over_15_mb_is_too_large(rekognition: Any, server: LiveServer) -> None:
    bucket = server.data_dir / "buckets" / "big"
    bucket.mkdir(parents=True, exist_ok=True)
    (bucket / "huge.jpg").write_bytes(b"\xff\xd8\xff" + bytes(15 * 1024 * 1024))
    with pytest.raises(ClientError) as raised:
        rekognition.detect_faces(Image={"S3Object": {"Bucket": "big", "Name": "huge.jpg"}})
    assert raised.value.response["Error"]["Code"] == "ImageTooLargeException"


def test_server_survives_bad_images_and_still_answers(rekognition: Any, data_root: Path) -> None:
    assert len(rekognition.detect_faces(Image={"Bytes": read(data_root, OBAMA)})["FaceDetails"]) == 1
