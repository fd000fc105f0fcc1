"""Facial attributes benchmark: age and gender on UTKFace, emotions on FER2013, gender on WIDER
faces by skin tone, the face mesh's expressions, eyes and gaze, and the speed of each runner.

Measures, and prints as tables:
1. UTKFace (faces/attributes/utkface, 200x200 aligned chips): each chip's largest RetinaFace face
   (`find_faces`, which retries small images padded with their border); where none is found the
   whole chip is the face box. Gender accuracy (calibrated P(male) >= 0.5), ECE of the gender
   confidence, age MAE of the estimate and of the range midpoint, the share of true ages inside
   the returned range and its mean width; overall and per race x gender x age band, with sample
   counts and the gap between the best and worst group of at least MIN_GROUP faces.
2. FER2013 (faces/attributes/fer2013, 48x48 grayscale crops): each crop upscaled x4 to 192 px, then
   as for UTKFace (detector box, else the whole crop). Top-1 accuracy over Rekognition's types,
   per-class recall, ECE, on this class-balanced sample and re-weighted to FER2013's own class mix
   (the mix the network's published ~66% refers to), and the same for the whole crop fed directly.
3. WIDER demographics (faces/attributes/wider_demographics): each annotated face's box is the
   RetinaFace detection overlapping it most (IoU >= 0.5), else the annotated box itself; gender
   accuracy against perceived_gender ("Not Sure" left out) per perceived skin tone and face height.
4. Face mesh, on the largest face of each photo that the mesh confirms (presence >= 0.5): Smile
   and MouthOpen against CelebA's `Smiling` and `Mouth_Slightly_Open` (faces/attributes/celeba),
   and the age/gender runner's gender against `Male`; EyesOpen against benchmarks/labels/
   eyes_open.csv (labelled by eye, see `eyes_open_labels`); on the identity sets' portraits, which
   look into the camera, how far the gaze points from it and how the mesh's head pose agrees with
   the five-point estimate (opsis.vision.pose). Accuracy, ECE and the majority-class share, with n.
   Accuracy per CelebA group (Male x Young), with the gap between the best and worst group.
5. Speed, in-process: p50/p95 ms per face of each runner on a one-face 853x480 photo, and per face
   in one batch of the 100 largest faces of the WIDER photo with most faces; and what
   Attributes=ALL adds per face to a whole DetectFaces call (the operation handler, in-process).
6. Eyeglasses, sunglasses, beard, mustache and face occlusion: benchmarks/train_appearance.py's
   evaluation of the shipped models (in-sample on the shared split, which trained them).
7. `uptime` at start and end.

Calibration (benchmarks/calibrate_attributes.py) is fitted on the faces whose path hashes into the
first CALIBRATION_SHARE tenths of each set; every UTKFace, FER2013, CelebA, eyes-open and portrait
figure here is on the other faces only, so none is in-sample (except where marked: the appearance
models). WIDER plays no part in calibration.

    .venv/bin/python benchmarks/face_attributes.py [--data ../shared/data] [--quick]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import onnxruntime
from common import argument_parser, expected_calibration_error, percentiles, timed, uptime
from numpy.typing import NDArray
from PIL import Image
from rich.console import Console
from rich.table import Table
from train_appearance import evaluate as evaluate_appearance

from opsis.config import Settings
from opsis.ops.context import Context
from opsis.ops.faces import detect_faces
from opsis.vision.faces import MAX_FACES, find_faces, largest
from opsis.vision.pose import estimate_pose
from opsis.vision.runners.age_gender import AgeGenderCalibration, AgeGenderEstimator, age_moments
from opsis.vision.runners.appearance import FaceAppearanceClassifier
from opsis.vision.runners.dlib_resnet import fit_shapes, load_shape_predictor
from opsis.vision.runners.emotion import (
    FER_CLASSES,
    FER_TO_REKOGNITION,
    EmotionCalibration,
    FerEmotionClassifier,
    emotion_types,
)
from opsis.vision.runners.face_mesh import FaceMeasures, FaceMeshCalibration, FaceMeshRunner, MeshOutputs, measure
from opsis.vision.runners.retinaface import RetinaFaceDetector
from opsis.vision.types import DecodedImage, Detections, box_iou

UTKFACE = "faces/attributes/utkface/labels.csv"
FER2013 = "faces/attributes/fer2013/labels.csv"
WIDER_DEMOGRAPHICS = "faces/attributes/wider_demographics/demographics.csv"
CROWD = "faces/crowd/wider/gt.json"
ONE_FACE = "faces/identities/face_recognition/images/obama/obama-480p.jpg"
CELEBA = "faces/attributes/celeba/attributes.csv"
CELEBA_GROUP_LABELS = ("Smiling", "Mouth_Slightly_Open", "Male", "Young", "Eyeglasses", "No_Beard")
EYES_OPEN_LABELS = Path(__file__).resolve().parent / "labels" / "eyes_open.csv"
PORTRAIT_SETS = ("celeba", "deepface", "face_recognition")
# Below this face-presence probability the mesh says the detector's box holds no face.
MIN_PRESENCE = 0.5
# A portrait's gaze counts as right when it points within this many degrees of the camera.
GAZE_TOLERANCE = 10.0
CALIBRATION_SHARE = 3  # tenths of each labelled set used for calibration, chosen by path hash
FER_UPSCALE = 4
AGE_BANDS = (("0-12", 0, 13), ("13-19", 13, 20), ("20-39", 20, 40), ("40-59", 40, 60), ("60+", 60, 1000))
HEIGHT_BANDS = (("<40 px", 0, 40), ("40-79 px", 40, 80), (">=80 px", 80, 100_000))
MIN_GROUP = 10
# FER2013's class mix over all 35,887 images (Goodfellow et al. 2013, "Challenges in Representation
# Learning"), in FER_CLASSES order: per-class recall weighted by it is accuracy on that mix.
FER2013_CLASS_COUNTS = (4953, 547, 5121, 8989, 6077, 4002, 6198)
console = Console(width=160)


@dataclass(frozen=True)
class UtkFaces:
    """Raw network outputs for every UTKFace chip, with its labels."""

    paths: list[str]
    ages: NDArray[np.int64]
    is_male: NDArray[np.bool_]
    races: list[str]
    detected: NDArray[np.bool_]
    age_probabilities: NDArray[np.float32]  # (n, 81)
    age_estimates: NDArray[np.float32]  # the runner's `age`: the mean of the distribution
    age_spreads: NDArray[np.float32]  # its standard deviation
    gender_probabilities: NDArray[np.float32]  # (n, 2) female, male


@dataclass(frozen=True)
class FerFaces:
    """Raw network outputs for every FER2013 crop: through the detector box and on the whole crop."""

    paths: list[str]
    labels: NDArray[np.int64]  # index into FER_CLASSES
    detected: NDArray[np.bool_]
    probabilities: NDArray[np.float32]  # (n, 7)
    whole_crop: NDArray[np.float32]  # (n, 7)


def is_calibration(path: str) -> bool:
    """Whether a labelled face belongs to the calibration split (fixed by its path)."""
    return int(hashlib.sha256(path.encode()).hexdigest(), 16) % 10 < CALIBRATION_SHARE


def read_rows(data: Path, relative: str, limit: int | None = None) -> list[dict[str, str]]:
    with (data / relative).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return rows[:: max(1, len(rows) // limit)] if limit else rows


def whole_image(pixels: NDArray[np.uint8]) -> Detections:
    height, width = pixels.shape[:2]
    return Detections(np.array([[0, 0, width, height]], np.float32), np.ones(1, np.float32))


def locate_face(pixels: NDArray[np.uint8], detector: RetinaFaceDetector) -> tuple[Detections, bool]:
    """The largest detected face of a face crop, or the whole crop when the detector finds none."""
    faces = largest(find_faces(DecodedImage(pixels, "JPEG"), detector), 1)
    return (faces, True) if len(faces) else (whole_image(pixels), False)


def utkface_outputs(
    data: Path, detector: RetinaFaceDetector, estimator: AgeGenderEstimator, limit: int | None = None
) -> UtkFaces:
    rows = read_rows(data, UTKFACE, limit)
    detected, ages, genders = [], [], []
    for row in rows:
        pixels = np.asarray(Image.open(data / row["path"]).convert("RGB"))
        face, found = locate_face(pixels, detector)
        age, gender = estimator.probabilities(pixels, face)
        detected.append(found)
        ages.append(age[0])
        genders.append(gender[0])
    estimates, spreads = age_moments(np.stack(ages), estimator.age_values)
    return UtkFaces(
        paths=[row["path"] for row in rows],
        ages=np.array([int(row["age"]) for row in rows]),
        is_male=np.array([row["gender"] == "Male" for row in rows]),
        races=[row["race"] for row in rows],
        detected=np.array(detected),
        age_probabilities=np.stack(ages),
        age_estimates=estimates,
        age_spreads=spreads,
        gender_probabilities=np.stack(genders),
    )


def fer_pixels(path: Path) -> NDArray[np.uint8]:
    """A FER2013 crop as RGB, upscaled so the detector's smallest anchors fit the face."""
    gray = np.asarray(Image.open(path).convert("L"))
    size = (gray.shape[1] * FER_UPSCALE, gray.shape[0] * FER_UPSCALE)
    upscaled = cv2.resize(cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB), size, interpolation=cv2.INTER_CUBIC)
    return np.asarray(upscaled, np.uint8)


