"""DetectLabels through boto3 against the live server: COCO photos' objects, the taxonomy, filters and
image properties, checked against ground truth and against each other, never against pinned pixels."""

from __future__ import annotations

import io
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError
from PIL import Image, ImageFilter

from tests.conftest import read

COCO_VAL = "labels/coco_val2017"
COCO8 = "labels/coco8"
ZEBRA = "labels/coco8/images/train/000000000034.jpg"
GIRAFFE_AND_FRIENDS = "labels/coco_val2017/images/000000289393.jpg"
STREET = "labels/coco_val2017/images/000000017627.jpg"
# Objects NanoDet-m finds at Rekognition's default MinConfidence (55) with a box on the annotated one.
KNOWN_OBJECTS = [
    ("labels/coco_val2017/images/000000174482.jpg", "Car", "car"),
    ("labels/coco_val2017/images/000000174482.jpg", "Bicycle", "bicycle"),
    ("labels/coco_val2017/images/000000480985.jpg", "Motorcycle", "motorcycle"),
    (GIRAFFE_AND_FRIENDS, "Giraffe", "giraffe"),
    (STREET, "Car", "car"),
    ("labels/coco8/images/train/000000000009.jpg", "Broccoli", "broccoli"),
    ("labels/coco8/images/train/000000000030.jpg", "Vase", "vase"),
    (ZEBRA, "Zebra", "zebra"),
    ("labels/coco8/images/val/000000000036.jpg", "Umbrella", "umbrella"),
    ("labels/coco8/images/val/000000000036.jpg", "Person", "person"),
]
# COCO class -> the label DetectLabels reports it as (for the classes the ground truth uses).
COCO_LABELS = {
    "person": "Person", "bicycle": "Bicycle", "car": "Car", "motorcycle": "Motorcycle", "bus": "Bus",
    "truck": "Truck", "traffic light": "Traffic Light", "bird": "Bird", "cow": "Cow", "giraffe": "Giraffe",
    "potted plant": "Potted Plant", "bowl": "Bowl", "broccoli": "Broccoli", "orange": "Orange", "vase": "Vase",
    "zebra": "Zebra", "umbrella": "Umbrella", "dog": "Dog", "horse": "Horse", "elephant": "Elephant",
}  # fmt: skip

Box = tuple[float, float, float, float]  # xyxy as ratios of the image size


@cache
def ground_truth(data_root: Path) -> dict[str, list[tuple[str, Box]]]:
    """Every photo of the two COCO sets -> its objects (COCO class, box as ratios)."""
    truth: dict[str, list[tuple[str, Box]]] = {}
    annotations = json.loads(read(data_root, f"{COCO_VAL}/annotations.json"))
    classes = {category["id"]: category["name"] for category in annotations["categories"]}
    for image in annotations["images"]:
        width, height = image["width"], image["height"]
        truth[f"{COCO_VAL}/images/{image['file_name']}"] = [
            (classes[a["category_id"]], _ratio_box(a["bbox"], width, height))
            for a in annotations["annotations"]
            if a["image_id"] == image["id"]
        ]
    names = dict(re.findall(r"^\s+(\d+): (.+)$", read(data_root, f"{COCO8}/coco8.yaml").decode(), re.MULTILINE))
    for label_file in sorted((data_root / COCO8 / "labels").glob("*/*.txt")):
        photo = f"{COCO8}/images/{label_file.parent.name}/{label_file.stem}.jpg"
        rows = [line.split() for line in label_file.read_text().splitlines() if line.strip()]
        truth[photo] = [(names[c].strip(), _centre_box(*map(float, rest))) for c, *rest in rows]
    return truth


def _ratio_box(xywh: list[float], width: int, height: int) -> Box:
    left, top, w, h = xywh
    return left / width, top / height, (left + w) / width, (top + h) / height


def _centre_box(cx: float, cy: float, w: float, h: float) -> Box:
    return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2


def instance_box(instance: dict[str, Any]) -> Box:
    box = instance["BoundingBox"]
    return box["Left"], box["Top"], box["Left"] + box["Width"], box["Top"] + box["Height"]


