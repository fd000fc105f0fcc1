"""Fit the confidence calibration of the facial-attribute runners on labelled faces.

The faces of UTKFace and FER2013 whose path hashes into the calibration split
(`face_attributes.is_calibration`, 3 tenths of each set) are run through the uncalibrated runners
exactly as benchmarks/face_attributes.py runs them, and:
* gender: Platt scaling, P(male) = sigmoid(slope * logit + bias), by maximum likelihood, fitted
  apart for faces estimated under CHILD_AGE and the rest;
* emotions: one temperature on the network's log-probabilities, by maximum likelihood;
* age: the smallest multiple of the distribution's spread whose whole-year ranges around the mean
  hold the true age of AGE_COVERAGE_TARGET of the faces (split-conformal).
The face mesh's, on the calibration split of the CelebA attributes, the eyes-open labels and the
portraits (face_attributes.py, section 4):
* pitch offset: minus the median uncalibrated pitch of the portraits;
* gaze geometry (eye-corner depth, iris rise): least squares, taking the portraits to look into
  the camera;
* Smile, MouthOpen, EyesOpen: Platt scaling on one measure each (lip-corner retraction against
  CelebA `Smiling`, lip gap against `Mouth_Slightly_Open`, eye opening against the labels);
* gaze confidence: logistic regression of "the portrait's gaze is within GAZE_TOLERANCE of the
  camera" on ln(iris diameter) and |head yaw|.
It prints, on the held-out faces, top-label ECE (ECE_BINS equal-width bins) before and after, the
age-range coverage and width and the mesh attributes' accuracy and ECE, and with --write stores
the parameters in opsis/vision/calibration/.

    .venv/bin/python benchmarks/calibrate_attributes.py [--data ../shared/data] [--write]
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
from common import argument_parser, expected_calibration_error
from face_attributes import (
    CALIBRATION_SHARE,
    GAZE_TOLERANCE,
    FerFaces,
    MeshFaces,
    UtkFaces,
    celeba_attributes,
    eyes_open_labels,
    fer_outputs,
    gaze_errors,
    gender_confidence,
    is_calibration,
    mesh_faces,
    portrait_paths,
    utkface_outputs,
)
from numpy.typing import NDArray
from rich.console import Console
from rich.table import Table

from opsis.config import Settings
from opsis.vision.calibration import calibration_path
from opsis.vision.mesh_geometry import head_axes, pupil_offsets
from opsis.vision.runners.age_gender import CHILD_AGE, AgeGenderCalibration, AgeGenderEstimator
from opsis.vision.runners.emotion import EmotionCalibration, FerEmotionClassifier
from opsis.vision.runners.face_mesh import FaceMeasures, FaceMeshCalibration, FaceMeshRunner
from opsis.vision.runners.retinaface import RetinaFaceDetector

REPO = Path(__file__).resolve().parent.parent
# Two in three true ages inside the range: at 80% the ranges of this net are 25 years wide on average.
AGE_COVERAGE_TARGET = 2 / 3
TEMPERATURES = np.geomspace(0.1, 30.0, 800)
AGE_WIDTHS = np.arange(0.2, 6.0, 0.01)
console = Console(width=140)


def tempered_nll(log_probabilities: NDArray[np.float64], labels: NDArray[np.int64], temperature: float) -> float:
    """Mean negative log-likelihood of the labels under softmax(log p / T)."""
    logits = log_probabilities / temperature
    logits -= logits.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(logits).sum(axis=1))
    return float((log_norm - logits[np.arange(len(labels)), labels]).mean())


def fit_temperature(probabilities: NDArray[np.float32], labels: NDArray[np.int64]) -> float:
    """The temperature of least NLL on a log-spaced grid (one parameter: a grid is exact enough)."""
    log_probabilities = np.log(np.clip(probabilities.astype(np.float64), 1e-12, 1.0))
    losses = [tempered_nll(log_probabilities, labels, float(t)) for t in TEMPERATURES]
    return round(float(TEMPERATURES[int(np.argmin(losses))]), 4)


def fit_platt(gender: NDArray[np.float32], is_male: NDArray[np.bool_]) -> tuple[float, float]:
    """Logistic regression of the label on the network's logit."""
    logit = np.log(np.clip(gender[:, 1], 1e-7, 1.0)) - np.log(np.clip(gender[:, 0], 1e-7, 1.0))
    slope, bias = fit_logistic(np.stack([logit, np.ones_like(logit)], axis=1), is_male, np.array([1.0, 0.0]))
    return slope, bias