def fer_outputs(
    data: Path, detector: RetinaFaceDetector, classifier: FerEmotionClassifier, limit: int | None = None
) -> FerFaces:
    rows = read_rows(data, FER2013, limit)
    detected, through_box, whole = [], [], []
    for row in rows:
        pixels = fer_pixels(data / row["path"])
        face, found = locate_face(pixels, detector)
        detected.append(found)
        through_box.append(classifier.probabilities(pixels, face)[0])
        whole.append(classifier.probabilities(pixels, whole_image(pixels))[0])
    return FerFaces(
        paths=[row["path"] for row in rows],
        labels=np.array([FER_CLASSES.index(row["emotion"]) for row in rows]),
        detected=np.array(detected),
        probabilities=np.stack(through_box),
        whole_crop=np.stack(whole),
    )


def gender_confidence(
    male: NDArray[np.float32], is_male: NDArray[np.bool_]
) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """Confidence of the reported gender and whether it is right."""
    says_male = male >= 0.5
    return np.where(says_male, male, 1.0 - male), says_male == is_male


def age_band(age: int) -> str:
    return next(name for name, low, high in AGE_BANDS if low <= age < high)


@dataclass(frozen=True)
class UtkMetrics:
    """What the UTKFace tables show for one set of faces."""

    faces: int
    gender_accuracy: float
    gender_ece: float
    age_mae: float
    midpoint_mae: float
    in_range: float
    range_width: float

    def cells(self) -> list[str]:
        return [
            str(self.faces),
            f"{self.gender_accuracy:.1%}",
            f"{self.gender_ece:.3f}",
            f"{self.age_mae:.1f}",
            f"{self.midpoint_mae:.1f}",
            f"{self.in_range:.1%}",
            f"{self.range_width:.1f}",
        ]


