"""Text in single images: DetectText."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from opsis.errors import InvalidParameterException
from opsis.ops.context import Context
from opsis.ops.images import load_image
from opsis.ops.shapes import text_detection
from opsis.vision.types import DecodedImage, Detections, TextReading

if TYPE_CHECKING:
    from mypy_boto3_rekognition.type_defs import DetectTextResponseTypeDef, TextDetectionTypeDef
    from shapely.geometry.base import BaseGeometry

# Rekognition: "DetectText can detect up to 100 words in an image."
MAX_WORDS = 100
# Rekognition's DetectionFilter: "The default MinConfidence is 80."
DEFAULT_MIN_CONFIDENCE = 80.0
# RegionOfInterest: "Specifies a shape made up of up to 10 Point objects"; three make the least area.
MIN_POLYGON_POINTS = 3
MAX_POLYGON_POINTS = 10
# RegionOfInterest: "A word ... is included in the region if it is more than half in that region."
MIN_SHARE_IN_REGION = 0.5


@dataclass(frozen=True)
class TextFilters:
    """`Filters` of a DetectText request: confidence in 0-1, sizes and regions as image ratios."""

    min_confidence: float = DEFAULT_MIN_CONFIDENCE / 100.0
    min_height: float = 0.0
    min_width: float = 0.0
    regions: tuple[BaseGeometry, ...] = ()


def detect_text(ctx: Context, params: dict[str, Any]) -> DetectTextResponseTypeDef:
    """DetectText: LINE and WORD detections for the first 100 words that pass `Filters`.

    Every LINE comes first (Ids 0..n-1, top to bottom, then left to right), then the kept WORDs
    (Ids from n on, in reading order) with `ParentId` naming their line. A line is returned whole
    (its text, box and confidence as read) when at least one of its words is kept. A word's
    Confidence is a calibrated probability that it was read exactly right; a line's is the mean
    of its words'. The 100-word limit keeps the first words in reading order.
    """
    filters = text_filters(params.get("Filters") or {})
    return text_in_image(ctx, load_image(ctx, params["Image"]), filters)


def text_in_image(ctx: Context, image: DecodedImage, filters: TextFilters) -> DetectTextResponseTypeDef:
    """DetectText's response for a decoded image (a photo or a video frame)."""
    reader = ctx.text_reader()
    reading = reader.read(image.pixels)
    kept = kept_words(reading.words, filters, image.width, image.height)
    return {
        "TextDetections": text_detections(reading, kept, image.width, image.height),
        "TextModelVersion": reader.version,
    }  # type: ignore[typeddict-item]


def kept_words(words: Detections, filters: TextFilters, width: int, height: int) -> NDArray[np.int64]:
    """Rows of the words that pass the filters, the first MAX_WORDS of them in reading order."""
    sizes = (words.xyxy[:, 2:] - words.xyxy[:, :2]) / np.array([width, height], np.float32)
    passing = (
        (words.confidence >= filters.min_confidence)
        & (sizes[:, 1] >= filters.min_height)
        & (sizes[:, 0] >= filters.min_width)
    )
    if filters.regions and words.landmarks is not None:
        ratios = words.landmarks / np.array([width, height], np.float32)
        passing &= np.array([is_in_regions(quad, filters.regions) for quad in ratios], bool)
    kept: NDArray[np.int64] = np.flatnonzero(passing)[:MAX_WORDS].astype(np.int64)
    return kept


def is_in_regions(quad: NDArray[np.float32], regions: tuple[BaseGeometry, ...]) -> bool:
    """Whether more than half of the word's area lies in one of the regions (a word with no area:
    whether its centre does)."""
    from shapely.geometry import Point, Polygon

    word = Polygon(quad)
    if not word.is_valid or word.area <= 0:
        centre = Point(*np.asarray(quad, np.float64).mean(axis=0))
        return any(region.covers(centre) for region in regions)
    return any(region.intersection(word).area > MIN_SHARE_IN_REGION * word.area for region in regions)


