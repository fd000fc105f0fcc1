"""DetectText through boto3 against the live server, on pages and photos whose words are known."""

from __future__ import annotations

import io
import math
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from shapely.geometry import Point, Polygon

from opsis.cli import main
from tests.conftest import LiveServer, client, read

PAGE = "text/tesseract/phototest.png"
PAGE_TRANSCRIPT = "text/tesseract/phototest.txt"
SKIMAGE_PAGE = "misc/page.png"
RECEIPT = "text/wildreceipt_toy/2.jpeg"
RECEIPT_TRUTH = "text/wildreceipt_toy/data.txt"
CAT = "misc/chelsea.png"
TIFF_PAGE = "text/tesseract/phototest.tif"


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def detect(rekognition: Any, data: bytes, **filters: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"Image": {"Bytes": data}}
    if filters:
        params["Filters"] = filters
    response: dict[str, Any] = rekognition.detect_text(**params)
    return response


def of_type(response: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [d for d in response["TextDetections"] if d["Type"] == kind]


def texts(response: dict[str, Any], kind: str = "WORD") -> list[str]:
    return [d["DetectedText"] for d in of_type(response, kind)]


def recall(truth: list[str], found: list[str]) -> float:
    """Share of the true words found, each found word counted once (bags of words)."""
    return sum((Counter(truth) & Counter(found)).values()) / len(truth)


def corners(detection: dict[str, Any]) -> np.ndarray:
    return np.array([[p["X"], p["Y"]] for p in detection["Geometry"]["Polygon"]])


def centre(detection: dict[str, Any]) -> tuple[float, float]:
    box = detection["Geometry"]["BoundingBox"]
    return box["Left"] + box["Width"] / 2, box["Top"] + box["Height"] / 2


@pytest.fixture(scope="module")
def page(rekognition: Any, data_root: Path) -> dict[str, Any]:
    """tesseract's phototest page, read once with the default filters."""
    return detect(rekognition, read(data_root, PAGE))


@pytest.fixture(scope="module")
def page_words(data_root: Path) -> list[str]:
    return (data_root / PAGE_TRANSCRIPT).read_text().split()


def test_page_words_are_read(page: dict[str, Any], page_words: list[str]) -> None:
    assert page["TextModelVersion"].startswith("ppocrv6-small-")
    assert recall(page_words, texts(page)) >= 0.9
    assert all(d["Confidence"] >= 80 for d in of_type(page, "WORD"))
    lines = texts(page, "LINE")
    assert "The quick brown dog jumped over the" in lines
    assert "of file format." in lines


def test_lines_come_first_and_words_point_to_their_line(page: dict[str, Any]) -> None:
    detections = page["TextDetections"]
    lines = of_type(page, "LINE")
    assert [d["Type"] for d in detections] == ["LINE"] * len(lines) + ["WORD"] * (len(detections) - len(lines))
    assert [d["Id"] for d in detections] == list(range(len(detections)))
    assert all("ParentId" not in line for line in lines)
    by_id = {line["Id"]: line for line in lines}
    for word in of_type(page, "WORD"):
        line = by_id[word["ParentId"]]
        assert word["DetectedText"] in line["DetectedText"].split()
        assert Polygon(corners(line)).buffer(1e-3).contains(Point(centre(word)))
    # Every line holds a returned word, and its words come in the line's order (the default
    # MinConfidence of 80 may leave some of them out).
    for line in lines:
        words = iter(line["DetectedText"].split())
        kept = [w["DetectedText"] for w in of_type(page, "WORD") if w["ParentId"] == line["Id"]]
        assert kept
        assert all(word in words for word in kept)  # a subsequence: `in` consumes the iterator


def test_geometry_is_inside_the_image_and_boxes_hold_their_polygons(page: dict[str, Any]) -> None:
    for detection in page["TextDetections"]:
        box = detection["Geometry"]["BoundingBox"]
        points = corners(detection)
        assert points.shape == (4, 2)
        assert (points >= 0).all()
        assert (points <= 1).all()
        assert box["Width"] > 0
        assert box["Height"] > 0
        assert points[:, 0].min() == pytest.approx(box["Left"], abs=1e-6)
        assert points[:, 1].min() == pytest.approx(box["Top"], abs=1e-6)
        assert points[:, 0].max() == pytest.approx(box["Left"] + box["Width"], abs=1e-6)
        assert 0 < detection["Confidence"] <= 100


@pytest.mark.parametrize("angle", [20, 90, 180])
def test_rotated_page_keeps_rotated_polygons(
    rekognition: Any, data_root: Path, page_words: list[str], angle: int
) -> None:
    """PIL turns the page counter-clockwise; each line's top edge (first to second point, in
    reading order) turns with it, and the words are still read."""
    upright = Image.open(data_root / PAGE).convert("L")
    turned = upright.rotate(angle, expand=True, fillcolor=255, resample=Image.Resampling.BICUBIC)
    response = detect(rekognition, png(turned))
    assert recall(page_words, texts(response)) >= 0.85
    width, height = turned.size
    for line in of_type(response, "LINE"):
        if len(line["DetectedText"]) < 10:
            continue
        (x0, y0), (x1, y1) = corners(line)[:2] * np.array([width, height])
        direction = math.degrees(math.atan2(-(y1 - y0), x1 - x0))  # counter-clockwise from the x axis
        assert abs((direction - angle + 180) % 360 - 180) < 6, (line["DetectedText"], direction)


def test_concurrent_requests_get_the_same_answer(server: LiveServer, data_root: Path, page: dict[str, Any]) -> None:
    """Two requests at once share the one reader (the server runs two inference workers)."""
    clients = [client(server) for _ in range(2)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(lambda c: detect(c, read(data_root, PAGE)), clients))
    for answer in answers:
        assert answer["TextDetections"] == page["TextDetections"]


def test_skimage_page_is_read(rekognition: Any, data_root: Path) -> None:
    lines = texts(detect(rekognition, read(data_root, SKIMAGE_PAGE)), "LINE")
    assert "Region-based segmentation" in lines
    assert "histogram of grey values:" in lines


def test_receipt_photo_finds_its_annotated_text(rekognition: Any, data_root: Path) -> None:
    """WildReceipt's boxes hold text with the spaces taken out; compare without spaces."""
    import json

    documents = [json.loads(line) for line in (data_root / RECEIPT_TRUTH).read_text().splitlines() if line.strip()]
    truth = next(d for d in documents if d["file_name"].endswith(RECEIPT.rsplit("/", 1)[1]))
    expected = ["".join(a["text"].split()) for a in truth["annotations"]]
    response = detect(rekognition, read(data_root, RECEIPT), WordFilter={"MinConfidence": 0})
    found = ["".join(t.split()) for t in texts(response, "LINE") + texts(response, "WORD")]
    assert recall(expected, found) >= 0.6


def test_photo_without_text_has_no_confident_words(rekognition: Any, data_root: Path) -> None:
    assert of_type(detect(rekognition, read(data_root, CAT)), "WORD") == []


def test_min_confidence_filters_words(rekognition: Any, data_root: Path) -> None:
    receipt = read(data_root, RECEIPT)
    every = of_type(detect(rekognition, receipt, WordFilter={"MinConfidence": 0}), "WORD")
    confident = of_type(detect(rekognition, receipt, WordFilter={"MinConfidence": 95}), "WORD")
    assert len(confident) < len(every)
    assert all(word["Confidence"] >= 95 for word in confident)
    expected = [w["DetectedText"] for w in every if w["Confidence"] >= 95]
    assert [w["DetectedText"] for w in confident] == expected


def test_min_bounding_box_size_filters_words(rekognition: Any, data_root: Path, page: dict[str, Any]) -> None:
    words = of_type(page, "WORD")
    widths = sorted(w["Geometry"]["BoundingBox"]["Width"] for w in words)
    heights = sorted(w["Geometry"]["BoundingBox"]["Height"] for w in words)
    wide = of_type(
        detect(rekognition, read(data_root, PAGE), WordFilter={"MinBoundingBoxWidth": widths[len(widths) // 2]}), "WORD"
    )
    assert 0 < len(wide) < len(words)
    assert all(w["Geometry"]["BoundingBox"]["Width"] >= widths[len(widths) // 2] for w in wide)
    tall = of_type(
        detect(rekognition, read(data_root, PAGE), WordFilter={"MinBoundingBoxHeight": heights[-1] + 0.01}), "WORD"
    )
    assert tall == []


def test_region_of_interest_keeps_the_words_mostly_inside(
    rekognition: Any, data_root: Path, page: dict[str, Any]
) -> None:
    region = {"Left": 0.0, "Top": 0.0, "Width": 1.0, "Height": 0.45}
    by_box = detect(rekognition, read(data_root, PAGE), RegionsOfInterest=[{"BoundingBox": region}])
    inside = [w["DetectedText"] for w in of_type(page, "WORD") if centre(w)[1] < 0.45]
    assert texts(by_box) == inside
    assert 0 < len(inside) < len(of_type(page, "WORD"))
    # Lines are those of the kept words only.
    assert {d["Id"] for d in of_type(by_box, "LINE")} == {d["ParentId"] for d in of_type(by_box, "WORD")}
    polygon = [{"X": 0.0, "Y": 0.0}, {"X": 1.0, "Y": 0.0}, {"X": 1.0, "Y": 0.45}, {"X": 0.0, "Y": 0.45}]
    by_polygon = detect(rekognition, read(data_root, PAGE), RegionsOfInterest=[{"Polygon": polygon}])
    assert texts(by_polygon) == texts(by_box)
    # A second region adds its words.
    lower = {"Left": 0.0, "Top": 0.6, "Width": 1.0, "Height": 0.4}
    both = detect(
        rekognition, read(data_root, PAGE), RegionsOfInterest=[{"BoundingBox": region}, {"BoundingBox": lower}]
    )
    assert len(texts(both)) > len(texts(by_box))


def test_at_most_100_words_in_reading_order(rekognition: Any, data_root: Path, page_words: list[str]) -> None:
    """Four copies of the page hold 240 words; the first 100 in reading order come back."""
    upright = Image.open(data_root / PAGE).convert("L")
    tiled = Image.new("L", (upright.width * 2, upright.height * 2), 255)
    for x in (0, upright.width):
        for y in (0, upright.height):
            tiled.paste(upright, (x, y))
    response = detect(rekognition, png(tiled), WordFilter={"MinConfidence": 0})
    words = of_type(response, "WORD")
    assert len(words) == 100
    assert {d["Id"] for d in of_type(response, "LINE")} == {w["ParentId"] for w in words}
    assert all(centre(w)[1] < 0.55 for w in words)  # the top pair of pages is read first
    assert recall(words_of(words), page_words * 2) >= 0.9  # nearly every returned word is on the pages


def words_of(detections: list[dict[str, Any]]) -> list[str]:
    return [d["DetectedText"] for d in detections]


BAD_FILTERS = [
    ({"WordFilter": {"MinConfidence": 101}}, "InvalidParameterException"),
    ({"WordFilter": {"MinBoundingBoxHeight": -0.1}}, "InvalidParameterException"),
    ({"WordFilter": {"MinBoundingBoxWidth": 1.5}}, "InvalidParameterException"),
    (
        {"RegionsOfInterest": [{"BoundingBox": {"Left": 0, "Top": 0, "Width": 1, "Height": 1}}] * 11},
        "InvalidParameterException",
    ),
    ({"RegionsOfInterest": [{}]}, "InvalidParameterException"),
    (
        {
            "RegionsOfInterest": [
                {"BoundingBox": {"Left": 0, "Top": 0, "Width": 1, "Height": 1}, "Polygon": [{"X": 0, "Y": 0}] * 3}
            ]
        },
        "InvalidParameterException",
    ),
    (
        {"RegionsOfInterest": [{"BoundingBox": {"Left": 0, "Top": 0, "Width": 0, "Height": 1}}]},
        "InvalidParameterException",
    ),
    (
        {"RegionsOfInterest": [{"BoundingBox": {"Left": 1.5, "Top": 0, "Width": 0.1, "Height": 0.1}}]},
        "InvalidParameterException",
    ),
    ({"RegionsOfInterest": [{"BoundingBox": {"Left": 0, "Width": 0.5, "Height": 0.5}}]}, "InvalidParameterException"),
    ({"RegionsOfInterest": [{"Polygon": [{"X": 0, "Y": 0}, {"X": 1, "Y": 1}]}]}, "InvalidParameterException"),
    (
        {"RegionsOfInterest": [{"Polygon": [{"X": i / 11, "Y": (i % 2) / 2} for i in range(11)]}]},
        "InvalidParameterException",
    ),
    (
        {"RegionsOfInterest": [{"Polygon": [{"X": 0, "Y": 0}, {"X": 2, "Y": 0}, {"X": 0, "Y": 1}]}]},
        "InvalidParameterException",
    ),
    (
        {"RegionsOfInterest": [{"Polygon": [{"X": 0, "Y": 0}, {"X": 0.5, "Y": 0.5}, {"X": 1, "Y": 1}]}]},
        "InvalidParameterException",
    ),
]


@pytest.mark.parametrize(("filters", "code"), BAD_FILTERS)
def test_bad_filters_are_rejected(
    unvalidated_rekognition: Any, data_root: Path, filters: dict[str, Any], code: str
) -> None:
    with pytest.raises(unvalidated_rekognition.exceptions.ClientError) as raised:
        unvalidated_rekognition.detect_text(Image={"Bytes": read(data_root, PAGE)}, Filters=filters)
    assert raised.value.response["Error"]["Code"] == code
    assert raised.value.response["Error"]["Message"]


def test_tiff_is_an_invalid_image_format(rekognition: Any, data_root: Path) -> None:
    with pytest.raises(rekognition.exceptions.InvalidImageFormatException):
        rekognition.detect_text(Image={"Bytes": read(data_root, TIFF_PAGE)})


def test_cli_detect_text_prints_a_table(data_root: Path, tmp_path: Path) -> None:
    photo = str(data_root / SKIMAGE_PAGE)
    result = CliRunner().invoke(
        main, ["detect-text", photo, "--min-confidence", "90"], env={"OPSIS_DATA_DIR": str(tmp_path)}
    )
    assert result.exit_code == 0, result.output
    assert "Region-based segmentation" in result.output
    assert "line(s)" in result.output