UTK_COLUMNS = ("faces", "gender acc", "gender ECE", "age MAE", "MAE midpoint", "age in range", "range width")


def utkface_metrics(faces: UtkFaces, calibration: AgeGenderCalibration, rows: NDArray[np.bool_]) -> UtkMetrics:
    male = calibration.male_probability(faces.gender_probabilities[rows], faces.age_estimates[rows])
    confidence, correct = gender_confidence(male, faces.is_male[rows])
    ranges = calibration.age_range(faces.age_estimates[rows], faces.age_spreads[rows])
    ages = faces.ages[rows]
    return UtkMetrics(
        faces=int(rows.sum()),
        gender_accuracy=float(correct.mean()),
        gender_ece=expected_calibration_error(confidence, correct),
        age_mae=float(np.abs(faces.age_estimates[rows] - ages).mean()),
        midpoint_mae=float(np.abs(ranges.mean(axis=1) - ages).mean()),
        in_range=float(((ages >= ranges[:, 0]) & (ages <= ranges[:, 1])).mean()),
        range_width=float((ranges[:, 1] - ranges[:, 0]).mean()),
    )


def utkface_tables(faces: UtkFaces, calibration: AgeGenderCalibration) -> list[Table]:
    held_out = np.array([not is_calibration(path) for path in faces.paths])
    groups = utkface_groups(faces, calibration, held_out)
    return [utkface_headline(faces, calibration, held_out), group_table(groups), gap_table(groups)]


def utkface_headline(faces: UtkFaces, calibration: AgeGenderCalibration, held_out: NDArray[np.bool_]) -> Table:
    table = Table("faces", *UTK_COLUMNS, title="UTKFace age and gender (held-out split)")
    ages = faces.ages
    for name, rows, calibrated in (
        ("all, shipped calibration", held_out, calibration),
        ("all, uncalibrated (range: mean +- 1 sd)", held_out, AgeGenderCalibration()),
        ("true age 0-12", held_out & (ages < 13), calibration),
        ("true age 13-19", held_out & (ages >= 13) & (ages < 20), calibration),
        ("true age 20+", held_out & (ages >= 20), calibration),
        ("true age 20-59", held_out & (ages >= 20) & (ages < 60), calibration),
        ("true age 60+", held_out & (ages >= 60), calibration),
        ("whole chip (no face detected)", held_out & ~faces.detected, calibration),
    ):
        if rows.any():
            table.add_row(name, *utkface_metrics(faces, calibrated, rows).cells())
    return table


def utkface_groups(
    faces: UtkFaces, calibration: AgeGenderCalibration, held_out: NDArray[np.bool_]
) -> dict[tuple[str, str, str], UtkMetrics]:
    """Metrics per (race, gender, age band) with at least one held-out face."""
    bands = np.array([age_band(int(age)) for age in faces.ages])
    races = np.array(faces.races)
    groups = {}
    for race in sorted(set(faces.races)):
        for is_male, gender in ((False, "Female"), (True, "Male")):
            for band, _, _ in AGE_BANDS:
                rows = held_out & (races == race) & (faces.is_male == is_male) & (bands == band)
                if rows.any():
                    groups[(race, gender, band)] = utkface_metrics(faces, calibration, rows)
    return groups


def group_table(groups: dict[tuple[str, str, str], UtkMetrics]) -> Table:
    table = Table("race", "gender", "age", *UTK_COLUMNS, title="UTKFace by race x gender x age band (held-out)")
    for key, metrics in groups.items():
        table.add_row(*key, *metrics.cells())
    return table


