"""Can the appearance runner's `face_occluded` column judge FACE_COVER? Measured on painted masks.

No labelled photo in the shared data shows a face mask, so masks are painted on the identity photos
(faces/identities/*/labels.csv) in shapes and colours unlike train_appearance.py's `paint_mask`
(which the runner was partly trained on): pleated surgical trapezoids in light blue or white with
ear loops, cloth masks in dark colours with stripes or checks and a curved lower edge, and rounded
N95 cups with a centre seam. Each is placed from RetinaFace's five landmarks, from the nose bridge
to below the chin. The masked copy is detected again (as the service would), and the face matched
to the original's.

Prints, as tables: AUC, accuracy at P >= 0.5 and at a threshold chosen on half the identities and
tested on the other half (balanced accuracy, n), the share of masked faces the detector still
finds, and false positives at both thresholds on real unmasked faces: all identity photos, those
hand-labelled bearded (benchmarks/labels/appearance.csv), and WIDER FACE faces labelled occluded
(hands, microphones, objects; "not a mask"). Painted masks are flat and clean: the figures are an
optimistic bound for real masks. `uptime` is printed at start and end.
"""

from __future__ import annotations

import csv
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from common import argument_parser, uptime
from numpy.typing import NDArray
from rich.console import Console
from rich.table import Table

from opsis.vision.faces import analyze
from opsis.vision.image import decode_image
from opsis.vision.runners.appearance import FaceAppearanceClassifier
from opsis.vision.runners.retinaface import RetinaFaceDetector
from opsis.vision.types import DecodedImage, Detections, box_iou

console = Console()
IDENTITIES = "faces/identities"
APPEARANCE_LABELS = Path(__file__).parent / "labels" / "appearance.csv"
WIDER_GT = "faces/crowd/wider/gt.json"
MIN_WIDER_HEIGHT = 40  # px: the crowd faces big enough for a PPE face part
MATCH_IOU = 0.4
STYLES = ("surgical", "cloth", "n95")
SURGICAL_COLOURS = ((150, 190, 225), (120, 175, 215), (240, 242, 245), (200, 225, 240))
CLOTH_COLOURS = ((25, 25, 30), (30, 40, 80), (90, 20, 30), (40, 70, 45), (70, 70, 75))
N95_COLOURS = ((235, 235, 230), (215, 215, 210), (245, 240, 225))

Point = NDArray[np.float64]


@dataclass
class Scores:
    """P(face occluded) per face, with its label (1 = masked) and group (identity)."""

    probability: list[float] = field(default_factory=list)
    masked: list[int] = field(default_factory=list)
    group: list[str] = field(default_factory=list)
    source: list[str] = field(default_factory=list)  # the photo path, or the painted mask's style

    def add(self, probability: float, masked: int, group: str, source: str) -> None:
        self.probability.append(probability)
        self.masked.append(masked)
        self.group.append(group)
        self.source.append(source)

    def arrays(self) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        return np.asarray(self.probability, np.float64), np.asarray(self.masked, np.int64)


# ---------------------------------------------------------------- painting


def face_frame(landmarks: NDArray[np.float32]) -> tuple[Point, Point, Point, float]:
    """Nose tip, unit "right" and "down" vectors of the face, and the eye distance, in pixels."""
    points = landmarks.astype(np.float64)
    right = points[1] - points[0]
    eye_distance = float(np.linalg.norm(right))
    right /= eye_distance
    down = np.array([-right[1], right[0]])
    return points[2], right, down, eye_distance


