"""Eyeglasses, sunglasses, beard, mustache and occlusion on real labelled photos.

Labels come from CelebA's attribute list and from the hand labels the classifier was trained with
(benchmarks/labels/appearance.csv), so most of these faces were seen in training: the assertions
are rates and orderings loose enough for that to hold for any sound model, and far beyond what a
broken alignment, a swapped feature column or a stale model file would reach. How well the models
generalise is measured by benchmarks/train_appearance.py, not here. Masks and cut-off faces are
made here, on photos the models saw without them.
"""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from opsis.vision.cache import ModelCache
from opsis.vision.calibration import calibration_document
from opsis.vision.faces import find_faces, largest
from opsis.vision.registry import face_attributes
from opsis.vision.runners.appearance import ATTRIBUTES, FaceAppearanceClassifier
from opsis.vision.runners.appearance_features import FEATURE_NAMES
from opsis.vision.runners.retinaface import RetinaFaceDetector
from opsis.vision.types import DecodedImage, Detections

REPO = Path(__file__).resolve().parent.parent
HAND_LABELS = REPO / "benchmarks" / "labels" / "appearance.csv"
CELEBA = "faces/attributes/celeba/attributes.csv"
PORTRAITS = "faces/identities/face_recognition/labels.csv"
CROWD = "faces/crowd/wider/images/0--Parade/0_Parade_Parade_0_472.jpg"
SAMPLES = 24


@pytest.fixture(scope="session")
def classifier() -> FaceAppearanceClassifier:
    return FaceAppearanceClassifier(threads=2)