def gap_table(groups: dict[tuple[str, str, str], UtkMetrics]) -> Table:
    """The best and the worst group of at least MIN_GROUP faces, for gender accuracy and age MAE."""
    sized = {" ".join(key): metrics for key, metrics in groups.items() if metrics.faces >= MIN_GROUP}
    table = Table(
        "metric", "best group", "worst group", "gap", title=f"UTKFace best-worst gap (groups of >= {MIN_GROUP} faces)"
    )
    by_accuracy = sorted(sized, key=lambda name: sized[name].gender_accuracy)
    worst, best = by_accuracy[0], by_accuracy[-1]
    table.add_row(
        "gender accuracy",
        f"{best} ({sized[best].faces}): {sized[best].gender_accuracy:.1%}",
        f"{worst} ({sized[worst].faces}): {sized[worst].gender_accuracy:.1%}",
        f"{(sized[best].gender_accuracy - sized[worst].gender_accuracy) * 100:.1f} points",
    )
    by_mae = sorted(sized, key=lambda name: sized[name].age_mae)
    best, worst = by_mae[0], by_mae[-1]
    table.add_row(
        "age MAE",
        f"{best} ({sized[best].faces}): {sized[best].age_mae:.1f}",
        f"{worst} ({sized[worst].faces}): {sized[worst].age_mae:.1f}",
        f"{sized[worst].age_mae - sized[best].age_mae:.1f} years",
    )
    return table


def fer_accuracy(
    probabilities: NDArray[np.float32], labels: NDArray[np.int64]
) -> tuple[float, float, NDArray[np.float64]]:
    """Top-1 on the sample, top-1 at FER2013's class mix, per-class recall (FER_CLASSES order)."""
    correct = probabilities.argmax(axis=1) == labels
    recall = np.array(
        [correct[labels == index].mean() if (labels == index).any() else np.nan for index in range(len(FER_CLASSES))]
    )
    weights = np.array(FER2013_CLASS_COUNTS, np.float64)
    return float(correct.mean()), float(np.nansum(recall * weights) / weights[~np.isnan(recall)].sum()), recall


def fer_tables(faces: FerFaces, calibration: EmotionCalibration) -> list[Table]:
    held_out = np.array([not is_calibration(path) for path in faces.paths])
    labels = faces.labels[held_out]
    headline = Table(
        "input",
        "faces",
        "top-1 (this sample)",
        "top-1 at FER2013 mix",
        "ECE raw",
        "ECE calibrated",
        title="FER2013 emotions (held-out split)",
    )
    recalls: dict[str, NDArray[np.float64]] = {}
    for name, probabilities in (("detector box (the runner)", faces.probabilities), ("whole crop", faces.whole_crop)):
        emotions = emotion_types(calibration.apply(probabilities[held_out]))
        raw = emotion_types(probabilities[held_out])
        top1, mixed, recalls[name] = fer_accuracy(probabilities[held_out], labels)
        correct = probabilities[held_out].argmax(axis=1) == labels
        headline.add_row(
            name,
            str(len(labels)),
            f"{top1:.1%}",
            f"{mixed:.1%}",
            f"{expected_calibration_error(raw.max(axis=1), correct):.3f}",
            f"{expected_calibration_error(emotions.max(axis=1), correct):.3f}",
        )
    detected = held_out & faces.detected
    headline.add_row(
        "detector box, face detected",
        str(int(detected.sum())),
        f"{fer_accuracy(faces.probabilities[detected], faces.labels[detected])[0]:.1%}",
        "",
        "",
        "",
    )
    return [headline, per_class_table(recalls, labels)]


def per_class_table(recalls: dict[str, NDArray[np.float64]], labels: NDArray[np.int64]) -> Table:
    table = Table(
        "FER class",
        "Rekognition type",
        "faces",
        *(f"recall, {name}" for name in recalls),
        title="FER2013 per-class recall (held-out)",
    )
    for index, label in enumerate(FER_CLASSES):
        table.add_row(
            label,
            FER_TO_REKOGNITION[label],
            str(int((labels == index).sum())),
            *(f"{recall[index]:.1%}" for recall in recalls.values()),
        )
    table.add_row("-", "CONFUSED", "0", *("never reported (probability 0)" for _ in recalls))
    return table


@dataclass(frozen=True)
class WiderFaces:
    """Per annotated WIDER face (perceived gender Male or Female): its labels and our outcome."""

    skins: NDArray[np.str_]
    heights: NDArray[np.int64]
    is_correct: NDArray[np.bool_]
    from_detector: NDArray[np.bool_]


def wider_outcomes(data: Path, detector: RetinaFaceDetector, estimator: AgeGenderEstimator) -> WiderFaces:
    """Gender of every annotated face (both perceived genders), photo by photo, detector run once each."""
    by_photo: dict[str, list[dict[str, str]]] = {}
    for row in read_rows(data, WIDER_DEMOGRAPHICS):
        if row["perceived_gender"] in ("Male", "Female"):
            by_photo.setdefault(row["path"], []).append(row)
    correct: list[bool] = []
    matched: list[bool] = []
    for path, annotated in by_photo.items():
        pixels = np.asarray(Image.open(data / path).convert("RGB"))
        faces, hits = annotated_faces(annotated, find_faces(DecodedImage(pixels, "JPEG"), detector))
        male = estimator.annotate(pixels, faces)["male_probability"]
        truth = np.array([row["perceived_gender"] == "Male" for row in annotated])
        correct.extend(gender_confidence(male, truth)[1].tolist())
        matched.extend(hits)
    rows = [row for annotated in by_photo.values() for row in annotated]
    return WiderFaces(
        skins=np.array([row["perceived_skin"] for row in rows]),
        heights=np.array([int(row["h"]) for row in rows]),
        is_correct=np.array(correct),
        from_detector=np.array(matched),
    )


