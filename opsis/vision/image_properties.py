"""Image properties for DetectLabels: quality (brightness, sharpness, contrast), dominant colours,
and the foreground/background split they are also reported for. Pixel statistics, no model.

Dominant colours are named CSS colours, as Rekognition reports them: every pixel of a downscaled
copy is snapped to the nearest of the CSS named colours in CIELAB (perceptual distance), and the
colours covering the most pixels are listed with their share. Each colour also gets one of the
eleven basic colour terms (black, white, grey, red, orange, yellow, green, blue, purple, pink,
brown) from its hue, saturation and lightness.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import ImageColor

# Colours are counted on a copy whose longer side is at most this (about 16k pixels).
COLOUR_SIDE = 128
# Sharpness is measured at this longer side, so it does not depend on the photo's resolution.
SHARPNESS_SIDE = 512
# Laplacian variances (0-255 grey at SHARPNESS_SIDE) span decades: a Gaussian blur of sigma 3 gives
# 3-7, soft photos 40-800, crisp ones 1,000-20,000. Sharpness is log10(variance) mapped from
# this range onto 0-100.
LOG_VARIANCE_RANGE = (0.5, 4.0)
# Colours covering less than this share of a region are left out (the first one never is).
MIN_COLOUR_PERCENT = 5.0
# Spectral-residual saliency (Hou & Zhang, CVPR 2007) runs at this size; pixels above this multiple
# of the mean saliency are salient (10-25% of a typical photo; the paper's 3x keeps 1-3%).
SALIENCY_SIDE = 64
SALIENCY_THRESHOLD = 1.5
# A region smaller than this share of the image is too small to describe.
MIN_REGION_SHARE = 0.01


# Upper hue limits (degrees) of the colour names that hue alone decides.
HUE_NAMES = ((70.0, "yellow"), (165.0, "green"), (255.0, "blue"), (360.0, "pink"))


@dataclass(frozen=True)
class DominantColour:
    """A CSS named colour and the share (0-100) of the region's pixels nearest to it."""

    css_name: str
    rgb: tuple[int, int, int]
    simplified: str
    percent: float

    @property
    def hex_code(self) -> str:
        return "#{:02x}{:02x}{:02x}".format(*self.rgb)


@dataclass(frozen=True)
class RegionQuality:
    """Brightness, sharpness and contrast of a region, each 0-100."""

    brightness: float
    sharpness: float
    contrast: float


@dataclass(frozen=True)
class _Palette:
    names: tuple[str, ...]
    rgb_tuples: tuple[tuple[int, int, int], ...]
    lab: NDArray[np.float32]  # (n, 3)
    simplified: tuple[str, ...]


@cache
def _palette() -> _Palette:
    """The CSS named colours, one name per RGB value (the "grey" spellings win, as in Rekognition)."""
    by_rgb: dict[tuple[int, int, int], str] = {}
    for name in sorted(ImageColor.colormap):
        rgb = ImageColor.getrgb(name)[:3]
        if rgb not in by_rgb or "grey" in name:
            by_rgb[rgb] = name
    rgb_values = np.array(list(by_rgb), np.uint8)
    return _Palette(
        names=tuple(by_rgb.values()),
        rgb_tuples=tuple(by_rgb),
        lab=_to_lab(rgb_values[None])[0],
        simplified=tuple(simplified_colour(rgb) for rgb in by_rgb),
    )


def _to_lab(rgb: NDArray[np.uint8]) -> NDArray[np.float32]:
    return np.asarray(cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab), np.float32)


def simplified_colour(rgb: tuple[int, int, int]) -> str:
    """One of the eleven basic colour terms for an RGB colour."""
    hue, lightness, _ = colorsys.rgb_to_hls(*(channel / 255.0 for channel in rgb))
    chroma = (max(rgb) - min(rgb)) / 255.0
    degrees = hue * 360.0
    beige = lightness > 0.8 and chroma < 0.35 and 15 <= degrees < 70  # wheat, bisque, moccasin
    if chroma < 0.15 or lightness > 0.94 or beige:
        return "black" if lightness < 0.2 else "white" if lightness > 0.8 else "grey"
    if degrees < 15 or degrees >= 345:
        return "pink" if lightness > 0.65 else "red"
    if degrees < 50:  # dark or greyish oranges are browns (sienna, peru, tan); vivid ones orange
        return "brown" if lightness * chroma < 0.35 else "orange"
    if 255 <= degrees < 320:
        return "purple" if lightness < 0.7 else "pink"
    return next(name for limit, name in HUE_NAMES if degrees < limit)