def fit_logistic(
    features: NDArray[np.floating], labels: NDArray[np.bool_], start: NDArray[np.float64] | None = None
) -> tuple[float, ...]:
    """Maximum-likelihood weights of P(label) = sigmoid(features @ weights) (give a column of ones
    for a bias): Newton's method with step halving, since saturated inputs (the gender net is
    often 99.99% sure) make plain Newton steps overshoot."""
    design: NDArray[np.float64] = features.astype(np.float64)
    target = labels.astype(np.float64)
    weights = np.zeros(design.shape[1]) if start is None else start.astype(np.float64)
    for _ in range(100):
        predicted = 0.5 + 0.5 * np.tanh(design @ weights / 2)
        gradient = design.T @ (predicted - target)
        hessian = (design * (predicted * (1 - predicted))[:, None]).T @ design + 1e-6 * np.eye(len(weights))
        step = np.linalg.solve(hessian, gradient)
        while platt_nll(design, target, weights - step) > platt_nll(design, target, weights):
            step /= 2
            if np.abs(step).max() < 1e-12:
                break
        weights -= step
        if np.abs(step).max() < 1e-9:
            break
    return tuple(round(float(weight), 5) for weight in weights)


def platt_nll(features: NDArray[np.float64], target: NDArray[np.float64], weights: NDArray[np.float64]) -> float:
    margin = features @ weights
    return float((np.logaddexp(0.0, margin) - target * margin).mean())


def age_coverage(calibration: AgeGenderCalibration, faces: UtkFaces, rows: NDArray[np.bool_]) -> tuple[float, float]:
    """Share of true ages inside the range, and the mean range width in years."""
    ranges = calibration.age_range(faces.age_estimates[rows], faces.age_spreads[rows])
    truth = faces.ages[rows]
    return float(((truth >= ranges[:, 0]) & (truth <= ranges[:, 1])).mean()), float(
        (ranges[:, 1] - ranges[:, 0]).mean()
    )


def fit_age_width(faces: UtkFaces, rows: NDArray[np.bool_]) -> float:
    """The smallest width (in spreads) whose whole-year ranges hold AGE_COVERAGE_TARGET of true ages."""
    for width in AGE_WIDTHS:
        if age_coverage(AgeGenderCalibration(age_width=float(width)), faces, rows)[0] >= AGE_COVERAGE_TARGET:
            return round(float(width), 3)
    return float(AGE_WIDTHS[-1])


def gender_ece(calibration: AgeGenderCalibration, faces: UtkFaces, rows: NDArray[np.bool_]) -> float:
    male = calibration.male_probability(faces.gender_probabilities[rows], faces.age_estimates[rows])
    return expected_calibration_error(*gender_confidence(male, faces.is_male[rows]))


def gender_accuracy(calibration: AgeGenderCalibration, faces: UtkFaces, rows: NDArray[np.bool_]) -> float:
    male = calibration.male_probability(faces.gender_probabilities[rows], faces.age_estimates[rows])
    return float(gender_confidence(male, faces.is_male[rows])[1].mean())


def calibrate_age_gender(faces: UtkFaces) -> tuple[AgeGenderCalibration, dict[str, Any]]:
    fitting = np.array([is_calibration(path) for path in faces.paths])
    child = faces.age_estimates < CHILD_AGE
    slope, bias = fit_platt(faces.gender_probabilities[fitting & ~child], faces.is_male[fitting & ~child])
    slope_child, bias_child = fit_platt(faces.gender_probabilities[fitting & child], faces.is_male[fitting & child])
    fitted = AgeGenderCalibration(slope, bias, slope_child, bias_child, age_width=fit_age_width(faces, fitting))
    raw, held_out = AgeGenderCalibration(), ~fitting
    report: dict[str, Any] = {
        "fitted_on": f"UTKFace, {int(fitting.sum())} faces",
        "held_out_faces": int(held_out.sum()),
    }
    for name, rows in (
        ("", held_out),
        ("_estimated_13_up", held_out & ~child),
        ("_estimated_under_13", held_out & child),
    ):
        report[f"gender_ece{name}_before"] = gender_ece(raw, faces, rows)
        report[f"gender_ece{name}_after"] = gender_ece(fitted, faces, rows)
        report[f"gender_accuracy{name}_before"] = gender_accuracy(raw, faces, rows)
        report[f"gender_accuracy{name}_after"] = gender_accuracy(fitted, faces, rows)
    report["age_coverage_target"] = AGE_COVERAGE_TARGET
    report["age_range_before"] = "mean +- 1 standard deviation"
    for when, calibration in (("before", raw), ("after", fitted)):
        coverage, width = age_coverage(calibration, faces, held_out)
        report[f"age_coverage_{when}"] = coverage
        report[f"age_mean_width_{when}"] = width
    return fitted, report