def wider_gender_table(faces: WiderFaces) -> Table:
    """Gender accuracy against perceived_gender, by perceived skin tone and face height."""
    table = Table(
        "perceived skin",
        *(f"{name} n / acc" for name, _, _ in HEIGHT_BANDS),
        "all n",
        "all acc",
        "box from detector",
        title="WIDER demographics: gender accuracy vs perceived_gender (Not Sure left out)",
    )
    for skin in ("I", "II", "III", "IV", "V", "VI", "Not Sure", "all"):
        selected = np.ones(len(faces.skins), bool) if skin == "all" else faces.skins == skin
        cells = []
        for _, low, high in HEIGHT_BANDS:
            band = selected & (faces.heights >= low) & (faces.heights < high)
            cells.append(f"{band.sum()} / {faces.is_correct[band].mean():.0%}" if band.any() else "0 / -")
        table.add_row(
            skin,
            *cells,
            str(int(selected.sum())),
            f"{faces.is_correct[selected].mean():.1%}",
            f"{faces.from_detector[selected].mean():.0%}",
        )
    return table


def annotated_faces(rows: list[dict[str, str]], found: Detections) -> tuple[Detections, list[bool]]:
    """The detector's box for each annotated face it found (IoU >= 0.5), else the annotated box."""
    boxes, hits = [], []
    for row in rows:
        x, y, w, h = (float(row[key]) for key in ("x", "y", "w", "h"))
        box = np.array([x, y, x + w, y + h], np.float32)
        overlap = box_iou(box, found.xyxy) if len(found) else np.zeros(0, np.float32)
        hit = bool(len(overlap)) and float(overlap.max()) >= 0.5
        boxes.append(found.xyxy[int(overlap.argmax())] if hit else box)
        hits.append(hit)
    return Detections(np.stack(boxes), np.ones(len(boxes), np.float32)), hits


@dataclass(frozen=True)
class MeshFaces:
    """The face-mesh runner's raw outputs for the largest face of each photo the mesh confirms."""

    paths: list[str]
    faces: Detections  # the detector's face, one row per path
    outputs: MeshOutputs
    photos: int  # photos looked at, confirmed or not

    @property
    def held_out(self) -> NDArray[np.bool_]:
        return np.array([not is_calibration(path) for path in self.paths], bool)

    def measures(self, calibration: FaceMeshCalibration) -> FaceMeasures:
        return measure(self.outputs, calibration)

    def labels(self, labels: dict[str, bool]) -> NDArray[np.bool_]:
        return np.array([labels[path] for path in self.paths], bool)


def photo_pixels(data: Path, path: str) -> NDArray[np.uint8]:
    """A photo as RGB, FER2013 crops upscaled as for emotions."""
    if path.startswith(str(Path(FER2013).parent)):
        return fer_pixels(data / path)
    return np.asarray(Image.open(data / path).convert("RGB"))


def mesh_faces(data: Path, paths: list[str], detector: RetinaFaceDetector, mesher: FaceMeshRunner) -> MeshFaces:
    kept: list[str] = []
    faces: list[Detections] = []
    outputs: list[MeshOutputs] = []
    for path in paths:
        pixels = photo_pixels(data, path)
        face = largest(find_faces(DecodedImage(pixels, "JPEG"), detector), 1)
        output = mesher.outputs(pixels, face)
        if len(face) and output.presence[0] >= MIN_PRESENCE:
            kept.append(path)
            faces.append(face)
            outputs.append(output)
    columns = (np.concatenate([getattr(output, field.name) for output in outputs]) for field in fields(MeshOutputs))
    return MeshFaces(kept, Detections.merge(faces), MeshOutputs(*columns), len(paths))


def celeba_attributes(data: Path) -> dict[str, dict[str, bool]]:
    """CelebA's 40 binary attributes by photo path."""
    return {row.pop("path"): {name: flag == "1" for name, flag in row.items()} for row in read_rows(data, CELEBA)}


def eyes_open_labels() -> dict[str, bool]:
    """Eyes open (a pupil shows) or closed (lids shut over both), labelled by eye: no shared set
    says. Candidates were ranked by the uncalibrated eye opening over UTKFace, CelebA, the
    portraits and FER2013, and labelled where the photo allowed: every face among the 84 least
    open of the first three and the 56 least open FER2013 crops, and 28 random ones of the rest of
    each (all open); too blurred or hidden to tell, left out. Choosing faces by the measure does
    not bias a fit of P(open | measure)."""
    with EYES_OPEN_LABELS.open(newline="") as handle:
        return {row["path"]: row["eyes_open"] == "1" for row in csv.DictReader(handle)}


def portrait_paths(data: Path) -> list[str]:
    """The identity sets' photos: people looking into the camera, nearly all."""
    return [row["path"] for name in PORTRAIT_SETS for row in read_rows(data, f"faces/identities/{name}/labels.csv")]