def outline(landmarks: NDArray[np.float32], style: str) -> NDArray[np.int32]:
    """The mask's polygon: from the nose bridge (between eyes and nose tip) to below the chin."""
    nose, right, down, d = face_frame(landmarks)
    eyes = (landmarks[0] + landmarks[1]).astype(np.float64) / 2
    top = eyes + 0.45 * (nose - eyes)
    chin = nose + 1.45 * d * down  # the chin sits about 1.3 eye distances below the nose tip
    if style == "surgical":  # a trapezoid, wider at the bottom
        corners = [top - 0.85 * d * right, top + 0.85 * d * right, chin + 1.0 * d * right, chin - 1.0 * d * right]
        return np.round(np.array(corners)).astype(np.int32)
    angles = np.linspace(0, np.pi, 24)
    half_width = 0.95 * d if style == "cloth" else 0.85 * d
    depth = float(np.dot(chin - top, down))
    bulge = 0.35 if style == "cloth" else 0.6  # N95 cups are round, cloth masks flatter on top
    lower = [top + depth * np.sin(a) * down + half_width * np.cos(a) * right for a in angles]
    upper = [top - bulge * 0.25 * d * np.sin(a) * down + half_width * np.cos(a) * right for a in angles[::-1]]
    return np.round(np.array(lower + upper)).astype(np.int32)


def paint(pixels: NDArray[np.uint8], landmarks: NDArray[np.float32], style: str, rng: np.random.Generator) -> None:
    """Paints one mask of `style` in place, shaded, textured, with its style's marks."""
    polygon = outline(landmarks, style)
    inside = np.zeros(pixels.shape[:2], np.uint8)
    cv2.fillPoly(inside, [polygon], 1)
    palette = {"surgical": SURGICAL_COLOURS, "cloth": CLOTH_COLOURS, "n95": N95_COLOURS}[style]
    colour = np.array(palette[rng.integers(len(palette))], np.float64) * rng.uniform(0.85, 1.05)
    layer = np.empty(pixels.shape, np.float64)
    layer[:] = colour
    layer *= np.linspace(1.08, 0.82, pixels.shape[0])[:, None, None]  # lit from above
    layer += rng.normal(0, 3, pixels.shape)
    marked = np.clip(layer, 0, 255).astype(np.uint8)
    _marks(marked, landmarks, style, colour, rng)
    pixels[inside.astype(bool)] = marked[inside.astype(bool)]
    if style == "surgical":  # ear loops, drawn outside the mask
        _loops(pixels, polygon)


def _marks(
    layer: NDArray[np.uint8], landmarks: NDArray[np.float32], style: str, colour: Point, rng: np.random.Generator
) -> None:
    nose, right, down, d = face_frame(landmarks)
    thickness = max(1, round(d / 25))
    shade = tuple(int(c) for c in np.clip(colour * 0.7, 0, 255))
    if style == "surgical":  # three pleats across
        for step in (0.35, 0.65, 0.95):
            centre = nose + step * d * down
            ends = [centre - 1.1 * d * right, centre + 1.1 * d * right]
            _line(layer, ends[0], ends[1], shade, thickness)
    elif style == "n95":  # a seam down the middle
        ends = [nose - 0.3 * d * down, nose + 1.5 * d * down]
        _line(layer, ends[0], ends[1], shade, thickness)
    else:  # cloth: stripes or checks in a second colour
        other = tuple(int(c) for c in rng.integers(60, 230, 3))
        spacing = max(3, round(d / 6))
        for k in range(-12, 13):
            offset = nose + k * spacing * down
            ends = [offset - 2 * d * right, offset + 2 * d * right]
            _line(layer, ends[0], ends[1], other, thickness)
            if k % 2 == 0 and rng.random() < 0.5:
                side = nose + k * spacing * right
                _line(layer, side - 2 * d * down, side + 2 * d * down, other, thickness)


def _line(layer: NDArray[np.uint8], a: Point, b: Point, colour: tuple[int, ...], thickness: int) -> None:
    cv2.line(layer, _pixel(a), _pixel(b), colour, thickness)


def _pixel(point: Point) -> tuple[int, int]:
    return round(float(point[0])), round(float(point[1]))


def _loops(pixels: NDArray[np.uint8], polygon: NDArray[np.int32]) -> None:
    top_left, top_right, bottom_right, bottom_left = polygon
    for a, b in ((top_left, bottom_left), (top_right, bottom_right)):
        outward = (a - (top_left + top_right) / 2) * 0.25
        _line(pixels, a, a + outward, (235, 235, 235), 2)  # ear loops run outwards from the top corners
        _line(pixels, b, b + outward, (235, 235, 235), 2)


# ---------------------------------------------------------------- measuring


