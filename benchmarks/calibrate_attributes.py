"""Fit the confidence calibration of the facial-attribute runners on labelled faces.

The faces of UTKFace and FER2013 whose path hashes into the calibration split
(`face_attributes.is_calibration`, 3 tenths of each set) are run through the uncalibrated runners
exactly as benchmarks/face_attributes.py runs them, and:
* gender: Platt scaling, P(male) = sigmoid(slope * logit + bias), by maximum likelihood, fitted
  apart for faces estimated under CHILD_AGE and the rest;
* emotions: one temperature on the network's log-probabilities, by maximum likelihood;
* age: the smallest multiple of the distribution's spread whose whole-year ranges around the mean
  hold the true age of AGE_COVERAGE_TARGET of the faces (split-conformal).
It prints, on the held-out faces, top-label ECE (ECE_BINS equal-width bins) before and after and
the age-range coverage and width, and with --write stores the parameters in opsis/vision/calibration/.

    .venv/bin/python benchmarks/calibrate_attributes.py [--data ../shared/data] [--write]
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from common import argument_parser
from face_attributes import (
    CALIBRATION_SHARE,
    FerFaces,
    UtkFaces,
    expected_calibration_error,
    fer_outputs,
    gender_confidence,
    is_calibration,
    utkface_outputs,
)
from numpy.typing import NDArray
from rich.console import Console
from rich.table import Table

from opsis.config import Settings
from opsis.vision.runners.age_gender import CHILD_AGE, AgeGenderCalibration, AgeGenderEstimator
from opsis.vision.runners.emotion import EmotionCalibration, FerEmotionClassifier
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
    """Logistic regression of the label on the network's logit: Newton's method with step halving,
    since saturated logits (the net is often 99.99% sure) make plain Newton steps overshoot."""
    logit = np.log(np.clip(gender[:, 1], 1e-7, 1.0)) - np.log(np.clip(gender[:, 0], 1e-7, 1.0))
    features = np.stack([logit, np.ones_like(logit)], axis=1).astype(np.float64)
    target = is_male.astype(np.float64)
    weights = np.array([1.0, 0.0])
    for _ in range(100):
        predicted = 0.5 + 0.5 * np.tanh(features @ weights / 2)
        gradient = features.T @ (predicted - target)
        hessian = (features * (predicted * (1 - predicted))[:, None]).T @ features + 1e-6 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        while platt_nll(features, target, weights - step) > platt_nll(features, target, weights):
            step /= 2
            if np.abs(step).max() < 1e-12:
                break
        weights -= step
        if np.abs(step).max() < 1e-9:
            break
    return round(float(weights[0]), 5), round(float(weights[1]), 5)


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


def write(version: str, parameters: dict[str, float], report: dict[str, Any]) -> None:
    rounded = {name: round(value, 4) if isinstance(value, float) else value for name, value in report.items()}
    document = {"model_version": version, "parameters": parameters, "calibration": rounded}
    target = REPO / "opsis" / "vision" / "calibration" / f"{version}.json"
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
    age_gender, age_report = calibrate_age_gender(utkface_outputs(args.data, detector, estimator))
    emotions, emotion_report = calibrate_emotions(fer_outputs(args.data, detector, classifier))
    table = Table(
        "model", "parameter / measure", "value", title=f"Calibration ({CALIBRATION_SHARE}/10 fit, rest held out)"
    )
    for version, parameters, report in (
        (estimator.version, asdict(age_gender), age_report),
        (classifier.version, asdict(emotions), emotion_report),
    ):
        for name, value in {**parameters, **report}.items():
            table.add_row(version, name, f"{value:.4f}" if isinstance(value, float) else str(value))
    console.print(table)
    if args.write:
        write(estimator.version, asdict(age_gender), age_report)
        write(classifier.version, asdict(emotions), emotion_report)


if __name__ == "__main__":
    main()