def emotion_ece(calibration: EmotionCalibration, faces: FerFaces, rows: NDArray[np.bool_]) -> float:
    probabilities = calibration.apply(faces.probabilities[rows])
    return expected_calibration_error(probabilities.max(axis=1), probabilities.argmax(axis=1) == faces.labels[rows])


def calibrate_emotions(faces: FerFaces) -> tuple[EmotionCalibration, dict[str, Any]]:
    fitting = np.array([is_calibration(path) for path in faces.paths])
    fitted = EmotionCalibration(fit_temperature(faces.probabilities[fitting], faces.labels[fitting]))
    held_out = ~fitting
    report = {
        "fitted_on": f"FER2013 sample, {int(fitting.sum())} faces (class-balanced but for disgust)",
        "held_out_faces": int(held_out.sum()),
        "emotion_ece_before": emotion_ece(EmotionCalibration(), faces, held_out),
        "emotion_ece_after": emotion_ece(fitted, faces, held_out),
    }
    return fitted, report


def fit_gaze_geometry(portraits: MeshFaces, rows: NDArray[np.bool_], pitch_offset: float) -> tuple[float, float]:
    """Corner depth and iris rise (eye widths) by least squares, taking the portraits to look into
    the camera: each pupil's offset should then be -depth * forward + rise * up (see
    mesh_geometry.gaze_directions), two equations per eye in two unknowns."""
    outputs = portraits.outputs
    axes = head_axes(outputs.mesh[rows], pitch_offset)
    offsets = pupil_offsets(outputs.mesh[rows], outputs.eye_contours[rows], outputs.irises[rows])
    forward = np.repeat(-axes[:, None, 2, :2], 2, axis=1)
    up = np.repeat(-axes[:, None, 1, :2], 2, axis=1)
    design = np.stack([-forward.reshape(-1), up.reshape(-1)], axis=1)
    (depth, rise), *_ = np.linalg.lstsq(design, offsets.reshape(-1), rcond=None)
    return round(float(depth), 4), round(float(rise), 4)


def gaze_features(measures: FaceMeasures) -> NDArray[np.float64]:
    """What the gaze confidence is a logistic function of: ln iris diameter, |head yaw|, 1."""
    size = np.log(np.maximum(measures.iris_diameter, 1e-3))
    return np.stack([size, np.abs(measures.pose[:, 1]), np.ones_like(size)], axis=1).astype(np.float64)


def binary_report(
    name: str, probability: NDArray[np.float32], labels: NDArray[np.bool_], fitted_on: int
) -> dict[str, Any]:
    confidence, correct = gender_confidence(probability, labels)
    return {
        f"{name}_fitted_on": fitted_on,
        f"{name}_held_out": len(labels),
        f"{name}_accuracy": float(correct.mean()),
        f"{name}_ece": expected_calibration_error(confidence, correct),
    }