def text_detections(
    reading: TextReading, kept: NDArray[np.int64], width: int, height: int
) -> list[TextDetectionTypeDef]:
    """The LINEs holding a kept word, then the kept WORDs pointing at them."""
    line_rows = np.unique(reading.words.data["line"][kept])
    line_ids = {int(row): number for number, row in enumerate(line_rows)}
    detections = [
        text_detection(reading.lines, int(row), width, height, kind="LINE", detection_id=line_ids[int(row)])
        for row in line_rows
    ]
    for number, row in enumerate(kept, start=len(line_rows)):
        parent = line_ids[int(reading.words.data["line"][row])]
        detections.append(
            text_detection(reading.words, int(row), width, height, kind="WORD", detection_id=number, parent_id=parent)
        )
    return detections


# --- Filters ---------------------------------------------------------------------------------------------


def text_filters(filters: dict[str, Any]) -> TextFilters:
    """`Filters` as a TextFilters, or InvalidParameterException naming what is wrong. The model
    already bounds MinConfidence (0-100), the minimum sizes (0-1) and the number of regions (10);
    these are the rules it cannot state."""
    word_filter = filters.get("WordFilter") or {}
    regions = filters.get("RegionsOfInterest") or []
    return TextFilters(
        min_confidence=_finite(word_filter, "MinConfidence", "Filters.WordFilter", DEFAULT_MIN_CONFIDENCE) / 100.0,
        min_height=_finite(word_filter, "MinBoundingBoxHeight", "Filters.WordFilter", 0.0),
        min_width=_finite(word_filter, "MinBoundingBoxWidth", "Filters.WordFilter", 0.0),
        regions=tuple(region_shape(region, f"Filters.RegionsOfInterest[{n}]") for n, region in enumerate(regions)),
    )


def region_shape(region: dict[str, Any], where: str) -> BaseGeometry:
    """One RegionOfInterest as a shape in image ratios: its BoundingBox or its Polygon."""
    box: dict[str, Any] | None = region.get("BoundingBox")
    points: list[dict[str, Any]] | None = region.get("Polygon")
    if box is not None and points is None:
        return _box_shape(box, f"{where}.BoundingBox")
    if points is not None and box is None:
        return _polygon_shape(points, f"{where}.Polygon")
    raise InvalidParameterException(f"{where} must have exactly one of BoundingBox or Polygon")


def _box_shape(box: dict[str, Any], where: str) -> BaseGeometry:
    from shapely.geometry import box as shapely_box

    left, top = _ratio(box, "Left", where), _ratio(box, "Top", where)
    width, height = _ratio(box, "Width", where), _ratio(box, "Height", where)
    if width <= 0 or height <= 0:
        raise InvalidParameterException(f"{where} must have a positive Width and Height")
    return shapely_box(left, top, left + width, top + height)


def _polygon_shape(points: list[dict[str, Any]], where: str) -> BaseGeometry:
    from shapely import make_valid
    from shapely.geometry import Polygon

    if not MIN_POLYGON_POINTS <= len(points) <= MAX_POLYGON_POINTS:
        raise InvalidParameterException(
            f"{where} has {len(points)} points; a region polygon needs {MIN_POLYGON_POINTS} to {MAX_POLYGON_POINTS}"
        )
    corners = [
        (_ratio(point, "X", f"{where}[{n}]"), _ratio(point, "Y", f"{where}[{n}]")) for n, point in enumerate(points)
    ]
    shape = make_valid(Polygon(corners))  # a self-crossing outline becomes the area it encloses
    if shape.area <= 0:
        raise InvalidParameterException(f"{where} encloses no area")
    return shape


def _ratio(values: dict[str, Any], key: str, where: str) -> float:
    """A required coordinate given as a ratio of the image size, 0-1."""
    if values.get(key) is None:
        raise InvalidParameterException(f"{where}.{key} is required")
    value = _finite(values, key, where, 0.0)
    if not 0.0 <= value <= 1.0:
        raise InvalidParameterException(f"{where}.{key} is {value}; it must be a ratio of the image size, 0 to 1")
    return value


def _finite(values: dict[str, Any], key: str, where: str, default: float) -> float:
    value = float(values.get(key, default))
    if not math.isfinite(value):
        raise InvalidParameterException(f"{where}.{key} must be a finite number")
    return value
