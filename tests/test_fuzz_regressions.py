"""Inputs benchmarks/fuzz.py found that raised something other than an OpsisError (a 500 from the
server), each now answered as a caller's error or decoded."""

from __future__ import annotations

import io
import struct

import pytest
from PIL import Image

from opsis.api.protocol import parse_request
from opsis.errors import SerializationException
from opsis.ops.images import decode_checked
from opsis.service_model import operation_model


def jpeg_with_app1(payload: bytes) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (100, 90), (200, 120, 40)).save(buffer, "JPEG")
    jpeg = buffer.getvalue()
    segment = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return jpeg[:2] + segment + jpeg[2:]  # right after SOI


@pytest.mark.parametrize(
    "exif",
    [
        b"Exif\x00\x00M\x00\x00\x00\x00\x00\x00\x00PM\x00*\x00\x00",  # the fuzzer's: not a TIFF header
        b"Exif\x00\x00MM\x00*\x00\x00\xff\xff",  # first IFD offset past the end
        b"Exif\x00\x00",
    ],
)
def test_unreadable_exif_is_ignored_when_the_pixels_are_sound(exif: bytes) -> None:
    decoded = decode_checked(jpeg_with_app1(exif))
    assert (decoded.width, decoded.height) == (100, 90)
    assert decoded.exif_orientation is None


@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"Image": ' + b'{"a": ' * 50_000])
def test_deeply_nested_json_is_a_serialization_error(body: bytes) -> None:
    with pytest.raises(SerializationException, match="too deeply"):
        parse_request(operation_model("DetectFaces"), body)