def calibrate_face_mesh(
    celeba: MeshFaces, attributes: dict[str, dict[str, bool]], eyes: MeshFaces, portraits: MeshFaces
) -> tuple[FaceMeshCalibration, dict[str, Any]]:
    """Geometry first (`fit_mesh_geometry`), then one Platt scaling per probability and the
    gaze-confidence logistic, each on its set's calibration split; the report is on the rest."""
    geometry = fit_mesh_geometry(portraits)
    portrait = portraits.measures(geometry)
    near = gaze_errors(portrait) <= GAZE_TOLERANCE
    # (column, the measure it is fitted on, faces, labels, what the labels are)
    binaries: tuple[tuple[str, str, MeshFaces, NDArray[np.bool_], str], ...] = (
        ("smile", "lip_corner_retraction", celeba, celeba.labels(flags(attributes, "Smiling")), "CelebA Smiling"),
        (
            "mouth_open",
            "lip_gap",
            celeba,
            celeba.labels(flags(attributes, "Mouth_Slightly_Open")),
            "CelebA Mouth_Slightly_Open",
        ),
        ("eyes_open", "eye_opening", eyes, eyes.labels(eyes_open_labels()), "benchmarks/labels/eyes_open.csv"),
    )
    fitted = geometry
    for name, measure, faces, labels, _ in binaries:
        values, rows = getattr(faces.measures(geometry), measure), ~faces.held_out
        fitted = replace(fitted, **platt(name, values[rows], labels[rows]))
    size, yaw, bias = fit_logistic(gaze_features(portrait)[~portraits.held_out], near[~portraits.held_out])
    fitted = replace(fitted, gaze_size_slope=size, gaze_yaw_slope=yaw, gaze_bias=bias)
    report: dict[str, Any] = {}
    gaze_truth = f"portrait gaze within {GAZE_TOLERANCE:g} degrees of the camera"
    for name, _, faces, labels, truth in (*binaries, ("eye_direction_confidence", "", portraits, near, gaze_truth)):
        probability, rows = fitted.columns(faces.measures(fitted))[name], faces.held_out
        report[f"{name}_truth"] = truth
        report.update(binary_report(name, probability[rows], labels[rows], int((~rows).sum())))
    report["gaze_error_median_degrees_held_out"] = float(np.median(gaze_errors(portrait)[portraits.held_out]))
    return fitted, report


def fit_mesh_geometry(portraits: MeshFaces) -> FaceMeshCalibration:
    """The pitch offset that brings the portraits' median pitch to 0, then the gaze geometry."""
    rows = ~portraits.held_out
    pitch = portraits.measures(FaceMeshCalibration()).pose[rows, 2]
    pitch_offset = round(-float(np.median(pitch)), 3)
    depth, rise = fit_gaze_geometry(portraits, rows, pitch_offset)
    return FaceMeshCalibration(pitch_offset=pitch_offset, gaze_corner_depth=depth, gaze_iris_rise=rise)


def flags(attributes: dict[str, dict[str, bool]], name: str) -> dict[str, bool]:
    """One CelebA attribute by photo path."""
    return {path: row[name] for path, row in attributes.items()}


def platt(name: str, measure: NDArray[np.float32], labels: NDArray[np.bool_]) -> dict[str, float]:
    """`<name>_slope` and `<name>_bias` of P(label) = sigmoid(slope * measure + bias)."""
    slope, bias = fit_logistic(np.stack([measure, np.ones_like(measure)], axis=1), labels)
    return {f"{name}_slope": slope, f"{name}_bias": bias}


def write(version: str, parameters: dict[str, float], report: dict[str, Any]) -> None:
    rounded = {name: round(value, 4) if isinstance(value, float) else value for name, value in report.items()}
    document = {"model_version": version, "parameters": parameters, "calibration": rounded}
    target = REPO / calibration_path(version)
    target.write_text(json.dumps(document, indent=2) + "\n")
    console.print(f"wrote {target}")


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--write", action="store_true", help="store the parameters in the package")
    args = parser.parse_args()
    threads = Settings.load().model_threads
    detector = RetinaFaceDetector(threads=threads)
    estimator = AgeGenderEstimator(threads=threads, calibration=AgeGenderCalibration())
    classifier = FerEmotionClassifier(threads=threads, calibration=EmotionCalibration())
    mesher = FaceMeshRunner(threads=threads, calibration=FaceMeshCalibration())
    age_gender, age_report = calibrate_age_gender(utkface_outputs(args.data, detector, estimator))
    emotions, emotion_report = calibrate_emotions(fer_outputs(args.data, detector, classifier))
    attributes = celeba_attributes(args.data)
    mesh, mesh_report = calibrate_face_mesh(
        mesh_faces(args.data, list(attributes), detector, mesher),
        attributes,
        mesh_faces(args.data, list(eyes_open_labels()), detector, mesher),
        mesh_faces(args.data, portrait_paths(args.data), detector, mesher),
    )
    fitted = (
        (estimator.version, asdict(age_gender), age_report),
        (classifier.version, asdict(emotions), emotion_report),
        (mesher.version, asdict(mesh), mesh_report),
    )
    table = Table(
        "model", "parameter / measure", "value", title=f"Calibration ({CALIBRATION_SHARE}/10 fit, rest held out)"
    )
    for version, parameters, report in fitted:
        for name, value in {**parameters, **report}.items():
            table.add_row(version, name, f"{value:.4f}" if isinstance(value, float) else str(value))
    console.print(table)
    if args.write:
        for version, parameters, report in fitted:
            write(version, parameters, report)


if __name__ == "__main__":
    main()