def gaze_errors(measures: FaceMeasures) -> NDArray[np.float64]:
    """Degrees between each gaze and the camera axis: the error if the face looks into the camera."""
    errors: NDArray[np.float64] = np.degrees(np.arccos(np.clip(-measures.gaze[:, 2], -1.0, 1.0)))
    return errors


def celeba_male(data: Path, faces: MeshFaces, estimator: AgeGenderEstimator) -> NDArray[np.float32]:
    """The age/gender runner's P(male) for each CelebA face the mesh confirmed."""
    male = [
        estimator.annotate(photo_pixels(data, path), faces.faces[[row]])["male_probability"][0]
        for row, path in enumerate(faces.paths)
    ]
    return np.array(male, np.float32)


MESH_COLUMNS = ("attribute", "truth", "faces", "majority share", "accuracy", "ECE")


def binary_row(name: str, truth: str, probability: NDArray[np.float32], labels: NDArray[np.bool_]) -> list[str]:
    """A MESH_COLUMNS row for a probability that `labels` is true (decided at 0.5)."""
    confidence, correct = gender_confidence(probability, labels)
    majority = max(labels.mean(), 1 - labels.mean())
    return [
        name,
        truth,
        str(len(labels)),
        f"{majority:.1%}",
        f"{correct.mean():.1%}",
        f"{expected_calibration_error(confidence, correct):.3f}",
    ]


def mesh_attribute_table(
    celeba: MeshFaces,
    male: NDArray[np.float32],
    eyes: MeshFaces,
    portraits: MeshFaces,
    *,
    attributes: dict[str, dict[str, bool]],
    calibration: FaceMeshCalibration,
) -> Table:
    table = Table(*MESH_COLUMNS, title="Face mesh attributes (held-out split)")
    rows = celeba.held_out
    columns = calibration.columns(celeba.measures(calibration))
    for name, column, label in (("Smile", "smile", "Smiling"), ("MouthOpen", "mouth_open", "Mouth_Slightly_Open")):
        truth = celeba.labels({path: flags[label] for path, flags in attributes.items()})
        table.add_row(*binary_row(name, f"CelebA {label}", columns[column][rows], truth[rows]))
    is_male = celeba.labels({path: flags["Male"] for path, flags in attributes.items()})
    table.add_row(*binary_row("Gender (age/gender runner)", "CelebA Male", male[rows], is_male[rows]))
    eyes_open = calibration.columns(eyes.measures(calibration))["eyes_open"]
    truth = eyes.labels(eyes_open_labels())
    table.add_row(*binary_row("EyesOpen", "labelled by eye", eyes_open[eyes.held_out], truth[eyes.held_out]))
    measures = portraits.measures(calibration)
    confidence = calibration.columns(measures)["eye_direction_confidence"][portraits.held_out]
    near = gaze_errors(measures)[portraits.held_out] <= GAZE_TOLERANCE
    table.add_row(
        *binary_row("EyeDirection confidence", f"portrait gaze within {GAZE_TOLERANCE:g} deg", confidence, near)
    )
    return table


def gaze_table(portraits: MeshFaces, calibration: FaceMeshCalibration) -> Table:
    """Gaze against the camera axis, and the mesh's head pose against the five-point estimate."""
    rows = portraits.held_out
    measures = portraits.measures(calibration)
    errors = gaze_errors(measures)[rows]
    table = Table("measure", "held-out portraits", "value", title="Face mesh gaze and pose on portraits (held-out)")
    table.add_row("gaze to camera axis, p50 / p95 degrees", str(int(rows.sum())), percentiles(errors.tolist()))
    table.add_row(
        f"gaze within {GAZE_TOLERANCE:g} degrees of the camera",
        str(int(rows.sum())),
        f"{(errors <= GAZE_TOLERANCE).mean():.1%}",
    )
    eye, head = measures.eye_direction[rows], measures.pose[rows]
    for index, angle in ((0, "yaw"), (1, "pitch")):
        slope = np.polyfit(head[:, index + 1], eye[:, index], 1)[0]
        table.add_row(
            f"eye {angle} against head {angle}: slope (-1 if looking at the camera)",
            str(int(rows.sum())),
            f"{slope:.2f}",
        )
    five_point = estimate_pose(portraits.faces.landmarks[rows]) if portraits.faces.landmarks is not None else head
    for index, angle in enumerate(("roll", "yaw", "pitch")):
        mesh_angles, point_angles = head[:, index], five_point[:, index]
        correlation = np.corrcoef(mesh_angles, point_angles)[0, 1]
        slope = np.polyfit(point_angles, mesh_angles, 1)[0]
        agree = np.mean(np.sign(mesh_angles) == np.sign(point_angles))
        table.add_row(
            f"mesh {angle} vs five-point {angle}: correlation / slope / same sign",
            str(int(rows.sum())),
            f"{correlation:.3f} / {slope:.2f} / {agree:.0%}",
        )
    return table