class Judge:
    """RetinaFace and the appearance runner, as the service runs them."""

    def __init__(self) -> None:
        self.detector = RetinaFaceDetector(threads=2)
        self.appearance = FaceAppearanceClassifier(threads=2)

    def faces(self, pixels: NDArray[np.uint8]) -> Detections:
        return analyze(decode_pixels(pixels), self.detector)

    def occluded(self, pixels: NDArray[np.uint8], faces: Detections) -> NDArray[np.float32]:
        return self.appearance.annotate(pixels, faces)["face_occluded"]


def decode_pixels(pixels: NDArray[np.uint8]) -> DecodedImage:
    """Pixels as the service sees them: encoded losslessly, then decoded."""
    _, encoded = cv2.imencode(".png", cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))
    return decode_image(encoded.tobytes())


def matched(found: Detections, box: NDArray[np.float32]) -> int | None:
    if len(found) == 0:
        return None
    overlaps = box_iou(box, found.xyxy)
    best = int(np.argmax(overlaps))
    return best if overlaps[best] >= MATCH_IOU else None


def identity_photos(data: Path, limit: int) -> list[tuple[str, str]]:
    rows = [
        (row["path"], row["identity"])
        for labels in sorted((data / IDENTITIES).glob("*/labels.csv"))
        for row in csv.DictReader(labels.open())
    ]
    return sorted(rows, key=lambda row: digest(row[0]))[:limit]


def digest(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest(), 16)


def bearded(paths: set[str]) -> set[str]:
    with APPEARANCE_LABELS.open() as handle:
        return {row["path"] for row in csv.DictReader(handle) if row["path"] in paths and row["beard"] == "1"}


def measure_identities(judge: Judge, data: Path, limit: int) -> tuple[Scores, dict[str, int]]:
    scores = Scores()
    found = {style: 0 for style in STYLES} | {f"{style} painted": 0 for style in STYLES}
    for index, (path, identity) in enumerate(identity_photos(data, limit)):
        image = decode_image((data / path).read_bytes())
        faces = judge.faces(image.pixels)
        if len(faces) == 0:
            continue
        face = faces[np.array([0])]
        assert face.landmarks is not None, "RetinaFace gives landmarks"
        scores.add(float(judge.occluded(image.pixels, face)[0]), 0, identity, path)
        style = STYLES[index % len(STYLES)]
        pixels = image.pixels.copy()
        paint(pixels, face.landmarks[0], style, np.random.default_rng(digest(path) % 2**32))
        again = judge.faces(pixels)
        row = matched(again, face.xyxy[0])
        found[f"{style} painted"] += 1
        if row is not None:
            found[style] += 1
            scores.add(float(judge.occluded(pixels, again[np.array([row])])[0]), 1, identity, style)
    return scores, found


def measure_wider(judge: Judge, data: Path, limit: int) -> list[float]:
    """P(occluded) on WIDER faces labelled occluded: real occluders that are not masks."""
    truth = json.loads((data / WIDER_GT).read_text())
    probabilities: list[float] = []
    for path, annotated in sorted(truth.items()):
        boxes = [f[:4] for f in annotated if f[3] >= MIN_WIDER_HEIGHT and not f[10] and f[11] > 0]
        if not boxes:
            continue
        image = decode_image((data / path).read_bytes())
        faces = judge.faces(image.pixels)
        rows = [matched(faces, np.array([x, y, x + w, y + h], np.float32)) for x, y, w, h in boxes]
        kept = [r for r in rows if r is not None]
        if kept:
            probabilities.extend(float(p) for p in judge.occluded(image.pixels, faces[np.array(kept)]))
        if len(probabilities) >= limit:
            break
    return probabilities


# ---------------------------------------------------------------- figures


def auc(probability: NDArray[np.float64], label: NDArray[np.int64]) -> float:
    """ROC AUC as the chance a masked face outscores an unmasked one (ties count half)."""
    pos, neg = probability[label == 1], probability[label == 0]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (len(pos) * len(neg)))


def balanced(probability: NDArray[np.float64], label: NDArray[np.int64], threshold: float) -> tuple[float, float]:
    said = probability >= threshold
    accuracy = float((said == label.astype(bool)).mean())
    tpr, tnr = said[label == 1].mean(), (~said[label == 0]).mean()
    return accuracy, float((tpr + tnr) / 2)