def labelled(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        pytest.skip(f"no labels at {path}")
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def spread(rows: list[dict[str, str]], count: int = SAMPLES) -> list[dict[str, str]]:
    """`count` rows spread evenly over the list."""
    return rows[:: max(1, len(rows) // count)][:count]


def photo(data_root: Path, relative: str) -> NDArray[np.uint8]:
    return np.asarray(Image.open(data_root / relative).convert("RGB"))


def main_face(pixels: NDArray[np.uint8], detector: RetinaFaceDetector) -> Detections:
    faces = largest(find_faces(DecodedImage(pixels, "JPEG"), detector), 1)
    assert len(faces) == 1
    return faces


def scores(
    data_root: Path,
    rows: list[dict[str, str]],
    column: str,
    detector: RetinaFaceDetector,
    classifier: FaceAppearanceClassifier,
) -> NDArray[np.float32]:
    """The column's value for the main face of each row's photo."""
    values = []
    for row in rows:
        pixels = photo(data_root, row["path"])
        values.append(classifier.annotate(pixels, main_face(pixels, detector))[column][0])
    return np.array(values)


def test_columns_are_probabilities_with_one_row_per_face(
    data_root: Path, detector: RetinaFaceDetector, classifier: FaceAppearanceClassifier
) -> None:
    pixels = photo(data_root, CROWD)
    faces = find_faces(DecodedImage(pixels, "JPEG"), detector)
    assert len(faces) > 3
    columns = classifier.annotate(pixels, faces)
    assert set(columns) == set(ATTRIBUTES)
    for name, values in columns.items():
        assert values.shape == (len(faces),), name
        assert values.dtype == np.float32, name
        assert np.all((values >= 0) & (values <= 1)), name
    # A batch gives each face what it gets alone.
    alone = classifier.annotate(pixels, faces[[2]])
    for name in ATTRIBUTES:
        np.testing.assert_allclose(alone[name], columns[name][[2]], atol=1e-5)


def test_glasses_wearers_score_above_everyone_else(
    data_root: Path, detector: RetinaFaceDetector, classifier: FaceAppearanceClassifier
) -> None:
    rows = labelled(data_root / CELEBA)
    wearers = scores(data_root, [row for row in rows if row["Eyeglasses"] == "1"], "eyeglasses", detector, classifier)
    others = scores(data_root, spread([r for r in rows if r["Eyeglasses"] == "0"]), "eyeglasses", detector, classifier)
    assert len(wearers) >= 8
    assert np.all(wearers > others.mean())
    assert (wearers >= 0.5).mean() >= 0.75
    assert (others >= 0.5).mean() <= 0.1


def test_bearded_men_score_above_women(
    data_root: Path, detector: RetinaFaceDetector, classifier: FaceAppearanceClassifier
) -> None:
    rows = labelled(data_root / CELEBA)
    bearded = scores(data_root, [row for row in rows if row["No_Beard"] == "0"], "beard", detector, classifier)
    women = scores(data_root, spread([row for row in rows if row["Male"] == "0"]), "beard", detector, classifier)
    assert len(bearded) >= 8
    assert (bearded > women.max()).mean() >= 0.8
    assert bearded.mean() - women.mean() > 0.3
    assert (women >= 0.5).sum() == 0


def test_mustaches_score_above_women(
    data_root: Path, detector: RetinaFaceDetector, classifier: FaceAppearanceClassifier
) -> None:
    hand = [row for row in labelled(HAND_LABELS) if "identities" in row["path"] and (data_root / row["path"]).is_file()]
    mustached = scores(
        data_root, spread([row for row in hand if row["mustache"] == "1"]), "mustache", detector, classifier
    )
    women = [row for row in labelled(data_root / CELEBA) if row["Male"] == "0"]
    clean = scores(data_root, spread(women), "mustache", detector, classifier)
    assert len(mustached) >= 8
    assert (mustached > clean.max()).mean() >= 0.8
    assert np.median(mustached) > 0.2
    assert (clean >= 0.5).sum() == 0


def test_dark_lenses_are_sunglasses_and_occlude_where_clear_glasses_do_neither(
    data_root: Path, detector: RetinaFaceDetector, classifier: FaceAppearanceClassifier
) -> None:
    """Rekognition counts dark sunglasses as occlusion, and clear eyeglasses not."""
    hand = [row for row in labelled(HAND_LABELS) if (data_root / row["path"]).is_file()]
    dark = spread([row for row in hand if row["sunglasses"] == "1"])
    clear = spread([row for row in hand if row["sunglasses"] == "0" and row["eyeglasses"] == "1"])
    assert len(dark) >= 8
    dark_sun = scores(data_root, dark, "sunglasses", detector, classifier)
    dark_occluded = scores(data_root, dark, "face_occluded", detector, classifier)
    assert (dark_sun >= 0.5).mean() >= 0.7
    assert np.all(dark_occluded >= dark_sun - 1e-6)
    assert (scores(data_root, dark, "eyeglasses", detector, classifier) >= 0.5).mean() >= 0.7
    assert (scores(data_root, clear, "sunglasses", detector, classifier) < 0.5).mean() >= 0.9
    assert (scores(data_root, clear, "face_occluded", detector, classifier) < 0.5).mean() >= 0.9
    assert (scores(data_root, clear, "eyeglasses", detector, classifier) >= 0.5).mean() >= 0.8


def paint_mask(pixels: NDArray[np.uint8], landmarks: NDArray[np.float32]) -> NDArray[np.uint8]:
    """A pale blue mask from the nose down past the chin, drawn from RetinaFace's five points
    (a different outline, colour and placement from the masks painted for training)."""
    left_eye, right_eye, nose, mouth_left, mouth_right = landmarks
    width = float(np.linalg.norm(right_eye - left_eye))
    top, bottom = nose[1] - 0.15 * width, (mouth_left[1] + mouth_right[1]) / 2 + 0.75 * width
    left, right = left_eye[0] - 0.45 * width, right_eye[0] + 0.45 * width
    outline = [
        (left, top + 0.1 * width),
        (nose[0], top - 0.05 * width),
        (right, top + 0.1 * width),
        (right - 0.1 * width, bottom - 0.3 * width),
        (nose[0], bottom),
        (left + 0.1 * width, bottom - 0.3 * width),
    ]
    masked = pixels.copy()
    cv2.fillPoly(masked, [np.round(outline).astype(np.int32)], (200, 215, 235))
    return masked


def test_a_mask_occludes_the_face(
    data_root: Path, detector: RetinaFaceDetector, classifier: FaceAppearanceClassifier
) -> None:
    before, after = [], []
    for row in labelled(data_root / PORTRAITS):
        pixels = photo(data_root, row["path"])
        face = main_face(pixels, detector)
        assert face.landmarks is not None
        before.append(classifier.annotate(pixels, face)["face_occluded"][0])
        masked = paint_mask(pixels, face.landmarks[0])
        found = largest(find_faces(DecodedImage(masked, "JPEG"), detector), 1)
        if len(found):
            after.append(classifier.annotate(masked, found)["face_occluded"][0])
    assert len(after) >= 0.8 * len(before)
    assert (np.array(after) >= 0.5).mean() >= 0.8
    assert (np.array(before) < 0.5).mean() >= 0.9


def test_a_face_cut_by_the_frame_is_occluded(
    data_root: Path, detector: RetinaFaceDetector, classifier: FaceAppearanceClassifier
) -> None:
    """Cutting 40% of the face box off its right side takes an eye and a mouth corner with it."""
    whole, cut = [], []
    for row in labelled(data_root / PORTRAITS):
        pixels = photo(data_root, row["path"])
        face = main_face(pixels, detector)
        whole.append(classifier.annotate(pixels, face)["face_occluded"][0])
        left, _, right, _ = face.xyxy[0]
        cropped = np.ascontiguousarray(pixels[:, : int(right - 0.4 * (right - left))])
        found = largest(find_faces(DecodedImage(cropped, "JPEG"), detector), 1)
        if len(found):
            cut.append(classifier.annotate(cropped, found)["face_occluded"][0])
    assert len(cut) >= 0.8 * len(whole)
    assert (np.array(cut) >= 0.5).mean() >= 0.8
    assert (np.array(whole) < 0.5).mean() >= 0.9


def test_no_faces_give_empty_columns(classifier: FaceAppearanceClassifier) -> None:
    columns = classifier.annotate(np.zeros((100, 100, 3), np.uint8), Detections.empty(landmark_count=5))
    assert {name: values.shape for name, values in columns.items()} == {name: (0,) for name in ATTRIBUTES}


def test_shipped_models_read_measured_features() -> None:
    document = calibration_document(FaceAppearanceClassifier.version)
    assert set(document["models"]) == set(ATTRIBUTES)
    for name, model in document["models"].items():
        count = len(model["features"])
        assert set(model["features"]) <= set(FEATURE_NAMES), name
        assert len(model["mean"]) == len(model["scale"]) == len(model["weights"]) == count, name
        assert min(model["scale"]) > 0, name
        assert np.all(np.isfinite(model["weights"])), name
        assert model["platt_slope"] > 0, name


def test_registry_loads_the_classifier_once() -> None:
    cache = ModelCache()
    first = face_attributes(cache, "face-appearance", threads=1)
    assert isinstance(first, FaceAppearanceClassifier)
    assert face_attributes(cache, "face-appearance", threads=1) is first
