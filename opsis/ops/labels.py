"""DetectLabels: object labels with boxes, their taxonomy, and image properties.

Labels come from one object detector (default NanoDet-m, COCO's 80 classes) through Opsis's label
taxonomy (`opsis.ops.taxonomy`): each detected class is a label with Instances (boxes), and each
of its ancestors is a label too (without Instances), as in Rekognition, where "Car" brings
"Vehicle" and "Transportation". A label's Confidence is its best instance's; an ancestor's is its
best descendant's. The detector's confidence is its own score x 100 (NanoDet's GFL score, a joint
class-and-box-quality estimate), not a fitted probability.

What is not there: scene, activity and concept labels ("Beach", "Running", "Outdoors"), and every
object outside COCO's 80 classes. No offline model for them ships in a package, so none are
invented; a photo of a lighthouse gets no labels at all. See benchmarks/detect_labels.py for what
the taxonomy can express of ImageNet's classes and how often it is found.

`ImageProperties` (Features IMAGE_PROPERTIES) are pixel statistics (`opsis.vision.image_properties`):
Quality (Brightness, Sharpness, Contrast; 0-100), DominantColors as CSS named colours, and the same
for the Foreground (the boxes of objects detected at confidence 55 or more, or where none is, a
spectral-residual saliency estimate) and the Background (the rest). With IMAGE_PROPERTIES, each
label instance also lists the dominant colours inside its box.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from opsis.ops.context import Context
from opsis.ops.images import load_image
from opsis.ops.shapes import bounding_box
from opsis.ops.taxonomy import Taxonomy, taxonomy
from opsis.vision.image_properties import MIN_REGION_SHARE, DominantColour, PixelStatistics, box_mask, saliency_mask
from opsis.vision.types import DecodedImage, Detections

if TYPE_CHECKING:
    from mypy_boto3_rekognition.type_defs import (
        DetectLabelsImagePropertiesTypeDef,
        DetectLabelsImageQualityTypeDef,
        DetectLabelsResponseTypeDef,
        DominantColorTypeDef,
        InstanceTypeDef,
        LabelTypeDef,
    )

GENERAL_LABELS = "GENERAL_LABELS"
IMAGE_PROPERTIES = "IMAGE_PROPERTIES"
# Rekognition: "If MinConfidence is not specified, the operation returns labels with a confidence
# values greater than or equal to 55 percent."
DEFAULT_MIN_CONFIDENCE = 55.0
# Rekognition: "The default and upper limit is 1000 labels."
MAX_LABELS = 1000
# DetectLabelsMaxDominantColors: "The default value is 10."
DEFAULT_MAX_DOMINANT_COLORS = 10
# Objects at least this confident (0-1) make up the foreground, whatever MinConfidence asks.
FOREGROUND_MIN_CONFIDENCE = DEFAULT_MIN_CONFIDENCE / 100


@dataclass(frozen=True)
class LabelFilters:
    """Settings.GeneralLabels: a label passes if it matches an inclusion filter (or none is given)
    and no exclusion filter; names and categories match exactly, as Rekognition documents."""

    labels: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    excluded_labels: frozenset[str] = frozenset()
    excluded_categories: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> LabelFilters:
        general = settings.get("GeneralLabels", {})
        return cls(
            labels=frozenset(general.get("LabelInclusionFilters", [])),
            categories=frozenset(general.get("LabelCategoryInclusionFilters", [])),
            excluded_labels=frozenset(general.get("LabelExclusionFilters", [])),
            excluded_categories=frozenset(general.get("LabelCategoryExclusionFilters", [])),
        )

    def passes(self, name: str, categories: Iterable[str]) -> bool:
        categories = set(categories)
        unfiltered = not self.labels and not self.categories
        included = unfiltered or name in self.labels or bool(categories & self.categories)
        excluded = name in self.excluded_labels or bool(categories & self.excluded_categories)
        return included and not excluded


@dataclass
class _Found:
    """A label found in the image: its confidence (0-1) and the rows of its instances."""

    confidence: float = 0.0
    rows: list[int] = field(default_factory=list)


def detect_labels(ctx: Context, params: dict[str, Any]) -> DetectLabelsResponseTypeDef:
    """DetectLabels: labels at or above `MinConfidence` (default 55), most confident first (ties by
    name), at most `MaxLabels` (default and limit 1000), filtered by `Settings.GeneralLabels`;
    and `ImageProperties` when `Features` asks for IMAGE_PROPERTIES (GENERAL_LABELS alone when
    `Features` is absent or empty). EXIF orientation is applied first, so boxes refer to the
    upright image."""
    return labels_in_image(ctx, load_image(ctx, params["Image"]), params)


def labels_in_image(ctx: Context, image: DecodedImage, params: Mapping[str, Any]) -> DetectLabelsResponseTypeDef:
    """DetectLabels' response for a decoded image (a photo or a video frame)."""
    features = set(params.get("Features") or [GENERAL_LABELS])
    settings = params.get("Settings") or {}
    detector = ctx.object_detector()
    names = taxonomy()
    objects = detector.detect(image.pixels)
    class_labels = [names.label_for(detector.name, detector.classes[i]).name for i in objects.data["class_id"]]
    colour_count = (settings.get("ImageProperties") or {}).get("MaxDominantColors", DEFAULT_MAX_DOMINANT_COLORS)
    statistics = PixelStatistics(image.pixels) if IMAGE_PROPERTIES in features else None
    response: dict[str, Any] = {"LabelModelVersion": f"{detector.version}+{names.version}"}
    if GENERAL_LABELS in features:
        threshold = float(params.get("MinConfidence", DEFAULT_MIN_CONFIDENCE)) / 100
        found = found_labels(names, class_labels, objects.confidence, threshold)
        chosen = choose_labels(names, found, LabelFilters.from_settings(settings), params.get("MaxLabels"))
        colours = None if statistics is None else (statistics, colour_count)
        response["Labels"] = [
            _label(names, name, found[name], objects, image=image, colours=colours) for name in chosen
        ]
    if statistics is not None:
        response["ImageProperties"] = image_properties(image, objects, statistics, colour_count)
    return response  # type: ignore[return-value]


