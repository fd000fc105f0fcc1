"""Fit and measure HEAD_COVER and HAND_COVER heads for DetectProtectiveEquipment (ships HEAD_COVER).

Rows come from benchmarks/labels/head_hand_cover.csv: a photo (relative to the data root), a body
part (HEAD, LEFT_HAND, RIGHT_HAND), its box in pixels of the upright photo, and covered 0/1,
labelled by hand by looking at the crop (HEAD boxes are `head_box` of a WIDER FACE ground-truth
face or of RetinaFace's largest face; hand boxes are the PPE pipeline's own). HEAD_COVER counts
anything worn over the crown: hard hats, helmets, caps, hats, surgical caps, hoods; headbands,
visors and unreadable crops were left unlabelled. HAND_COVER counts gloves and mittens.

Features: `CoverFeatures` (open_nsfw's ResNet-50 last stage, mean-pooled) on the runner's own
crops. Per type, an L2-penalised logistic regression (Newton's method on standardised features),
its penalty chosen by grouped cross-validated log loss, then Platt-scaled on those out-of-fold
margins. Measured by NESTED grouped 5-fold cross-validation: folds are by photo (and by identity
for CelebA identity photos), so crops of one photo, or one person, never sit on both sides.
Prints the figures (accuracy and balanced accuracy at P >= 0.5, ROC AUC, ECE, majority-class
baseline, counts) and the latency, and with --write stores the heads of the types the runner
ships (`cover.EQUIPMENT`) in opsis/vision/calibration. HAND_COVER is measured only: the shared
data holds 7 gloved hands the pipeline finds, too few to fit or to check a head on.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from common import argument_parser, expected_calibration_error, grouped_folds, uptime, weighted_logistic_fit
from numpy.typing import NDArray
from rich.console import Console
from rich.table import Table

from opsis.vision.calibration import calibration_path
from opsis.vision.image import decode_image
from opsis.vision.runners.cover import EQUIPMENT, FEATURES, CoverClassifier, CoverFeatures, square_crops

console = Console(width=200)
REPO = Path(__file__).resolve().parent.parent
LABELS = Path(__file__).resolve().parent / "labels" / "head_hand_cover.csv"
IDENTITIES = "faces/identities/celeba/labels.csv"
PARTS = {"HEAD_COVER": ("HEAD",), "HAND_COVER": ("LEFT_HAND", "RIGHT_HAND")}
FOLDS = 5
PENALTIES = (1.0, 10.0, 100.0, 1000.0, 10000.0)
BACKBONE_THREADS = 1


@dataclass
class Rows:
    """One equipment type's labelled crops: features, 0/1 target, CV group and source set."""

    features: NDArray[np.float32]
    target: NDArray[np.float64]
    groups: list[str]
    sources: list[str]