def speed_table(data: Path, models: Runners, *, count: int) -> Table:
    """p50/p95 ms per face: one face, and per face in one batch of the most crowded WIDER photo."""
    detector = models.detector
    one = np.asarray(Image.open(data / ONE_FACE).convert("RGB"))
    crowd = np.asarray(Image.open(data / most_crowded(data)).convert("RGB"))
    shapes = load_shape_predictor()
    batches = {
        "one": (one, locate_face(one, detector)[0]),
        "crowd": (crowd, largest(find_faces(DecodedImage(crowd, "JPEG"), detector), MAX_FACES)),
    }
    attribute_runners = (models.estimator, models.classifier, models.mesher, models.appearance)
    steps: dict[str, Callable[[NDArray[np.uint8], Detections], object]] = {
        "dlib 5-point landmarks (inside age/gender, appearance)": lambda pixels, faces: fit_shapes(
            shapes, np.ascontiguousarray(pixels), faces
        ),
        "age + gender (AgeGenderEstimator)": models.estimator.annotate,
        "emotions, face and mirror (FerEmotionClassifier)": models.classifier.annotate,
        "face mesh + iris, every mesh column (FaceMeshRunner)": models.mesher.annotate,
        "eyeglasses .. occlusion (FaceAppearanceClassifier)": models.appearance.annotate,
        "all attribute runners (Attributes=ALL)": lambda pixels, faces: [
            runner.annotate(pixels, faces) for runner in attribute_runners
        ],
    }
    table = Table(
        "step",
        "one face p50 / p95 ms",
        f"per face, batch of {len(batches['crowd'][1])} p50 / p95 ms",
        title="Attribute runners, in-process, after warm-up",
    )
    for name, step in steps.items():
        cells = []
        for key, (pixels, faces) in batches.items():
            times = timed(partial(step, pixels, faces), count if key == "one" else max(3, count // 10))
            cells.append(percentiles([ms / len(faces) for ms in times]))
        table.add_row(name, *cells)
    return table


def parse() -> argparse.Namespace:
    parser = argument_parser(__doc__)
    parser.add_argument("--quick", action="store_true", help="about 300 faces per set and fewer timing runs")
    parser.add_argument("--model-threads", type=int, help="ONNX Runtime intra-op threads")
    return parser.parse_args()


@dataclass(frozen=True)
class Runners:
    detector: RetinaFaceDetector
    estimator: AgeGenderEstimator
    classifier: FerEmotionClassifier
    mesher: FaceMeshRunner
    appearance: FaceAppearanceClassifier

    @classmethod
    def load(cls, threads: int) -> Runners:
        return cls(
            RetinaFaceDetector(threads=threads),
            AgeGenderEstimator(threads=threads),
            FerEmotionClassifier(threads=threads),
            FaceMeshRunner(threads=threads),
            FaceAppearanceClassifier(threads=threads),
        )

    @property
    def versions(self) -> dict[str, str]:
        return {
            "age/gender model": self.estimator.version,
            "emotion model": self.classifier.version,
            "face mesh model": self.mesher.version,
            "appearance model": self.appearance.version,
        }


def main() -> None:
    args = parse()
    data = args.data.resolve()
    if not all((data / path).is_file() for path in (UTKFACE, FER2013, WIDER_DEMOGRAPHICS, CROWD, ONE_FACE, CELEBA)):
        console.print(f"Skipped: shared data not found at {data} (pass --data or set OPSIS_SHARED_DATA).")
        return
    settings = Settings.load(model_threads=args.model_threads)
    began, load_before = time.perf_counter(), uptime()
    console.print(f"uptime at start: {load_before}")
    models = Runners.load(settings.model_threads)
    detector, estimator = models.detector, models.estimator
    limit = 300 if args.quick else None
    utk = utkface_outputs(data, detector, estimator, limit)
    fer = fer_outputs(data, detector, models.classifier, limit)
    tables = [
        *utkface_tables(utk, estimator.calibration),
        *fer_tables(fer, models.classifier.calibration),
        wider_gender_table(wider_outcomes(data, detector, estimator)),
        *mesh_tables(data, models),
        speed_table(data, models, count=20 if args.quick else 100),
        request_cost_table(data, settings, count=10 if args.quick else 40),
        detection_table(utk, fer),
    ]
    env = settings_table(settings.model_threads, models.versions, load_before, began)
    for table in [env, *tables]:
        console.print(table)
    # Eyeglasses, sunglasses, beard, mustache, occlusion: the appearance script's own evaluation.
    evaluate_appearance(data)
    console.print(f"uptime at end: {uptime()}")


def settings_table(threads: int, versions: dict[str, str], load_before: str, began: float) -> Table:
    table = Table("", "value", title="Machine and settings")
    for name, value in (
        ("cores", str(os.cpu_count())),
        ("onnxruntime", onnxruntime.__version__),
        ("model_threads (ORT intra-op)", str(threads)),
        *versions.items(),
        ("uptime at start", load_before),
        ("uptime after the measurements", uptime()),
        ("total run time", f"{time.perf_counter() - began:.0f} s"),
    ):
        table.add_row(name, value)
    return table


def mesh_tables(data: Path, models: Runners) -> list[Table]:
    """The face-mesh section (4 in the module docstring); every set is small, so always whole."""
    detector, mesher = models.detector, models.mesher
    attributes = celeba_attributes(data)
    celeba = mesh_faces(data, list(attributes), detector, mesher)
    eyes = mesh_faces(data, list(eyes_open_labels()), detector, mesher)
    portraits = mesh_faces(data, portrait_paths(data), detector, mesher)
    male = celeba_male(data, celeba, models.estimator)
    coverage = Table("set", "photos", "face confirmed by the mesh", title="Face mesh inputs (all, both splits)")
    for name, faces in (("CelebA attributes", celeba), ("eyes-open labels", eyes), ("portraits", portraits)):
        coverage.add_row(name, str(faces.photos), str(len(faces.paths)))
    calibration = mesher.calibration
    return [
        mesh_attribute_table(celeba, male, eyes, portraits, attributes=attributes, calibration=calibration),
        celeba_group_table(data, celeba, male, attributes, models),
        gaze_table(portraits, calibration),
        coverage,
    ]


def most_crowded(data: Path) -> str:
    """The WIDER photo with the most annotated faces."""
    boxes: dict[str, list[object]] = json.loads((data / CROWD).read_text())
    return max(boxes, key=lambda path: len(boxes[path]))


def request_cost_table(data: Path, settings: Settings, *, count: int) -> Table:
    """What Attributes=ALL adds to a whole DetectFaces request (decode, detect, describe, shape),
    in-process through the operation handler, per face."""
    context = Context.create(settings)
    context.warm_up()
    table = Table("photo", "faces", "DEFAULT p50 ms", "ALL p50 ms", "ALL adds per face p50 ms", title="DetectFaces")
    for name, path in (("one face", ONE_FACE), ("crowd", most_crowded(data))):
        image = {"Bytes": (data / path).read_bytes()}
        faces = len(detect_faces(context, {"Image": image})["FaceDetails"])
        runs = count if name == "one face" else max(3, count // 10)
        default, every = (
            float(np.median(timed(partial(detect_faces, context, {"Image": image, "Attributes": [kind]}), runs)))
            for kind in ("DEFAULT", "ALL")
        )
        table.add_row(name, str(faces), f"{default:.0f}", f"{every:.0f}", f"{(every - default) / faces:.1f}")
    context.close()
    return table


def celeba_group_table(
    data: Path, celeba: MeshFaces, male: NDArray[np.float32], attributes: dict[str, dict[str, bool]], models: Runners
) -> Table:
    """Accuracy per CelebA demographic group (Male x Young, the labels CelebA has): the mesh's
    and the gender runner's on the held-out faces; the appearance runner's on every face, in-sample
    on the shared split (its training used these labels: only the held-out split tests it)."""
    appearance = [
        models.appearance.annotate(photo_pixels(data, path), celeba.faces[[row]])
        for row, path in enumerate(celeba.paths)
    ]
    mesh = models.mesher.calibration.columns(celeba.measures(models.mesher.calibration))
    flags = {name: celeba.labels({p: f[name] for p, f in attributes.items()}) for name in CELEBA_GROUP_LABELS}
    predictions = {
        "Smile": (mesh["smile"], flags["Smiling"], celeba.held_out),
        "MouthOpen": (mesh["mouth_open"], flags["Mouth_Slightly_Open"], celeba.held_out),
        "Gender": (male, flags["Male"], celeba.held_out),
        "Eyeglasses*": (np.array([a["eyeglasses"][0] for a in appearance]), flags["Eyeglasses"], None),
        "Beard*": (np.array([a["beard"][0] for a in appearance]), ~flags["No_Beard"], None),
    }
    groups = {
        f"{'men' if is_male else 'women'}, {'young' if young else 'not young'}": (flags["Male"] == is_male)
        & (flags["Young"] == young)
        for is_male in (False, True)
        for young in (True, False)
    }
    table = Table("attribute", *groups, "gap best-worst", title="CelebA accuracy by group (n) (*: in-sample)")
    for name, (probability, truth, held_out) in predictions.items():
        cells, rates = [], []
        for members in groups.values():
            rows = members & held_out if held_out is not None else members
            correct = (probability[rows] >= 0.5) == truth[rows]
            cells.append(f"{correct.mean():.1%} ({rows.sum()})" if rows.any() else "-")
            if rows.sum() >= MIN_GROUP:
                rates.append(correct.mean())
        gap = f"{max(rates) - min(rates):.1%}" if len(rates) > 1 else "-"
        table.add_row(name, *cells, gap)
    return table


def detection_table(utk: UtkFaces, fer: FerFaces) -> Table:
    table = Table(
        "set", "crops", "face detected", "whole crop used", title="Face found in the labelled crops (all, both splits)"
    )
    for name, detected in (("UTKFace 200x200", utk.detected), (f"FER2013 48x48 upscaled x{FER_UPSCALE}", fer.detected)):
        table.add_row(name, str(len(detected)), f"{detected.mean():.1%}", str(int((~detected).sum())))
    return table


if __name__ == "__main__":
    main()
