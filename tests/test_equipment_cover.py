"""The HEAD_COVER runner in-process: crops, the shipped head's shape, batching, and the figures its
training script stored, checked against each other and against the photos, never pinned pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from opsis.vision.body_parts import head_box
from opsis.vision.calibration import calibration_document
from opsis.vision.faces import analyze
from opsis.vision.image import decode_image
from opsis.vision.runners.cover import EQUIPMENT, FEATURES, MEAN_BGR, CoverClassifier, square_crops
from opsis.vision.runners.retinaface import RetinaFaceDetector
from tests.conftest import read

SURGEONS = "faces/crowd/wider/images/30--Surgeons/30_Surgeons_Surgeons_30_555.jpg"
OBAMA = "faces/identities/face_recognition/images/obama/obama.jpg"


@pytest.fixture(scope="module")
def classifier() -> CoverClassifier:
    return CoverClassifier()


def test_crops_are_square_grown_and_padded_past_the_border() -> None:
    pixels = np.full((100, 200, 3), 255, np.uint8)
    crops = square_crops(pixels, np.array([[150, 0, 250, 50], [50, 25, 100, 75]], np.float32), side=64)
    assert crops.shape == (2, 64, 64, 3)
    # The first box runs past the right and top edges: that part of the crop is the mean colour.
    assert (crops[0, 5, 60] == MEAN_BGR[::-1].astype(np.uint8)).all()
    assert (crops[0, 40, 5] == 255).all()
    assert (crops[1] == 255).all()


def test_the_shipped_head_fits_the_backbone_and_reports_its_measurement() -> None:
    document = calibration_document(CoverClassifier.version)
    assert set(document["models"]) == set(EQUIPMENT) == {"HEAD_COVER"}
    head = document["models"]["HEAD_COVER"]
    assert len(head["weights"]) == len(head["mean"]) == len(head["scale"]) == FEATURES
    figures = document["report"]["HEAD_COVER"]["all"]
    # Measured by nested grouped cross-validation: better than always saying "bare".
    assert figures["covered"] >= 40
    assert figures["accuracy"] > figures["baseline_accuracy"]
    assert figures["roc_auc"] >= 0.9


def heads(data_root: Path, photo: str) -> tuple[np.ndarray, np.ndarray]:
    image = decode_image(read(data_root, photo))
    faces = analyze(image, RetinaFaceDetector())
    return image.pixels, np.stack([head_box(box) for box in faces.xyxy]).astype(np.float32)


def test_caps_score_high_bare_heads_low_and_a_batch_equals_single_calls(
    classifier: CoverClassifier, data_root: Path
) -> None:
    pixels, boxes = heads(data_root, SURGEONS)
    wide = (boxes[:, 2] - boxes[:, 0]) >= 40  # the surgeons in front, each in a surgical cap
    capped = classifier.covered(pixels, boxes[wide], ["HEAD_COVER"] * int(wide.sum()))
    assert len(capped) >= 3
    assert (capped >= 0.9).all()
    one_by_one = [classifier.covered(pixels, boxes[wide][[row]], ["HEAD_COVER"])[0] for row in range(len(capped))]
    np.testing.assert_allclose(capped, one_by_one, atol=1e-4)
    pixels, boxes = heads(data_root, OBAMA)
    assert (classifier.covered(pixels, boxes, ["HEAD_COVER"] * len(boxes)) < 0.2).all()
    assert classifier.covered(pixels, np.zeros((0, 4), np.float32), []).shape == (0,)
