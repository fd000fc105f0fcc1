"""Turn a request's `Image` into decoded pixels, under Rekognition's rules for images."""

from __future__ import annotations

from typing import Any

from opsis.errors import ImageTooLargeException, InvalidParameterException
from opsis.ops.context import Context
from opsis.vision.image import decode_image
from opsis.vision.types import DecodedImage

# Rekognition: "image bytes ... up to 5 MB" (the model's ImageBlob max, enforced by api/validate
# for the wire; checked again here for the Python API and CLI) and "15 MB ... in an S3 bucket".
MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_S3_IMAGE_BYTES = 15 * 1024 * 1024
# Rekognition: "The minimum image dimensions are 80 pixels for both height and width."
MIN_IMAGE_SIDE = 80


def load_image(ctx: Context, image: dict[str, Any], field: str = "Image") -> DecodedImage:
    """Decode `Image.Bytes` or fetch and decode `Image.S3Object` (exactly one must be given)."""
    return decode_checked(image_bytes(ctx, image, field), field)


def decode_checked(data: bytes, field: str = "Image") -> DecodedImage:
    """Decode image bytes and apply Rekognition's minimum size."""
    decoded = decode_image(data)
    if min(decoded.width, decoded.height) < MIN_IMAGE_SIDE:
        raise InvalidParameterException(
            f"{field} is {decoded.width}x{decoded.height} pixels; "
            f"the minimum is {MIN_IMAGE_SIDE} pixels for both width and height"
        )
    return decoded


def image_bytes(ctx: Context, image: dict[str, Any], field: str = "Image") -> bytes:
    """The raw bytes of an `Image`, from the request itself or from an object source."""
    data: bytes | None = image.get("Bytes")
    s3_object: dict[str, str] | None = image.get("S3Object")
    if data is not None and s3_object is None:
        if len(data) > MAX_IMAGE_BYTES:
            raise ImageTooLargeException(
                f"{field}.Bytes is {len(data)} bytes; the limit for image bytes is {MAX_IMAGE_BYTES}"
            )
        return data
    if s3_object is not None and data is None:
        bucket, name = s3_object.get("Bucket"), s3_object.get("Name")
        if not bucket or not name:
            raise InvalidParameterException(f"{field}.S3Object needs both Bucket and Name")
        return ctx.objects.get(bucket, name, s3_object.get("Version"), MAX_S3_IMAGE_BYTES)
    raise InvalidParameterException(f"{field} must contain exactly one of Bytes or S3Object")