class PixelStatistics:
    """One image's colour and quality maps, made once and measured over any number of regions
    (masks at the image's own size)."""

    def __init__(self, pixels: NDArray[np.uint8]) -> None:
        self.shape = pixels.shape[:2]
        small = _downscale(pixels, COLOUR_SIDE)
        palette = _palette()
        lab = _to_lab(small.reshape(1, -1, 3))[0]
        # Nearest palette colour by |a - b|^2 = |a|^2 - 2 a.b + |b|^2 (|a|^2 is the same for every b).
        distances = (palette.lab**2).sum(axis=1)[None, :] - 2 * lab @ palette.lab.T
        self._colours = np.argmin(distances, axis=1).reshape(small.shape[:2])
        grey = cv2.cvtColor(_downscale(pixels, SHARPNESS_SIDE), cv2.COLOR_RGB2GRAY)
        self._grey = grey
        self._edges = cv2.Laplacian(grey, cv2.CV_64F)

    def colours(self, mask: NDArray[np.bool_] | None = None, count: int = 10) -> list[DominantColour]:
        """Up to `count` CSS colours covering the most of the region (`mask`, or the whole image)."""
        indices = self._colours if mask is None else self._colours[_resized(mask, self._colours.shape)]
        return self._count(indices, count)

    def _count(self, indices: NDArray[np.int64], count: int) -> list[DominantColour]:
        if count <= 0 or indices.size == 0:
            return []
        palette = _palette()
        counts = np.bincount(indices.ravel(), minlength=len(palette.names))
        order = np.argsort(-counts, kind="stable")[:count]
        percents = counts[order] * 100.0 / indices.size
        return [
            DominantColour(palette.names[i], palette.rgb_tuples[i], palette.simplified[i], float(share))
            for rank, (i, share) in enumerate(zip(order, percents, strict=True))
            if share > 0 and (rank == 0 or share >= MIN_COLOUR_PERCENT)
        ]

    def box_colours(self, xyxy: NDArray[np.float32], count: int = 10) -> list[DominantColour]:
        """The colours inside one xyxy pixel box: the map cells it touches, at least one (small
        objects still get a colour, and no image-sized mask is made per box)."""
        rows, columns = self._colours.shape
        scale_x, scale_y = columns / self.shape[1], rows / self.shape[0]
        left = min(columns - 1, max(0, int(np.floor(xyxy[0] * scale_x))))
        top = min(rows - 1, max(0, int(np.floor(xyxy[1] * scale_y))))
        right = max(left + 1, min(columns, int(np.ceil(xyxy[2] * scale_x))))
        bottom = max(top + 1, min(rows, int(np.ceil(xyxy[3] * scale_y))))
        return self._count(self._colours[top:bottom, left:right], count)

    def quality(self, mask: NDArray[np.bool_] | None = None) -> RegionQuality:
        """Brightness (mean grey), sharpness (log Laplacian variance) and contrast (the 2nd to 98th
        percentile grey range) of a region, each 0-100."""
        if mask is None:
            grey, edges = self._grey, self._edges
        else:
            small_mask = _resized(mask, self._grey.shape)
            grey, edges = self._grey[small_mask], self._edges[small_mask]
        if grey.size == 0:
            return RegionQuality(0.0, 0.0, 0.0)
        low, high = np.percentile(grey, [2, 98])
        return RegionQuality(
            brightness=float(grey.mean()) / 255.0 * 100.0,
            sharpness=_sharpness(float(edges.var())),
            contrast=float(high - low) / 255.0 * 100.0,
        )


def _sharpness(variance: float) -> float:
    low, high = LOG_VARIANCE_RANGE
    return float(np.clip((np.log10(max(variance, 1e-6)) - low) / (high - low) * 100.0, 0.0, 100.0))


def _downscale(pixels: NDArray[np.uint8], side: int) -> NDArray[np.uint8]:
    height, width = pixels.shape[:2]
    scale = side / max(height, width)
    if scale >= 1:
        return pixels
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(cv2.resize(pixels, size, interpolation=cv2.INTER_AREA), np.uint8)


def _resized(mask: NDArray[np.bool_], shape: tuple[int, ...]) -> NDArray[np.bool_]:
    if mask.shape == shape:
        return mask
    resized = cv2.resize(mask.astype(np.uint8), (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
    return resized.astype(bool)


def box_mask(shape: tuple[int, ...], boxes: NDArray[np.float32]) -> NDArray[np.bool_]:
    """The union of xyxy pixel boxes, as an (h, w) mask."""
    height, width = shape[:2]
    mask = np.zeros((height, width), bool)
    for left, top, right, bottom in boxes:
        x0, y0 = max(0, int(left)), max(0, int(top))
        x1, y1 = min(width, int(np.ceil(right))), min(height, int(np.ceil(bottom)))
        mask[y0:y1, x0:x1] = True
    return mask


def saliency_mask(pixels: NDArray[np.uint8]) -> NDArray[np.bool_]:
    """Where the eye goes first, by the spectral residual: the log spectrum's deviation from its
    local average marks what is unexpected in the image. Salient = above 1.5x the mean saliency; if
    that is nothing or nearly everything, the centre of the image stands in for it."""
    grey = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY).astype(np.float32)
    small = cv2.resize(grey, (SALIENCY_SIDE, SALIENCY_SIDE), interpolation=cv2.INTER_AREA)
    spectrum = np.fft.fft2(small)
    log_amplitude = np.log(np.abs(spectrum) + 1e-6).astype(np.float32)
    residual = log_amplitude - cv2.blur(log_amplitude, (3, 3))
    saliency = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(spectrum)))) ** 2
    saliency = cv2.GaussianBlur(saliency.astype(np.float32), (0, 0), 3)
    salient = saliency > SALIENCY_THRESHOLD * saliency.mean()
    height, width = pixels.shape[:2]
    resized = cv2.resize(salient.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)
    mask: NDArray[np.bool_] = np.asarray(resized, bool)
    if MIN_REGION_SHARE < mask.mean() < 1 - MIN_REGION_SHARE:
        return mask
    return box_mask(pixels.shape, np.array([[width / 4, height / 4, width * 3 / 4, height * 3 / 4]], np.float32))