def iou(a: Box, b: Box) -> float:
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def labels_of(response: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {label["Name"]: label for label in response["Labels"]}


@pytest.fixture(scope="module")
def coco_responses(rekognition: Any, data_root: Path) -> dict[str, dict[str, Any]]:
    """Every COCO photo's labels at MinConfidence 30 (the default 55 is a subset of it)."""
    return {
        photo: rekognition.detect_labels(Image={"Bytes": read(data_root, photo)}, MinConfidence=30)
        for photo in ground_truth(data_root)
    }


@pytest.mark.parametrize(("photo", "label", "coco_class"), KNOWN_OBJECTS)
def test_known_object_is_labelled_with_a_box_on_it(
    rekognition: Any, data_root: Path, photo: str, label: str, coco_class: str
) -> None:
    found = labels_of(rekognition.detect_labels(Image={"Bytes": read(data_root, photo)}))
    assert label in found, sorted(found)
    truth = [box for name, box in ground_truth(data_root)[photo] if name == coco_class]
    best = max(iou(instance_box(instance), box) for instance in found[label]["Instances"] for box in truth)
    assert best >= 0.5


def test_coco_objects_are_found_and_boxes_are_right(
    coco_responses: dict[str, dict[str, Any]], data_root: Path
) -> None:
    """Instance recall of objects covering at least 5% of a photo (at confidence 30), and the share
    of default-confidence (55) instances that sit on an annotated object of their class."""
    found = total = right = returned = 0
    for photo, objects in ground_truth(data_root).items():
        instances = [
            (label["Name"], instance) for label in coco_responses[photo]["Labels"] for instance in label["Instances"]
        ]
        for coco_class, box in objects:
            if (box[2] - box[0]) * (box[3] - box[1]) < 0.05:
                continue
            total += 1
            found += any(n == COCO_LABELS[coco_class] and iou(instance_box(i), box) >= 0.5 for n, i in instances)
        for name, instance in instances:
            if instance["Confidence"] >= 55:
                returned += 1
                right += any(
                    COCO_LABELS.get(c) == name and iou(instance_box(instance), box) >= 0.5 for c, box in objects
                )
    assert total >= 15
    assert found / total >= 0.6
    assert right / returned >= 0.75


def test_ancestors_are_labels_too_and_never_less_confident(coco_responses: dict[str, dict[str, Any]]) -> None:
    for response in coco_responses.values():
        found = labels_of(response)
        confidences = [label["Confidence"] for label in response["Labels"]]
        assert confidences == sorted(confidences, reverse=True)
        for label in response["Labels"]:
            assert label["Categories"], label["Name"]
            for parent in label["Parents"]:
                assert parent["Name"] in found, (label["Name"], parent["Name"])
                assert found[parent["Name"]]["Confidence"] >= label["Confidence"]
            if label["Instances"]:
                assert label["Confidence"] == pytest.approx(max(i["Confidence"] for i in label["Instances"]))


def test_taxonomy_of_a_dog_and_a_car(rekognition: Any, data_root: Path) -> None:
    found = labels_of(rekognition.detect_labels(Image={"Bytes": read(data_root, GIRAFFE_AND_FRIENDS)}))
    assert [p["Name"] for p in found["Giraffe"]["Parents"]] == ["Animal", "Mammal", "Wildlife"]
    assert found["Animal"]["Instances"] == []
    assert found["Animal"]["Parents"] == []
    assert {"Name": "Animals and Pets"} in found["Animal"]["Categories"]
    street = labels_of(rekognition.detect_labels(Image={"Bytes": read(data_root, STREET)}))
    assert [p["Name"] for p in street["Car"]["Parents"]] == ["Transportation", "Vehicle"]
    assert street["Car"]["Aliases"] == [{"Name": "Automobile"}]


def test_default_min_confidence_is_55_and_higher_thresholds_give_subsets(
    rekognition: Any, coco_responses: dict[str, dict[str, Any]], data_root: Path
) -> None:
    image = {"Bytes": read(data_root, STREET)}
    default = rekognition.detect_labels(Image=image)
    low = coco_responses[STREET]
    expected = {
        label["Name"]: sorted(i["Confidence"] for i in label["Instances"] if i["Confidence"] >= 55)
        for label in low["Labels"]
        if label["Confidence"] >= 55
    }
    assert {label["Name"]: sorted(i["Confidence"] for i in label["Instances"]) for label in default["Labels"]} == (
        expected
    )
    for threshold in (40, 65, 70):
        response = rekognition.detect_labels(Image=image, MinConfidence=threshold)
        for label in response["Labels"]:
            assert label["Confidence"] >= threshold
            assert all(instance["Confidence"] >= threshold for instance in label["Instances"])
    assert rekognition.detect_labels(Image=image, MinConfidence=100)["Labels"] == []


@pytest.mark.parametrize("limit", [0, 1, 3])
def test_max_labels_keeps_the_most_confident(rekognition: Any, data_root: Path, limit: int) -> None:
    image = {"Bytes": read(data_root, GIRAFFE_AND_FRIENDS)}
    everything = rekognition.detect_labels(Image=image, MinConfidence=30)["Labels"]
    assert len(everything) > 3
    assert rekognition.detect_labels(Image=image, MinConfidence=30, MaxLabels=limit)["Labels"] == everything[:limit]


@pytest.mark.parametrize(
    ("filters", "keep"),
    [
        ({"LabelInclusionFilters": ["Giraffe"]}, lambda label: label["Name"] == "Giraffe"),
        ({"LabelExclusionFilters": ["Animal", "Giraffe"]}, lambda label: label["Name"] not in ("Animal", "Giraffe")),
        ({"LabelCategoryInclusionFilters": ["Animals and Pets"]}, lambda label: True),
        ({"LabelCategoryExclusionFilters": ["Animals and Pets"]}, lambda label: False),
        (
            {"LabelCategoryInclusionFilters": ["Animals and Pets"], "LabelExclusionFilters": ["Mammal"]},
            lambda label: label["Name"] != "Mammal",
        ),
        ({"LabelInclusionFilters": ["Car"]}, lambda label: False),
    ],
)
def test_general_label_filters(rekognition: Any, data_root: Path, filters: dict[str, list[str]], keep: Any) -> None:
    image = {"Bytes": read(data_root, GIRAFFE_AND_FRIENDS)}
    everything = rekognition.detect_labels(Image=image)["Labels"]
    assert {"Giraffe", "Animal", "Mammal"} <= {label["Name"] for label in everything}
    filtered = rekognition.detect_labels(Image=image, Settings={"GeneralLabels": filters})["Labels"]
    assert filtered == [label for label in everything if keep(label)]


def test_photo_without_coco_objects_has_no_labels(rekognition: Any) -> None:
    sky = Image.linear_gradient("L").resize((320, 240)).convert("RGB")
    response = rekognition.detect_labels(Image={"Bytes": encoded(sky)})
    assert response["Labels"] == []
    assert response["LabelModelVersion"]
    assert "ImageProperties" not in response


def test_image_properties_only_when_asked_and_sane(rekognition: Any, data_root: Path) -> None:
    image = {"Bytes": read(data_root, ZEBRA)}
    response = rekognition.detect_labels(Image=image, Features=["GENERAL_LABELS", "IMAGE_PROPERTIES"])
    properties = response["ImageProperties"]
    quality = properties["Quality"]
    for key in ("Brightness", "Sharpness", "Contrast"):
        assert 0 <= quality[key] <= 100
    for region in (properties, properties["Foreground"], properties["Background"]):
        colours = region["DominantColors"]
        assert 1 <= len(colours) <= 10
        assert sum(colour["PixelPercent"] for colour in colours) <= 100.0001
        for colour in colours:
            assert colour["HexCode"] == "#{:02x}{:02x}{:02x}".format(colour["Red"], colour["Green"], colour["Blue"])
            assert colour["CSSColor"]
            assert colour["SimplifiedColor"]
    zebra = labels_of(response)["Zebra"]["Instances"][0]
    assert zebra["DominantColors"]
    assert {c["SimplifiedColor"] for c in zebra["DominantColors"][:3]} & {"black", "grey", "white"}
    without = rekognition.detect_labels(Image=image)
    assert "ImageProperties" not in without
    assert "DominantColors" not in labels_of(without)["Zebra"]["Instances"][0]


def test_image_properties_alone_and_max_dominant_colors(rekognition: Any, data_root: Path) -> None:
    response = rekognition.detect_labels(
        Image={"Bytes": read(data_root, ZEBRA)},
        Features=["IMAGE_PROPERTIES"],
        Settings={"ImageProperties": {"MaxDominantColors": 1}},
    )
    assert "Labels" not in response
    assert len(response["ImageProperties"]["DominantColors"]) == 1


def test_darker_blurrier_flatter_images_score_lower(rekognition: Any, data_root: Path) -> None:
    photo = Image.open(io.BytesIO(read(data_root, STREET))).convert("RGB")
    variants = {
        "original": photo,
        "dark": photo.point(lambda v: v * 0.3),
        "blurred": photo.filter(ImageFilter.GaussianBlur(4)),
        "flat": photo.point(lambda v: 100 + v * 0.2),
    }
    quality = {
        name: rekognition.detect_labels(Image={"Bytes": encoded(image)}, Features=["IMAGE_PROPERTIES"])[
            "ImageProperties"
        ]["Quality"]
        for name, image in variants.items()
    }
    assert quality["dark"]["Brightness"] < quality["original"]["Brightness"] - 15
    assert quality["blurred"]["Sharpness"] < quality["original"]["Sharpness"] - 20
    assert quality["flat"]["Contrast"] < quality["original"]["Contrast"] - 40


def test_a_red_image_is_red(rekognition: Any) -> None:
    red = Image.new("RGB", (200, 150), (250, 5, 5))
    colours = rekognition.detect_labels(Image={"Bytes": encoded(red)}, Features=["IMAGE_PROPERTIES"])[
        "ImageProperties"
    ]["DominantColors"]
    assert colours[0]["SimplifiedColor"] == "red"
    assert colours[0]["PixelPercent"] == pytest.approx(100)


def test_cli_and_boto3_agree(rekognition: Any, data_root: Path) -> None:
    from click.testing import CliRunner

    from opsis.cli import main

    result = CliRunner().invoke(main, ["detect-labels", str(data_root / ZEBRA), "--json"])
    assert result.exit_code == 0, result.output
    cli = json.loads(result.output)
    api = rekognition.detect_labels(Image={"Bytes": read(data_root, ZEBRA)}, Features=["GENERAL_LABELS"])
    assert [label["Name"] for label in cli["Labels"]] == [label["Name"] for label in api["Labels"]]


BAD_PARAMETERS: list[tuple[str, dict[str, Any], str]] = [
    ("MinConfidence over 100", {"MinConfidence": 101.0}, "InvalidParameterException"),
    ("MinConfidence below 0", {"MinConfidence": -1.0}, "InvalidParameterException"),
    ("MaxLabels below 0", {"MaxLabels": -1}, "InvalidParameterException"),
    ("unknown feature", {"Features": ["SCENES"]}, "InvalidParameterException"),
    ("three features", {"Features": ["GENERAL_LABELS"] * 3}, "InvalidParameterException"),
    (
        "MaxDominantColors over 20",
        {"Settings": {"ImageProperties": {"MaxDominantColors": 21}}},
        "InvalidParameterException",
    ),
    (
        "filter name over 50 characters",
        {"Settings": {"GeneralLabels": {"LabelInclusionFilters": ["x" * 51]}}},
        "InvalidParameterException",
    ),
    (
        "over 100 filters",
        {"Settings": {"GeneralLabels": {"LabelExclusionFilters": ["Dog"] * 101}}},
        "InvalidParameterException",
    ),
    (
        "filter out of the pattern",
        {"Settings": {"GeneralLabels": {"LabelInclusionFilters": ["Dog!"]}}},
        "InvalidParameterException",
    ),
]


@pytest.mark.parametrize(("case", "params", "code"), BAD_PARAMETERS, ids=[case for case, *_ in BAD_PARAMETERS])
def test_bad_parameters(
    unvalidated_rekognition: Any, data_root: Path, case: str, params: dict[str, Any], code: str
) -> None:
    with pytest.raises(ClientError) as raised:
        unvalidated_rekognition.detect_labels(Image={"Bytes": read(data_root, ZEBRA)}, **params)
    assert raised.value.response["Error"]["Code"] == code


@pytest.mark.parametrize(
    ("image", "code"),
    [
        (encoded(Image.new("RGB", (60, 200))), "InvalidParameterException"),
        (b"not an image", "InvalidImageFormatException"),
        (encoded(Image.new("RGB", (200, 200)), "GIF"), "InvalidImageFormatException"),
    ],
    ids=["too small", "not an image", "gif"],
)
def test_bad_images(rekognition: Any, image: bytes, code: str) -> None:
    with pytest.raises(ClientError) as raised:
        rekognition.detect_labels(Image={"Bytes": image})
    assert raised.value.response["Error"]["Code"] == code


def test_dark_photo_is_darker_in_the_foreground_too(rekognition: Any, data_root: Path) -> None:
    photo = Image.open(io.BytesIO(read(data_root, GIRAFFE_AND_FRIENDS))).convert("RGB")
    pixels = np.asarray(photo).astype(np.float32)
    dark = Image.fromarray((pixels * 0.4).astype(np.uint8))
    bright, dimmed = (
        rekognition.detect_labels(Image={"Bytes": encoded(image)}, Features=["IMAGE_PROPERTIES"])["ImageProperties"]
        for image in (photo, dark)
    )
    for region in ("Foreground", "Background"):
        assert dimmed[region]["Quality"]["Brightness"] < bright[region]["Quality"]["Brightness"]


def test_every_detector_class_has_a_label() -> None:
    from opsis.ops.taxonomy import taxonomy
    from opsis.vision.registry import OBJECT_DETECTORS
    from opsis.vision.runners.nanodet import NanoDetDetector

    assert set(OBJECT_DETECTORS) == set(taxonomy().detectors)
    assert set(taxonomy().detectors[NanoDetDetector.name]) == set(NanoDetDetector.classes)


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ({"A": {"parents": ["B"], "categories": ["C"]}}, "unknown parent"),
        ({"A": {"parents": ["B"], "categories": ["C"]}, "B": {"parents": ["A"], "categories": ["C"]}}, "cycle"),
        ({"A": {"categories": []}}, "no category"),
        ({"A": {"aliases": ["B"], "categories": ["C"]}, "B": {"categories": ["C"]}}, "aliases that are labels"),
    ],
)
def test_taxonomy_refuses_broken_tables(labels: dict[str, Any], message: str) -> None:
    from opsis.ops.taxonomy import build_taxonomy

    with pytest.raises(ValueError, match=message):
        build_taxonomy({"version": "test", "labels": labels})
