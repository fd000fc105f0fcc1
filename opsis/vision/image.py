"""Decode image bytes into an upright RGB array, refusing what is not a sound JPEG or PNG."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps

from opsis.errors import ImageTooLargeException, InvalidImageFormatException
from opsis.vision.types import DecodedImage

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EXIF_ORIENTATION_TAG = 0x0112

# Guard against decompression bombs: a few KB of PNG can claim gigapixels. 80 MP holds any real
# camera photo (a 100 MP medium-format frame is refused) and bounds one decode to ~240 MB of RGB.
MAX_PIXELS = 80_000_000


def decode_image(data: bytes, max_pixels: int = MAX_PIXELS) -> DecodedImage:
    """Decode JPEG or PNG bytes, apply EXIF orientation and return RGB pixels.

    Raises InvalidImageFormatException for anything else (other formats, corrupt or truncated
    data) and ImageTooLargeException for images with more than `max_pixels` pixels.
    """
    if not (data.startswith(JPEG_MAGIC) or data.startswith(PNG_MAGIC)):
        raise InvalidImageFormatException("Request has unsupported image format: only JPEG and PNG are accepted")
    image = _open(data, max_pixels)
    orientation = _orientation(image)
    try:
        image.load()
        upright = ImageOps.exif_transpose(image) if orientation else image
        pixels = _to_rgb(upright)
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise InvalidImageFormatException(f"Image data is corrupt or truncated ({error})") from error
    return DecodedImage(pixels=pixels, format=str(image.format), exif_orientation=orientation)


def _open(data: bytes, max_pixels: int) -> Image.Image:
    """Read the header only, and check the format and the size before any pixel is decoded."""
    try:
        image = Image.open(io.BytesIO(data), formats=("JPEG", "PNG"))
    except Image.DecompressionBombError as error:  # PIL's own guard, far above ours
        raise ImageTooLargeException(f"Image dimensions exceed the {max_pixels}-pixel limit") from error
    except (OSError, SyntaxError, ValueError) as error:
        raise InvalidImageFormatException(f"Image data is corrupt or not a JPEG/PNG ({error})") from error
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLargeException(f"Image dimensions {width}x{height} exceed the {max_pixels}-pixel limit")
    if width == 0 or height == 0:
        raise InvalidImageFormatException("Image has zero width or height")
    return image


def _orientation(image: Image.Image) -> int | None:
    """The JPEG's EXIF orientation; None without one, or when the EXIF block is unreadable (found by
    benchmarks/fuzz.py: PIL raised SyntaxError, a 500), since the pixels may still be sound."""
    if image.format != "JPEG":
        return None
    try:
        orientation = image.getexif().get(EXIF_ORIENTATION_TAG)
    except (OSError, SyntaxError, ValueError, EOFError, KeyError, IndexError, TypeError):
        return None
    return orientation if isinstance(orientation, int) else None


def _to_rgb(image: Image.Image) -> np.ndarray:
    """RGB uint8 pixels; transparency is flattened onto white, 16-bit grey scaled to 8 bits."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        grey = np.asarray(image, dtype=np.uint32)
        scale = 257 if grey.max(initial=0) > 255 else 1
        image = Image.fromarray((grey // scale).clip(0, 255).astype(np.uint8))
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))
