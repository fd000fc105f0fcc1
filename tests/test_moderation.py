"""DetectModerationLabels through boto3 on the shared photos, none of which is explicit.

There is no explicit test data (and none may be fetched), so recall is not measured anywhere: these
tests check that benign photos stay unlabelled, that the score is the model's real output, and the
parameters. benchmarks/detect_moderation_labels.py measures false positives on every shared photo.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner
from PIL import Image

from opsis import Opsis, Settings
from opsis.cli import main
from opsis.ops.moderation import MODEL_LABELS, TAXONOMY, label_confidences
from opsis.vision.registry import CONTENT_MODERATORS
from tests.conftest import read

TEXT_PAGES = ("misc/page.png", "misc/text.png")
# A swimmer in the pool (WIDER FACE): bare skin, nothing explicit.
SWIMMER = "faces/crowd/wider/images/41--Swimming/41_Swimming_Swimmer_41_113.jpg"
ASTRONAUT = "misc/astronaut.png"
PROJECT_VERSION = "arn:aws:rekognition:us-east-1:123456789012:project/adapter/version/v1/1700000000000"


def benign_photos(data_root: Path, photo_set: str) -> list[str]:
    """The photos of a shared set, as paths relative to the data root."""
    if photo_set == "misc":
        return sorted(f"misc/{path.name}" for path in (data_root / "misc").glob("*.png"))
    if photo_set == "faces/identities/face_recognition":
        with (data_root / photo_set / "labels.csv").open() as file:
            return [row["path"] for row in csv.DictReader(file)]
    folder = data_root / photo_set / "images"
    return sorted(str(path.relative_to(data_root)) for path in folder.rglob("*") if path.is_file())


def labels(rekognition: Any, data_root: Path, photo: str, **params: Any) -> list[dict[str, Any]]:
    response = rekognition.detect_moderation_labels(Image={"Bytes": read(data_root, photo)}, **params)
    found: list[dict[str, Any]] = response["ModerationLabels"]
    return found


def explicit_confidence(rekognition: Any, data_root: Path, photo: str) -> float:
    (label,) = labels(rekognition, data_root, photo, MinConfidence=0)
    return float(label["Confidence"])


@pytest.mark.parametrize(
    "photo_set", ["misc", "faces/identities/face_recognition", "labels/coco8", "labels/coco_val2017", "labels/imagenet"]
)
def test_benign_photos_get_no_label_at_the_default_confidence(
    rekognition: Any, data_root: Path, photo_set: str
) -> None:
    photos = benign_photos(data_root, photo_set)
    flagged = [photo for photo in photos if labels(rekognition, data_root, photo)]
    # At most 1 in 100: open_nsfw gives ImageNet's folded bath towel (skin-coloured folds) 0.54.
    assert len(flagged) <= len(photos) // 100, flagged


def test_the_one_label_is_top_level_explicit(rekognition: Any, data_root: Path) -> None:
    response = rekognition.detect_moderation_labels(Image={"Bytes": read(data_root, ASTRONAUT)}, MinConfidence=0)
    assert response["ModerationLabels"] == [
        {"Name": "Explicit", "ParentName": "", "TaxonomyLevel": 1, "Confidence": pytest.approx(3.2, abs=1.0)}
    ]
    assert response["ModerationModelVersion"].startswith("open-nsfw-")
    assert "HumanLoopActivationOutput" not in response


def test_the_score_is_the_models_and_skin_scores_above_text(rekognition: Any, data_root: Path) -> None:
    swimmer = explicit_confidence(rekognition, data_root, SWIMMER)
    astronaut = explicit_confidence(rekognition, data_root, ASTRONAUT)
    pages = [explicit_confidence(rekognition, data_root, page) for page in TEXT_PAGES]
    assert len({swimmer, astronaut, *pages}) == 4
    assert swimmer > 5 * astronaut > 5 * max(pages)
    assert swimmer < 50


@pytest.mark.parametrize(("offset", "is_listed"), [(-1.0, True), (1.0, False)])
def test_min_confidence_is_honoured(rekognition: Any, data_root: Path, offset: float, is_listed: bool) -> None:
    confidence = explicit_confidence(rekognition, data_root, SWIMMER)
    found = labels(rekognition, data_root, SWIMMER, MinConfidence=confidence + offset)
    assert bool(found) == is_listed


def tiny_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (60, 60), "white").save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("params", "code", "message"),
    [
        ({"MinConfidence": 101}, "InvalidParameterException", "minConfidence"),
        ({"MinConfidence": -1}, "InvalidParameterException", "minConfidence"),
        (
            {"HumanLoopConfig": {"HumanLoopName": "review", "FlowDefinitionArn": "arn:aws:sagemaker:x"}},
            "InvalidParameterException",
            "HumanLoopConfig is not supported",
        ),
        ({"ProjectVersion": PROJECT_VERSION}, "InvalidParameterException", "ProjectVersion is not supported"),
        ({"ProjectVersion": "not-an-arn-but-long-enough"}, "InvalidParameterException", "projectVersion"),
        ({"Image": {"Bytes": b"GIF89a not a photo"}}, "InvalidImageFormatException", "JPEG and PNG"),
        ({"Image": {"Bytes": tiny_png()}}, "InvalidParameterException", "80 pixels"),
    ],
    ids=["over 100", "below 0", "human loop", "adapter", "bad adapter ARN", "not an image", "too small"],
)
def test_bad_parameters(
    unvalidated_rekognition: Any, data_root: Path, params: dict[str, Any], code: str, message: str
) -> None:
    request = {"Image": {"Bytes": read(data_root, ASTRONAUT)}, **params}
    with pytest.raises(ClientError) as raised:
        unvalidated_rekognition.detect_moderation_labels(**request)
    assert raised.value.response["Error"]["Code"] == code
    assert message in raised.value.response["Error"]["Message"]


def test_the_taxonomy_is_a_tree_and_every_model_maps_into_it() -> None:
    for label in TAXONOMY.values():
        assert (label.parent == "") == (label.level == 1)
        if label.parent:
            assert TAXONOMY[label.parent].level == label.level - 1
    assert set(MODEL_LABELS) == set(CONTENT_MODERATORS)
    assert all(name in TAXONOMY for labels in MODEL_LABELS.values() for name in labels.values())


def test_body_parts_give_level_3_labels_and_their_parents_the_highest_child_confidence() -> None:
    scores = {
        "FEMALE_BREAST_EXPOSED": 0.7,
        "BUTTOCKS_EXPOSED": 0.6,
        "MALE_BREAST_EXPOSED": 0.55,
        "FACE_FEMALE": 0.9,  # evidence for no label
        "BELLY_EXPOSED": 0.8,
    }
    assert label_confidences("nudenet-320n", scores) == pytest.approx(
        {
            "Exposed Female Nipple": 70.0,
            "Exposed Buttocks or Anus": 60.0,
            "Explicit Nudity": 70.0,
            "Explicit": 70.0,
            "Exposed Male Nipple": 55.0,
            "Non-Explicit Nudity": 55.0,
            "Non-Explicit Nudity of Intimate parts and Kissing": 55.0,
        }
    )


def test_the_optional_nudenet_model_labels_nothing_on_benign_photos(data_root: Path, tmp_path: Path) -> None:
    """Runs only where the operator-installed, AGPL-3.0 nudenet package is present."""
    pytest.importorskip("nudenet")
    settings = Settings.load(data_dir=tmp_path, content_moderator="nudenet-320n")
    with Opsis(settings) as opsis:
        for photo in benign_photos(data_root, "misc") + benign_photos(data_root, "faces/identities/face_recognition"):
            response = opsis.call("DetectModerationLabels", {"Image": {"Bytes": read(data_root, photo)}})
            assert response["ModerationLabels"] == [], photo
    assert response["ModerationModelVersion"] == "nudenet-320n-3.4.2"


def test_the_cli_prints_no_label_for_a_benign_photo(data_root: Path) -> None:
    photo = data_root / "faces/identities/face_recognition/images/obama/obama.jpg"
    result = CliRunner().invoke(main, ["detect-moderation-labels", str(photo), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["ModerationLabels"] == []