def best_threshold(probability: NDArray[np.float64], label: NDArray[np.int64]) -> float:
    candidates = np.unique(probability)
    return float(max(candidates, key=lambda t: balanced(probability, label, t)[1]))


def separation_table(scores: Scores) -> tuple[Table, float]:
    probability, label = scores.arrays()
    half = np.array([digest(g) % 2 == 0 for g in scores.group])
    threshold = best_threshold(probability[half], label[half])
    test_p, test_l = probability[~half], label[~half]
    table = Table("measure", "value", title="face_occluded: painted masks vs the same faces unmasked")
    table.add_row("n (masked / unmasked)", f"{label.sum()} / {(label == 0).sum()}")
    table.add_row("AUC, all", f"{auc(probability, label):.3f}")
    table.add_row("accuracy / balanced at 0.5, all", _pair(balanced(probability, label, 0.5)))
    table.add_row("threshold chosen on half the identities", f"{threshold:.3f} (n={half.sum()})")
    table.add_row("held-out half: n (masked / unmasked)", f"{test_l.sum()} / {(test_l == 0).sum()}")
    table.add_row("held-out: AUC", f"{auc(test_p, test_l):.3f}")
    table.add_row("held-out: accuracy / balanced at 0.5", _pair(balanced(test_p, test_l, 0.5)))
    table.add_row("held-out: accuracy / balanced at chosen", _pair(balanced(test_p, test_l, threshold)))
    return table, threshold


def _pair(values: tuple[float, float]) -> str:
    return f"{values[0]:.3f} / {values[1]:.3f}"


def style_table(scores: Scores, found: dict[str, int]) -> Table:
    probability, label = scores.arrays()
    table = Table("mask", "still detected", "median P", "P >= 0.5", title="Per mask style")
    masked = probability[label == 1]
    styles = [s for s, m in zip(scores.source, scores.masked, strict=True) if m == 1]
    for style in STYLES:
        own = np.array([s == style for s in styles])
        table.add_row(
            style,
            f"{found[style]}/{found[style + ' painted']}",
            f"{np.median(masked[own]):.3f}" if own.any() else "n/a",
            f"{(masked[own] >= 0.5).mean():.3f}" if own.any() else "n/a",
        )
    return table


def false_positive_table(groups: dict[str, list[float]], threshold: float) -> Table:
    table = Table(
        "real unmasked faces",
        "n",
        "median P",
        "P >= 0.5",
        f"P >= {threshold:.3f}",
        title="False FACE_COVER on real faces",
    )
    for name, values in groups.items():
        p = np.asarray(values)
        if len(p) == 0:
            table.add_row(name, "0", "n/a", "n/a", "n/a")
            continue
        table.add_row(
            name, str(len(p)), f"{np.median(p):.3f}", f"{(p >= 0.5).mean():.3f}", f"{(p >= threshold).mean():.3f}"
        )
    return table


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--photos", type=int, default=240, help="identity photos to paint")
    parser.add_argument("--wider", type=int, default=80, help="occluded WIDER faces to score")
    args = parser.parse_args()
    began, load_before = time.perf_counter(), uptime()
    judge = Judge()
    scores, found = measure_identities(judge, args.data, args.photos)
    unmasked = {path: p for p, m, path in zip(scores.probability, scores.masked, scores.source, strict=True) if m == 0}
    beards = bearded(set(unmasked))
    separation, threshold = separation_table(scores)
    groups = {
        "identity photos": list(unmasked.values()),
        "  of them bearded (hand labels)": [p for path, p in unmasked.items() if path in beards],
        "WIDER occluded (hands, mics, objects)": measure_wider(judge, args.data, args.wider),
    }
    for table in (separation, style_table(scores, found), false_positive_table(groups, threshold)):
        console.print(table)
    console.print(
        f"uptime at start: {load_before}\nuptime at end:   {uptime()}\nwall time {time.perf_counter() - began:.0f} s"
    )


if __name__ == "__main__":
    main()