def found_labels(
    names: Taxonomy, class_labels: list[str], confidence: NDArray[np.float32], threshold: float
) -> dict[str, _Found]:
    """Every label the detections at or above `threshold` support, with their ancestors."""
    found: dict[str, _Found] = {}
    for row, (label, score) in enumerate(zip(class_labels, confidence, strict=True)):
        if score < threshold:
            continue
        found.setdefault(label, _Found()).rows.append(row)
        for name in names.with_ancestors(label):
            entry = found.setdefault(name, _Found())
            entry.confidence = max(entry.confidence, float(score))
    return found


def choose_labels(names: Taxonomy, found: Mapping[str, _Found], filters: LabelFilters, limit: int | None) -> list[str]:
    """The labels to return, in order: filtered, most confident first, ties by name, then cut."""
    passing = [name for name in found if filters.passes(name, names.labels[name].categories)]
    passing.sort(key=lambda name: (-found[name].confidence, name))
    return passing[: min(MAX_LABELS if limit is None else limit, MAX_LABELS)]


# With IMAGE_PROPERTIES, instances list their colours: the image's statistics and how many colours.
InstanceColours = tuple[PixelStatistics, int] | None


def _label(
    names: Taxonomy, name: str, found: _Found, objects: Detections, *, image: DecodedImage, colours: InstanceColours
) -> LabelTypeDef:
    label = names.labels[name]
    return {
        "Name": name,
        "Confidence": found.confidence * 100.0,
        "Instances": [_instance(objects, row, image, colours) for row in found.rows],
        "Parents": [{"Name": parent} for parent in label.ancestors],
        "Aliases": [{"Name": alias} for alias in label.aliases],
        "Categories": [{"Name": category} for category in label.categories],
    }


def _instance(objects: Detections, row: int, image: DecodedImage, colours: InstanceColours) -> InstanceTypeDef:
    # Objects end at the frame: unlike a face box, a label box never reaches past the image.
    xyxy = np.clip(objects.xyxy[row], 0, [image.width, image.height, image.width, image.height]).astype(np.float32)
    instance: InstanceTypeDef = {
        "BoundingBox": bounding_box(xyxy, image.width, image.height),
        "Confidence": float(objects.confidence[row]) * 100.0,
    }
    if colours is not None:
        statistics, count = colours
        instance["DominantColors"] = [dominant_color(c) for c in statistics.box_colours(xyxy, count)]
    return instance


def image_properties(
    image: DecodedImage, objects: Detections, statistics: PixelStatistics, colours: int
) -> DetectLabelsImagePropertiesTypeDef:
    """Quality and dominant colours of the image, its foreground and its background."""
    pixels = image.pixels
    confident = objects.xyxy[objects.confidence >= FOREGROUND_MIN_CONFIDENCE]
    foreground = box_mask(pixels.shape, confident) if len(confident) else saliency_mask(pixels)
    properties: DetectLabelsImagePropertiesTypeDef = {
        "Quality": _quality(statistics, None, with_contrast=True),
        "DominantColors": [dominant_color(c) for c in statistics.colours(None, colours)],
    }
    share = float(foreground.mean())
    if share >= MIN_REGION_SHARE:
        properties["Foreground"] = {
            "Quality": _quality(statistics, foreground),
            "DominantColors": [dominant_color(c) for c in statistics.colours(foreground, colours)],
        }
    if share <= 1 - MIN_REGION_SHARE:
        background = ~foreground
        properties["Background"] = {
            "Quality": _quality(statistics, background),
            "DominantColors": [dominant_color(c) for c in statistics.colours(background, colours)],
        }
    return properties


def _quality(
    statistics: PixelStatistics, mask: NDArray[np.bool_] | None, with_contrast: bool = False
) -> DetectLabelsImageQualityTypeDef:
    """Brightness and Sharpness; Contrast too for the whole image (Rekognition reports it only there)."""
    measured = statistics.quality(mask)
    quality: DetectLabelsImageQualityTypeDef = {"Brightness": measured.brightness, "Sharpness": measured.sharpness}
    if with_contrast:
        quality["Contrast"] = measured.contrast
    return quality


def dominant_color(colour: DominantColour) -> DominantColorTypeDef:
    red, green, blue = colour.rgb
    return {
        "Red": red,
        "Green": green,
        "Blue": blue,
        "HexCode": colour.hex_code,
        "CSSColor": colour.css_name,
        "SimplifiedColor": colour.simplified,
        "PixelPercent": colour.percent,
    }
