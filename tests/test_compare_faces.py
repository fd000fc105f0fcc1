"""CompareFaces through boto3: the same person matches above the default threshold, others do not."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from PIL import Image, ImageFilter

from tests.conftest import read

PEOPLE = "faces/identities/face_recognition"
OBAMA = f"{PEOPLE}/images/obama/obama.jpg"
BIDEN = f"{PEOPLE}/images/biden/biden.jpg"
GROUP = f"{PEOPLE}/images/multi/obama_and_biden.jpg"
PAIRS_PER_KIND = 30


def area(face: dict[str, Any]) -> float:
    box = face["BoundingBox"]
    return float(box["Width"] * box["Height"])


def main_face_similarity(rekognition: Any, source: bytes, target: bytes) -> float:
    """Similarity of the source's largest face to the target's largest face (the labelled person)."""
    response = rekognition.compare_faces(
        SourceImage={"Bytes": source}, TargetImage={"Bytes": target}, SimilarityThreshold=0
    )
    largest = max(response["FaceMatches"], key=lambda match: area(match["Face"]))
    return float(largest["Similarity"])


@pytest.mark.parametrize("identity_set", ["face_recognition", "deepface"])
def test_labelled_pairs_match_at_the_default_threshold(rekognition: Any, data_root: Path, identity_set: str) -> None:
    with (data_root / "faces" / "identities" / identity_set / "pairs.csv").open() as file:
        rows = list(csv.DictReader(file))
    # A fixed sample keeps the suite fast; benchmarks/face_identity.py measures every pair.
    pairs = [row for row in rows if row["same"] == "1"][:PAIRS_PER_KIND] + [row for row in rows if row["same"] == "0"][
        :PAIRS_PER_KIND
    ]
    same: list[bool] = []
    different: list[bool] = []
    for pair in pairs:
        similarity = main_face_similarity(rekognition, read(data_root, pair["path_a"]), read(data_root, pair["path_b"]))
        (same if pair["same"] == "1" else different).append(similarity >= 80)
    # Calibrated: at 80, about 6% of same-person pairs miss and 1% of different-person pairs match.
    assert sum(same) / len(same) >= 0.9
    assert sum(different) <= 2


def test_group_photo_matches_the_right_person_first(rekognition: Any, data_root: Path) -> None:
    response = rekognition.compare_faces(
        SourceImage={"Bytes": read(data_root, BIDEN)}, TargetImage={"Bytes": read(data_root, GROUP)}
    )
    assert len(response["FaceMatches"]) == 1
    assert response["FaceMatches"][0]["Similarity"] >= 95
    # multi_person.csv: biden is the left one of the two main faces.
    assert response["FaceMatches"][0]["Face"]["BoundingBox"]["Left"] < 0.5
    assert len(response["UnmatchedFaces"]) == 2
    assert response["SourceImageFace"]["Confidence"] > 90
    face = response["FaceMatches"][0]["Face"]
    assert {"BoundingBox", "Confidence", "Landmarks", "Pose", "Quality"} <= set(face)


def test_matches_are_sorted_and_respect_the_threshold(rekognition: Any, data_root: Path) -> None:
    everything = rekognition.compare_faces(
        SourceImage={"Bytes": read(data_root, OBAMA)},
        TargetImage={"Bytes": read(data_root, GROUP)},
        SimilarityThreshold=0,
    )
    similarities = [match["Similarity"] for match in everything["FaceMatches"]]
    assert similarities == sorted(similarities, reverse=True)
    assert len(similarities) == 3
    assert everything["UnmatchedFaces"] == []
    strict = rekognition.compare_faces(
        SourceImage={"Bytes": read(data_root, OBAMA)},
        TargetImage={"Bytes": read(data_root, GROUP)},
        SimilarityThreshold=100,
    )
    assert strict["FaceMatches"] == []
    assert len(strict["UnmatchedFaces"]) == 3


def test_quality_filter_leaves_out_faces_below_the_bar(rekognition: Any, data_root: Path) -> None:
    photo = Image.open(io.BytesIO(read(data_root, OBAMA)))
    buffer = io.BytesIO()
    photo.filter(ImageFilter.GaussianBlur(6)).save(buffer, format="JPEG")
    blurred = {"Bytes": buffer.getvalue()}
    kept = rekognition.compare_faces(SourceImage={"Bytes": read(data_root, OBAMA)}, TargetImage=blurred)
    assert len(kept["FaceMatches"]) == 1
    with pytest.raises(ClientError) as raised:
        rekognition.compare_faces(
            SourceImage={"Bytes": read(data_root, OBAMA)}, TargetImage=blurred, QualityFilter="HIGH"
        )
    assert raised.value.response["Error"]["Code"] == "InvalidParameterException"
    assert "QualityFilter HIGH" in raised.value.response["Error"]["Message"]


@pytest.mark.parametrize(
    ("source", "target"),
    [("misc/chelsea.png", OBAMA), (OBAMA, "misc/chelsea.png")],
    ids=["no face in source", "no face in target"],
)
def test_no_face_is_an_invalid_parameter(rekognition: Any, data_root: Path, source: str, target: str) -> None:
    with pytest.raises(ClientError) as raised:
        rekognition.compare_faces(
            SourceImage={"Bytes": read(data_root, source)}, TargetImage={"Bytes": read(data_root, target)}
        )
    assert raised.value.response["Error"]["Code"] == "InvalidParameterException"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"SimilarityThreshold": 101}, "InvalidParameterException"),
        ({"QualityFilter": "BEST"}, "InvalidParameterException"),
        ({"TargetImage": {"Bytes": b"not an image"}}, "InvalidImageFormatException"),
    ],
)
def test_bad_parameters(unvalidated_rekognition: Any, data_root: Path, params: dict[str, Any], code: str) -> None:
    request = {
        "SourceImage": {"Bytes": read(data_root, OBAMA)},
        "TargetImage": {"Bytes": read(data_root, OBAMA)},
        **params,
    }
    with pytest.raises(ClientError) as raised:
        unvalidated_rekognition.compare_faces(**request)
    assert raised.value.response["Error"]["Code"] == code