def read_labels(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def identity_of(data: Path) -> dict[str, str]:
    table = data / IDENTITIES
    return {row["path"]: row["identity"] for row in read_labels(table)} if table.exists() else {}


def source_of(path: str) -> str:
    """The set a photo comes from, for the per-source rows of the report."""
    parts = path.split("/")
    return "/".join(parts[1:3]) if parts[0] == "faces" else "/".join(parts[:2])


def featurise(data: Path, labels: list[dict[str, str]], backbone: CoverFeatures) -> NDArray[np.float32]:
    """Backbone features of every labelled crop, photo by photo (each decoded once)."""
    table = np.zeros((len(labels), FEATURES), np.float32)
    by_photo: dict[str, list[int]] = {}
    for row, label in enumerate(labels):
        by_photo.setdefault(label["path"], []).append(row)
    for photo, rows in by_photo.items():
        pixels = decode_image((data / photo).read_bytes()).pixels
        boxes = np.array([[float(labels[r][key]) for key in ("left", "top", "right", "bottom")] for r in rows])
        table[rows] = backbone.features(square_crops(pixels, boxes.astype(np.float32)))
    return table


def rows_for(kind: str, labels: list[dict[str, str]], table: NDArray[np.float32], identities: dict[str, str]) -> Rows:
    chosen = [row for row, label in enumerate(labels) if label["part"] in PARTS[kind]]
    return Rows(
        features=table[chosen],
        target=np.array([float(labels[row]["covered"]) for row in chosen]),
        groups=[identities.get(labels[row]["path"], labels[row]["path"]) for row in chosen],
        sources=[source_of(labels[row]["path"]) for row in chosen],
    )


@dataclass
class Fitted:
    mean: NDArray[np.float64]
    scale: NDArray[np.float64]
    weights: NDArray[np.float64]
    bias: float
    platt_slope: float = 1.0
    platt_bias: float = 0.0

    def logit(self, features: NDArray[np.float32]) -> NDArray[np.float64]:
        margin: NDArray[np.float64] = ((features - self.mean) / self.scale) @ self.weights + self.bias
        return margin

    def probability(self, features: NDArray[np.float32]) -> NDArray[np.float64]:
        return sigmoid(self.platt_slope * self.logit(features) + self.platt_bias)

    def to_json(self) -> dict[str, Any]:
        def short(values: NDArray[np.float64]) -> list[float]:
            return [float(f"{v:.6g}") for v in values]

        return {
            "mean": short(self.mean),
            "scale": short(self.scale),
            "weights": short(self.weights),
            "bias": float(f"{self.bias:.7g}"),
            "platt_slope": float(f"{self.platt_slope:.7g}"),
            "platt_bias": float(f"{self.platt_bias:.7g}"),
        }


def sigmoid(values: NDArray[np.float64]) -> NDArray[np.float64]:
    result: NDArray[np.float64] = 0.5 + 0.5 * np.tanh(values / 2)
    return result


def fit_logistic(features: NDArray[np.float32], target: NDArray[np.float64], l2: float) -> Fitted:
    """L2-penalised logistic regression on standardised features, classes weighted to balance
    (Newton's method; the intercept is not shrunk)."""
    values = features.astype(np.float64)
    mean, spread = values.mean(axis=0), values.std(axis=0)
    scale = np.where(spread > 1e-6, spread, 1.0)
    standardised = (values - mean) / scale
    # With fewer rows than features the penalised optimum lies in the rows' span: fit in its
    # coordinates (exact for an L2 penalty, and far quicker), then map the weights back.
    basis = np.linalg.svd(standardised, full_matrices=False)[2] if len(values) < values.shape[1] else None
    reduced = standardised if basis is None else standardised @ basis.T
    positives = max(float(target.mean()), 1e-6)
    weights = np.where(target == 1, 0.5 / positives, 0.5 / max(1 - positives, 1e-6))
    coefficients, intercept = weighted_logistic_fit(reduced, target, weights, l2)
    weights_out = coefficients if basis is None else basis.T @ coefficients
    return Fitted(mean, scale, weights_out, intercept)


def fit_platt(logits: NDArray[np.float64], target: NDArray[np.float64]) -> tuple[float, float]:
    """Slope and bias of sigmoid(slope * logit + bias) by maximum likelihood (Newton's method)."""
    design = np.c_[logits, np.ones(len(logits))]
    coefficients = np.array([1.0, 0.0])
    for _ in range(50):
        probability = sigmoid(design @ coefficients)
        gradient = design.T @ (probability - target) + 1e-3 * (coefficients - [1.0, 0.0])
        hessian = (design * (probability * (1 - probability))[:, None]).T @ design + 1e-3 * np.eye(2)
        coefficients -= np.linalg.solve(hessian, gradient)
    return float(coefficients[0]), float(coefficients[1])


def out_of_fold(rows: Rows, l2: float, salt: str) -> NDArray[np.float64]:
    """Uncalibrated out-of-fold margins at one penalty."""
    folds = grouped_folds(rows.groups, rows.target, FOLDS, salt)
    logits = np.zeros(len(rows.target))
    for fold in range(FOLDS):
        test = folds == fold
        model = fit_logistic(rows.features[~test], rows.target[~test], l2)
        logits[test] = model.logit(rows.features[test])
    return logits


def log_loss(logits: NDArray[np.float64], target: NDArray[np.float64]) -> float:
    return float(np.mean(np.logaddexp(0, -logits) * target + np.logaddexp(0, logits) * (1 - target)))


def train(rows: Rows, salt: str = "inner") -> tuple[Fitted, float]:
    """The penalty with the best cross-validated (Platt-scaled) log loss, the model fitted on all
    rows with it, and Platt scaling from its out-of-fold margins."""
    best: tuple[float, float, tuple[float, float]] | None = None
    for l2 in PENALTIES:
        logits = out_of_fold(rows, l2, salt)
        slope, bias = fit_platt(logits, rows.target)
        loss = log_loss(slope * logits + bias, rows.target)
        if best is None or loss < best[0]:
            best = (loss, l2, (slope, bias))
    assert best is not None
    _, l2, (slope, bias) = best
    model = fit_logistic(rows.features, rows.target, l2)
    model.platt_slope, model.platt_bias = slope, bias
    return model, l2


def subset(rows: Rows, keep: NDArray[np.bool_]) -> Rows:
    return Rows(
        rows.features[keep],
        rows.target[keep],
        [g for g, k in zip(rows.groups, keep, strict=True) if k],
        [s for s, k in zip(rows.sources, keep, strict=True) if k],
    )


def nested(rows: Rows) -> NDArray[np.float64]:
    """Calibrated out-of-fold P: penalty and Platt scaling chosen inside each outer training part."""
    folds = grouped_folds(rows.groups, rows.target, FOLDS, "outer")
    probability = np.zeros(len(rows.target))
    for fold in range(FOLDS):
        test = folds == fold
        model, _ = train(subset(rows, ~test))
        probability[test] = model.probability(rows.features[test])
    return probability


def roc_auc(probability: NDArray[np.float64], target: NDArray[np.float64]) -> float:
    positives, negatives = probability[target == 1], probability[target == 0]
    if len(positives) == 0 or len(negatives) == 0:
        return float("nan")
    above = (positives[:, None] > negatives[None, :]).mean() + 0.5 * (positives[:, None] == negatives[None, :]).mean()
    return float(above)


def figures(probability: NDArray[np.float64], target: NDArray[np.float64], groups: list[str]) -> dict[str, Any]:
    says, truth = probability >= 0.5, target == 1
    recall = float(says[truth].mean()) if truth.any() else float("nan")
    specificity = float((~says[~truth]).mean()) if (~truth).any() else float("nan")
    confidence = np.maximum(probability, 1 - probability)
    return {
        "crops": len(target),
        "photos": len(set(groups)),
        "covered": int(truth.sum()),
        "accuracy": round(float((says == truth).mean()), 4),
        "baseline_accuracy": round(float(max(truth.mean(), 1 - truth.mean())), 4),
        "balanced_accuracy": round(float(np.nanmean([recall, specificity])), 4),
        "recall": round(recall, 4),
        "specificity": round(specificity, 4),
        "roc_auc": round(roc_auc(probability, target), 4),
        "ece": round(expected_calibration_error(confidence, says == truth), 4),
    }


COLUMNS = ("crops", "photos", "covered", "accuracy", "baseline_accuracy", "balanced_accuracy", "recall",
           "specificity", "roc_auc", "ece")  # fmt: skip


def report_table(report: dict[str, dict[str, dict[str, Any]]]) -> Table:
    table = Table(
        "type", "set", *COLUMNS, title="Nested grouped 5-fold CV, P >= 0.5 (HEAD on HEAD crops, HAND per hand)"
    )
    for kind, by_set in report.items():
        for name, row in by_set.items():
            table.add_row(kind, name, *(str(row[column]) for column in COLUMNS))
    return table


def speed(data: Path, labels: list[dict[str, str]], backbone: CoverFeatures) -> str:
    """Milliseconds to crop and featurise one HEAD crop, and three (a HEAD and two hands), p50 of
    20 runs after 3 unmeasured ones."""
    label = labels[0]
    pixels = decode_image((data / label["path"]).read_bytes()).pixels
    box = np.array([[float(label[key]) for key in ("left", "top", "right", "bottom")]], np.float32)
    cells = []
    for count in (1, 3):
        times = []
        for _ in range(23):
            began = time.perf_counter()
            backbone.features(square_crops(pixels, np.repeat(box, count, axis=0)))
            times.append(1000 * (time.perf_counter() - began))
        cells.append(f"{np.median(times[3:]):.1f} ms for {count} crop(s)")
    return f"latency per person ({BACKBONE_THREADS} ONNX Runtime thread): " + ", ".join(cells)


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--write", action="store_true", help="store the fitted heads in opsis/vision/calibration")
    args = parser.parse_args()
    data: Path = args.data
    began, load = time.perf_counter(), uptime()
    labels = [row for row in read_labels(LABELS) if (data / row["path"]).exists()]
    backbone = CoverFeatures(threads=BACKBONE_THREADS)
    table = featurise(data, labels, backbone)
    identities = identity_of(data)
    report: dict[str, dict[str, dict[str, Any]]] = {}
    models: dict[str, dict[str, Any]] = {}
    for kind in PARTS:
        rows = rows_for(kind, labels, table, identities)
        probability = nested(rows)
        report[kind] = {"all": figures(probability, rows.target, rows.groups)}
        for source in sorted(set(rows.sources)):
            keep = np.array([s == source for s in rows.sources])
            if keep.sum() >= 20:
                report[kind][source] = figures(probability[keep], rows.target[keep], subset(rows, keep).groups)
        model, l2 = train(rows)
        report[kind]["all"]["l2"] = l2
        if kind in EQUIPMENT:  # the runner's shipped types; the others are measured only
            models[kind] = model.to_json()
    console.print(report_table(report))
    console.print(speed(data, labels, backbone))
    console.print(f"uptime at start: {load}\nuptime at end: {uptime()}\nwall: {time.perf_counter() - began:.0f} s")
    if args.write:
        target = REPO / calibration_path(CoverClassifier.version)
        document = {"model_version": CoverClassifier.version, "models": models, "report": report}
        target.write_text(json.dumps(document, separators=(",", ":")) + "\n")
        console.print(f"wrote {target.relative_to(REPO)}")


if __name__ == "__main__":
    main()
