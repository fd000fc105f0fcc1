"""DetectText benchmark (issue #5): speed on this machine, reading quality on scene photos and document
pages, and the word-confidence calibration.

Measures, and prints as tables:
1. latency p50/p95 of the reader alone (`PpOcrReader.read`, in-process) and of DetectText through the
   operation (in-process `Opsis.call`: validation, decoding, filters, shaping) on a 348x348 receipt
   photo, a 640x480 page, a 1024x800 page and an ICDAR photo (1280x720); the 300-dpi scans' single
   read times are in table 3;
2. ICDAR 2015 (`text/icdar2015`): word detection precision/recall/F at polygon IoU >= 0.5 with the
   official handling of `###` (don't care: a detection more than half inside one is ignored), each
   detection matched to the unmatched legible word of highest IoU; end-to-end: among matched words
   the share read right case-insensitively (word accuracy) and exactly (exact match), and the
   end-to-end recall/precision (words found *and* read right, case-insensitively), at MinConfidence 0
   (every word) and at DetectText's default 80. Note: every photo of the shared sample is heavily
   motion-blurred (its source is a blurred-text detector's repository), so these figures are not
   comparable with published ICDAR 2015 results;
3. tesseract's pages (`text/tesseract`, the PNGs): word recall/precision as bags of words against the
   transcript (exact tokens, and case-folded with edge punctuation stripped), at MinConfidence 0 and
   80, the share of the transcript's lines read exactly as one line, and the read time;
4. WildReceipt's two photos: the share of annotated boxes whose text (spaces ignored) was read as a
   line or a word, and also placed at IoU >= 0.5;
5. word-confidence calibration: Platt scaling of P(word read right) on the logit of the word's CTC
   path probability, over the ICDAR detections (false detections count as wrong) and the page words
   (right when in the transcript); expected calibration error of the raw probability and, out of
   fold (5 folds by image), of the calibrated one, and a reliability table; `--write` stores the fit
   on all of them in opsis/vision/calibration/;
6. the published anchors for PP-OCRv6, `uptime` at start and end, and the threads used.

    .venv/bin/python benchmarks/detect_text.py [--data ../shared/data] [--quick] [--write]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import re
import time
from collections import Counter
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
from common import argument_parser, expected_calibration_error, percentiles, timed, uptime
from numpy.typing import NDArray
from PIL import Image
from rich.console import Console
from rich.table import Table
from shapely.geometry import Polygon

from opsis import Opsis
from opsis.config import Settings
from opsis.ops.text import DEFAULT_MIN_CONFIDENCE
from opsis.vision.calibration import calibration_path
from opsis.vision.image import decode_image
from opsis.vision.runners.ppocr import DetectorSize, PpOcrReader, TextCalibration, path_logit
from opsis.vision.types import TextReading

REPO = Path(__file__).resolve().parent.parent
ICDAR = "text/icdar2015"
TESSERACT = "text/tesseract"
LATENCY_IMAGES = (
    "text/wildreceipt_toy/2.jpeg",
    "text/tesseract/phototest.png",
    "text/tesseract/eurotext.png",
    "text/icdar2015/images/img_101.jpg",
)
RECEIPTS = "text/wildreceipt_toy/data.txt"
IOU = 0.5
DONT_CARE = "###"
FOLDS = 5
# Stripped from both ends of a word before the case-folded comparison (with typographic quotes).
EDGE_PUNCTUATION = ".,;:!?\"'()[]{}-\u00ab\u00bb\u201e\u201c\u201d\u2018\u2019"
THRESHOLDS = (0.0, DEFAULT_MIN_CONFIDENCE / 100.0)
PUBLISHED = (
    ("PP-OCRv6 medium (Baidu, in-house set)", "det Hmean 86.2 %, rec accuracy 83.2 %"),
    ("PP-OCRv6 small vs PP-OCRv5 mobile (RapidOCR's own ONNX evaluation)", "ExactMatch 0.842 vs 0.736"),
    ("ICDAR 2015 figures for PP-OCRv6", "none published (MODELS.md section 3)"),
)
console = Console(width=150)


@dataclass(frozen=True)
class IcdarImage:
    name: str
    quads: list[NDArray[np.float64]]
    texts: list[str]


@dataclass
class Outcome:
    """One image's detections: each one's calibrated and raw confidence, whether it is ignored
    (inside a don't-care word), matched, and read right (case-insensitively / exactly)."""

    confidence: NDArray[np.float32]
    path_probability: NDArray[np.float64]
    ignored: NDArray[np.bool_]
    matched: NDArray[np.bool_]
    right: NDArray[np.bool_]
    exact: NDArray[np.bool_]
    legible: int


# --- ICDAR 2015 ----------------------------------------------------------------------------------------


def icdar_images(data: Path, limit: int | None) -> list[IcdarImage]:
    images = []
    for path in sorted((data / ICDAR / "images").glob("*.jpg"), key=lambda p: int(re.sub(r"\D", "", p.stem)))[:limit]:
        quads, texts = [], []
        for row in (data / ICDAR / "gts" / f"gt_{path.stem}.txt").read_text(encoding="utf-8-sig").splitlines():
            if not row.strip():
                continue
            *coordinates, text = row.split(",", 8)
            quads.append(np.array(coordinates, np.float64).reshape(4, 2))
            texts.append(text.strip())
        images.append(IcdarImage(path.name, quads, texts))
    return images


def outcome(
    image: IcdarImage, reading: TextReading, raw: NDArray[np.float64], calibrated: NDArray[np.float32]
) -> Outcome:
    """Match one image's words to its ground truth, ICDAR 2015 style."""
    words = reading.words
    quads = words.landmarks if words.landmarks is not None else np.zeros((0, 4, 2), np.float32)
    found = [_polygon(quad) for quad in quads]
    truth = [_polygon(quad) for quad in image.quads]
    care = np.array([text != DONT_CARE for text in image.texts], bool)
    ignored = np.array(
        [_share_inside(d, [t for t, c in zip(truth, care, strict=True) if not c]) > 0.5 for d in found], bool
    )
    iou = np.array([[_iou(d, t) if c else 0.0 for t, c in zip(truth, care, strict=True)] for d in found]).reshape(
        len(found), len(truth)
    )
    matched = np.zeros(len(found), bool)
    right = np.zeros(len(found), bool)
    exact = np.zeros(len(found), bool)
    taken = np.zeros(len(truth), bool)
    for flat in np.argsort(-iou, axis=None, kind="stable"):
        row, column = divmod(int(flat), len(truth))
        if iou[row, column] < IOU:
            break
        if matched[row] or taken[column] or ignored[row]:
            continue
        matched[row] = taken[column] = True
        text = str(words.data["text"][row])
        right[row] = text.casefold() == image.texts[column].casefold()
        exact[row] = text == image.texts[column]
    return Outcome(calibrated, raw, ignored, matched, right, exact, int(care.sum()))


def _polygon(quad: NDArray[Any]) -> Polygon:
    shape = Polygon(np.asarray(quad, np.float64))
    return shape if shape.is_valid else shape.buffer(0)


def _iou(a: Polygon, b: Polygon) -> float:
    inter = a.intersection(b).area
    union = a.area + b.area - inter
    return float(inter / union) if union > 0 else 0.0


def _share_inside(detection: Polygon, regions: list[Polygon]) -> float:
    if detection.area <= 0:
        return 0.0
    return max((detection.intersection(region).area / detection.area for region in regions), default=0.0)


def icdar_outcomes(reader: PpOcrReader, data: Path, images: list[IcdarImage]) -> list[tuple[str, Outcome]]:
    """Each image read once with raw (uncalibrated) confidences; the word's path probability kept."""
    results = []
    for image in images:
        reading = reader.read(decode_image((data / ICDAR / "images" / image.name).read_bytes()).pixels)
        raw = reading.words.confidence.astype(np.float64)  # identity calibration: the path probability
        results.append((image.name, outcome(image, reading, raw, reading.words.confidence)))
    return results


def recalibrated(outcomes: list[tuple[str, Outcome]], calibration: TextCalibration) -> list[tuple[str, Outcome]]:
    return [
        (
            name,
            Outcome(
                calibration.apply(o.path_probability),
                o.path_probability,
                o.ignored,
                o.matched,
                o.right,
                o.exact,
                o.legible,
            ),
        )
        for name, o in outcomes
    ]


def icdar_scores(outcomes: list[Outcome], threshold: float) -> dict[str, float]:
    legible = sum(o.legible for o in outcomes)
    kept = [o.confidence >= threshold for o in outcomes]
    counted = sum(int((k & ~o.ignored).sum()) for o, k in zip(outcomes, kept, strict=True))
    tp = sum(int((k & o.matched).sum()) for o, k in zip(outcomes, kept, strict=True))
    right = sum(int((k & o.right).sum()) for o, k in zip(outcomes, kept, strict=True))
    exact = sum(int((k & o.exact).sum()) for o, k in zip(outcomes, kept, strict=True))
    precision, recall = tp / max(counted, 1), tp / max(legible, 1)
    return {
        "legible": legible,
        "detections": counted,
        "precision": precision,
        "recall": recall,
        "f": 2 * precision * recall / max(precision + recall, 1e-9),
        "word_accuracy": right / max(tp, 1),
        "exact_match": exact / max(tp, 1),
        "e2e_recall": right / max(legible, 1),
        "e2e_precision": right / max(counted, 1),
    }


def icdar_table(outcomes: list[Outcome], title: str) -> Table:
    table = Table(
        "MinConfidence",
        "legible",
        "dets",
        "det P",
        "det R",
        "det F",
        "word acc",
        "exact",
        "e2e R",
        "e2e P",
        title=title,
    )
    for threshold in THRESHOLDS:
        s = icdar_scores(outcomes, threshold)
        table.add_row(
            f"{threshold * 100:.0f}",
            str(s["legible"]),
            str(s["detections"]),
            *(
                f"{s[k]:.3f}"
                for k in ("precision", "recall", "f", "word_accuracy", "exact_match", "e2e_recall", "e2e_precision")
            ),
        )
    return table


# --- calibration -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Samples:
    """One image's detections for the calibration: logit of the path probability, read right."""

    image: str
    logits: NDArray[np.float64]
    labels: NDArray[np.float64]


def icdar_samples(name: str, o: Outcome) -> Samples:
    """Every detection not ignored; a false detection counts as wrong."""
    return Samples(name, path_logit(o.path_probability[~o.ignored]), o.right[~o.ignored].astype(np.float64))


def page_samples(page: PageResult) -> Samples:
    """Every word of a page; right when the transcript holds it (each transcript word once)."""
    left = Counter(page.transcript.split())
    labels = []
    for word in page.words:
        labels.append(float(left[word] > 0))
        left[word] -= 1
    return Samples(page.name, path_logit(page.path_probabilities), np.array(labels, np.float64))


def fit_platt(logits: NDArray[np.float64], labels: NDArray[np.float64]) -> TextCalibration:
    """Logistic regression of labels on logits by Newton's method (with a tiny ridge)."""
    features = np.stack([logits, np.ones_like(logits)], axis=1)
    weights = np.array([1.0, 0.0])
    for _ in range(100):
        p = 1 / (1 + np.exp(-(features @ weights)))
        gradient = features.T @ (p - labels) + 1e-3 * weights
        hessian = features.T @ (features * (p * (1 - p))[:, None]) + 1e-3 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        weights -= step
        if np.abs(step).max() < 1e-9:
            break
    return TextCalibration(slope=round(float(weights[0]), 4), bias=round(float(weights[1]), 4))


def fold(image: str) -> int:
    return int(hashlib.sha256(image.encode()).hexdigest(), 16) % FOLDS


def out_of_fold(samples: list[Samples]) -> tuple[NDArray[np.float32], NDArray[np.float64]]:
    """Calibrated confidence of every detection from the fit on the other folds, and its label."""
    confidences, labels = [], []
    for k in range(FOLDS):
        train = [s for s in samples if fold(s.image) != k]
        test = [s for s in samples if fold(s.image) == k]
        if not test or not train:
            continue
        fitted = fit_platt(np.concatenate([s.logits for s in train]), np.concatenate([s.labels for s in train]))
        confidences.append(fitted.apply(_probability(np.concatenate([s.logits for s in test]))))
        labels.append(np.concatenate([s.labels for s in test]))
    return np.concatenate(confidences), np.concatenate(labels)


def _probability(logits: NDArray[np.float64]) -> NDArray[np.float64]:
    result: NDArray[np.float64] = 1 / (1 + np.exp(-logits))
    return result


@dataclass(frozen=True)
class CalibrationResult:
    fitted: TextCalibration
    detections: int
    share_right: float
    ece_before: float
    ece_after: float
    reliability: list[tuple[str, int, float, float]]  # bin, count, mean confidence, share right


def calibrate(samples: list[Samples]) -> CalibrationResult:
    logits = np.concatenate([s.logits for s in samples])
    labels = np.concatenate([s.labels for s in samples])
    confidence, held_labels = out_of_fold(samples)
    reliability = []
    for low in (0.0, 0.5, 0.8, 0.9, 0.95, 0.99):
        high = {0.0: 0.5, 0.5: 0.8, 0.8: 0.9, 0.9: 0.95, 0.95: 0.99, 0.99: 1.01}[low]
        members = (confidence >= low) & (confidence < high)
        if members.any():
            reliability.append(
                (
                    f"{low:.2f}-{min(high, 1.0):.2f}",
                    int(members.sum()),
                    float(confidence[members].mean()),
                    float(held_labels[members].mean()),
                )
            )
    return CalibrationResult(
        fitted=fit_platt(logits, labels),
        detections=len(labels),
        share_right=float(labels.mean()),
        ece_before=expected_calibration_error(_probability(logits), labels),
        ece_after=expected_calibration_error(confidence, held_labels),
        reliability=reliability,
    )


def calibration_tables(result: CalibrationResult) -> list[Table]:
    summary = Table("", "value", title="Word confidence calibration: P(word read right), ICDAR + tesseract detections")
    for name, value in (
        ("detections (ICDAR: not don't-care; pages: every word)", str(result.detections)),
        ("share read right", f"{result.share_right:.3f}"),
        ("fit on all: slope / bias on logit(path probability)", f"{result.fitted.slope} / {result.fitted.bias}"),
        ("ECE of the raw path probability", f"{result.ece_before:.4f}"),
        (f"ECE calibrated, out of fold ({FOLDS}-fold by image)", f"{result.ece_after:.4f}"),
    ):
        summary.add_row(name, value)
    reliability = Table("confidence", "words", "mean confidence", "share right", title="Reliability, out of fold")
    for band, count, mean, right in result.reliability:
        reliability.add_row(band, str(count), f"{mean:.3f}", f"{right:.3f}")
    return [summary, reliability]


def write_calibration(result: CalibrationResult, version: str) -> Path:
    path = REPO / calibration_path(version)
    document = {
        "model_version": version,
        "parameters": {"slope": result.fitted.slope, "bias": result.fitted.bias},
        "calibration": {
            "target": "P(word read right): ICDAR 2015 detections matched at IoU 0.5 and read right case-insensitively "
            "(false detections wrong); tesseract page words found in the transcript",
            "fitted_on": "shared ICDAR 2015 sample (100 photos) and tesseract's 8 PNG pages, "
            f"{result.detections} detections",
            "ece_before": round(result.ece_before, 4),
            "ece_after_out_of_fold": round(result.ece_after, 4),
        },
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


# --- tesseract pages -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PageResult:
    name: str
    size: str
    transcript: str
    words: list[str]
    path_probabilities: NDArray[np.float64]
    lines: list[str]
    seconds: float


def tesseract_pages(reader: PpOcrReader, data: Path, quick: bool) -> list[PageResult]:
    """Each PNG page of the transcripts read once (the TIFFs are the same pages)."""
    with (data / TESSERACT / "transcripts.csv").open() as file:
        rows = [row for row in csv.DictReader(file) if row["path"].endswith(".png")]
    pages = []
    for row in rows[:3] if quick else rows:
        image = decode_image((data / row["path"]).read_bytes())
        start = time.perf_counter()
        reading = reader.read(image.pixels)
        seconds = time.perf_counter() - start
        pages.append(
            PageResult(
                name=Path(row["path"]).name,
                size=f"{image.width}x{image.height}",
                transcript=(data / row["transcript"]).read_text(encoding="utf-8"),
                words=[str(w) for w in reading.words.data["text"]],
                path_probabilities=reading.words.confidence.astype(np.float64),
                lines=[str(t) for t in reading.lines.data["text"]],
                seconds=seconds,
            )
        )
    return pages


def tesseract_table(pages: list[PageResult], calibration: TextCalibration) -> Table:
    table = Table(
        "page",
        "size",
        "words",
        "found",
        "R exact",
        "P exact",
        "R folded",
        "P folded",
        "lines exact",
        "read s",
        title="tesseract pages: bag-of-words recall/precision against the transcript "
        f"(every word; MinConfidence {DEFAULT_MIN_CONFIDENCE:.0f} in brackets)",
    )
    for page in pages:
        confidence = calibration.apply(page.path_probabilities)
        confident = [w for w, c in zip(page.words, confidence, strict=True) if c >= DEFAULT_MIN_CONFIDENCE / 100]
        truth = page.transcript.split()
        cells = [page.name, page.size, str(len(truth)), str(len(page.words))]
        for is_folded in (False, True):
            recall, precision = bag_scores(truth, page.words, is_folded)
            recall_80, precision_80 = bag_scores(truth, confident, is_folded)
            cells += [f"{recall:.3f} ({recall_80:.3f})", f"{precision:.3f} ({precision_80:.3f})"]
        cells += [f"{line_match(page.transcript, page.lines):.3f}", f"{page.seconds:.1f}"]
        table.add_row(*cells)
    return table


def _folded(word: str) -> str:
    return word.strip(EDGE_PUNCTUATION).casefold()


def bag_scores(truth: list[str], found: list[str], is_folded: bool) -> tuple[float, float]:
    if is_folded:
        truth, found = [_folded(w) for w in truth], [_folded(w) for w in found]
    common = sum((Counter(truth) & Counter(found)).values())
    return common / max(len(truth), 1), common / max(len(found), 1)


def line_match(transcript: str, lines: list[str]) -> float:
    """Share of the transcript's lines found, whitespace-normalised, as one read line each."""
    truth = [" ".join(line.split()) for line in transcript.splitlines() if line.strip()]
    found = Counter(" ".join(line.split()) for line in lines)
    return sum((Counter(truth) & found).values()) / max(len(truth), 1)


# --- receipts --------------------------------------------------------------------------------------------


def receipt_table(reader: PpOcrReader, data: Path) -> Table:
    """WildReceipt's annotated boxes (their text has the spaces taken out): the share whose text a
    read line or word holds exactly, spaces ignored, and the share also placed right (a line's quad
    at IoU >= 0.5 with the box)."""
    table = Table(
        "photo",
        "size",
        "boxes",
        "lines",
        "text found",
        "text + box",
        "read s",
        title="WildReceipt photos: annotated boxes read (spaces ignored)",
    )
    for row in (data / RECEIPTS).read_text().splitlines():
        if not row.strip():
            continue
        document = json.loads(row)
        image = decode_image((data / document["file_name"]).read_bytes())
        start = time.perf_counter()
        reading = reader.read(image.pixels)
        seconds = time.perf_counter() - start
        truth = [
            ("".join(a["text"].split()), _polygon(np.array(a["box"]).reshape(4, 2))) for a in document["annotations"]
        ]
        lines = reading.lines
        quads = lines.landmarks if lines.landmarks is not None else np.zeros((0, 4, 2), np.float32)
        line_texts = ["".join(str(t).split()) for t in lines.data["text"]]
        word_texts = [str(t) for t in reading.words.data["text"]]
        found = sum((Counter(t for t, _ in truth) & Counter(line_texts + word_texts)).values())
        placed = sum(
            any(text == read and _iou(box, _polygon(quad)) >= IOU for read, quad in zip(line_texts, quads, strict=True))
            for text, box in truth
        )
        table.add_row(
            Path(document["file_name"]).name,
            f"{image.width}x{image.height}",
            str(len(truth)),
            str(len(lines)),
            f"{found / len(truth):.3f}",
            f"{placed / len(truth):.3f}",
            f"{seconds:.1f}",
        )
    return table


# --- speed -----------------------------------------------------------------------------------------------


def latency_table(reader: PpOcrReader, settings: Settings, data: Path, count: int) -> Table:
    table = Table(
        "image",
        "size",
        "words",
        "N",
        "reader p50 / p95 ms",
        "DetectText p50 / p95 ms",
        title="Latency (sequential, after warm-up; DetectText = in-process Opsis.call, default filters)",
    )
    with Opsis(settings) as opsis:
        # The operation runs the benchmark's reader: same model, and no shipped calibration needed.
        opsis.ctx.models.get("text-reader", settings.text_reader, lambda: reader)
        for relative in LATENCY_IMAGES:
            photo = png_or_jpeg(data / relative)
            image = decode_image(photo)
            words = len(reader.read(image.pixels).words)
            read_ms = timed(partial(reader.read, image.pixels), count, warmup=1)
            call = partial(opsis.call, "DetectText", {"Image": {"Bytes": photo}})
            op_ms = timed(call, count, warmup=1)
            table.add_row(
                Path(relative).name,
                f"{image.width}x{image.height}",
                str(words),
                str(count),
                percentiles(read_ms),
                percentiles(op_ms),
            )
    return table


def png_or_jpeg(path: Path) -> bytes:
    """The file's bytes if Rekognition takes them, else a PNG of it (bilevel scans stay PNG)."""
    data = path.read_bytes()
    if path.suffix.lower() in (".png", ".jpg", ".jpeg"):
        return data
    buffer = io.BytesIO()
    Image.open(path).save(buffer, "PNG")
    return buffer.getvalue()


# --- main ------------------------------------------------------------------------------------------------


def parse() -> argparse.Namespace:
    parser = argument_parser(__doc__)
    parser.add_argument("--quick", action="store_true", help="30 ICDAR photos, 3 pages, 3 timed runs")
    parser.add_argument("--write", action="store_true", help="store the fitted calibration in the package")
    parser.add_argument("--model-threads", type=int, help="ONNX Runtime intra-op threads per model")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per latency image")
    parser.add_argument("--limit-type", default=DetectorSize.limit_type, choices=("min", "max"))
    parser.add_argument("--limit-side", type=int, default=DetectorSize.limit_side_len)
    parser.add_argument("--max-side", type=int, default=DetectorSize.max_side_len)
    parser.add_argument("--skip-latency", action="store_true")
    return parser.parse_args()


def main() -> None:
    args = parse()
    data = args.data.resolve()
    if not (data / ICDAR / "images").is_dir() or not (data / TESSERACT / "transcripts.csv").is_file():
        console.print(f"Skipped: shared data not found at {data} (pass --data or set OPSIS_SHARED_DATA).")
        return
    settings = Settings.load(model_threads=args.model_threads)
    began, load_before = time.perf_counter(), uptime()
    size = DetectorSize(args.limit_type, args.limit_side, args.max_side)
    # Identity calibration: the reader's confidences are the raw path probabilities, calibrated below.
    reader = PpOcrReader(threads=settings.model_threads, calibration=TextCalibration(), size=size)
    outcomes = icdar_outcomes(reader, data, icdar_images(data, 30 if args.quick else None))
    pages = tesseract_pages(reader, data, args.quick)
    result = calibrate([icdar_samples(name, o) for name, o in outcomes] + [page_samples(page) for page in pages])
    tables = [
        icdar_table(
            [o for _, o in recalibrated(outcomes, result.fitted)], f"ICDAR 2015 (shared sample), {len(outcomes)} photos"
        ),
        tesseract_table(pages, result.fitted),
        receipt_table(reader, data),
        *calibration_tables(result),
    ]
    if not args.skip_latency:
        tables.insert(0, latency_table(reader, settings, data, 3 if args.quick else args.runs))
    if args.write:
        console.print(f"Wrote {write_calibration(result, reader.version)}")
    anchors = Table("published", "figure", title="Published anchors (MODELS.md section 3)")
    for row in PUBLISHED:
        anchors.add_row(*row)
    env = Table("", "value", title="Machine and settings")
    for name, value in (
        ("cores", str(os.cpu_count())),
        ("onnxruntime", onnxruntime.__version__),
        ("model", reader.version),
        (
            "detector size",
            f"limit_type={size.limit_type}, limit_side_len={size.limit_side_len}, max_side_len={size.max_side_len}",
        ),
        ("model_threads (ORT intra-op, per model)", str(settings.model_threads)),
        ("uptime at start", load_before),
        ("uptime at end", uptime()),
        ("total run time", f"{time.perf_counter() - began:.0f} s"),
    ):
        env.add_row(name, value)
    for table in [env, *tables, anchors]:
        console.print(table)


if __name__ == "__main__":
    main()
