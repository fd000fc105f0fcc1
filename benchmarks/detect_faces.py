"""DetectFaces benchmark (issue #2): speed on this machine and detection quality on WIDER FACE.

Measures, and prints as tables:
1. latency p50/p95 of DetectFaces end to end (boto3 -> HTTP -> `opsis serve`, started here as a
   subprocess on a free port with a temporary data dir), of the model alone (`analyze` in-process
   with a `RetinaFaceDetector`) and of decoding, on a 640x480 one-face photo and a 1024-px crowd;
2. requests/s with 4 concurrent clients (threads, one boto3 client each) on the one-face photo;
3. recall, precision and AP per official WIDER setting (easy/medium/hard) on `faces/crowd/wider`,
   as DetectFaces answers (100 largest faces) and uncapped, hard recall by face height, and
   precision/recall per score threshold. Matching: detections by descending score, each to the box
   of highest IoU >= 0.5 among unmatched "care" boxes and all "don't care" ones: TP on a care box,
   ignored on a don't-care box, else FP. AP: all-point area under the PR curve over all images;
4. `uptime` at start and end, and the ONNX Runtime threads / inference workers used.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
from common import argument_parser, client, percentiles, server, timed, uptime
from numpy.typing import NDArray
from PIL import Image
from rich.console import Console
from rich.table import Table

from opsis.config import Settings
from opsis.vision.faces import MAX_FACES, analyze, find_faces, largest
from opsis.vision.image import decode_image
from opsis.vision.runners.retinaface import CANDIDATE_SCORE, RetinaFaceDetector
from opsis.vision.types import Detections, box_iou

ONE_FACE = "faces/identities/face_recognition/images/obama/obama-480p.jpg"
WIDER = "faces/crowd/wider"
LEVELS = {"easy": 4, "medium": 5, "hard": 6}
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)
BANDS = (("<16 px", 0, 16), ("16-40 px", 16, 41), (">40 px", 41, 100_000))  # [low, high), heights are ints
IOU = 0.5
console = Console(width=150)
Sample = tuple[NDArray[np.float32], Detections]  # (ground-truth rows, detections) of one image


def one_face_jpeg(data: Path) -> bytes:
    """The 853x480 Obama photo center-cropped to 640x480, JPEG quality 90."""
    with Image.open(data / ONE_FACE) as image:
        left = (image.width - 640) // 2
        crop = image.convert("RGB").crop((left, 0, left + 640, 480))
    out = io.BytesIO()
    crop.save(out, "JPEG", quality=90)
    return out.getvalue()


def throughput(url: str, credentials: Path, photo: bytes, clients: int, seconds: float) -> list[str]:
    """Requests/s, errors and latency with `clients` threads calling DetectFaces for `seconds`."""
    rekognitions = [client(url, credentials) for _ in range(clients)]
    times: list[float] = []
    errors: list[str] = []
    stop = time.monotonic() + seconds

    def loop(rekognition: Any) -> None:
        while time.monotonic() < stop:
            start = time.perf_counter()
            try:
                rekognition.detect_faces(Image={"Bytes": photo})
                times.append((time.perf_counter() - start) * 1000)
            except Exception as error:  # counted and reported, never fatal
                errors.append(type(error).__name__)

    began = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(loop, rekognitions))
    elapsed = time.perf_counter() - began
    kinds = ", ".join(sorted(set(errors))) or "-"
    return [
        str(clients),
        f"{elapsed:.1f}",
        str(len(times)),
        f"{len(errors)} ({kinds})",
        f"{len(times) / elapsed:.2f}",
        percentiles(times) if times else "-",
    ]


def latency_rows(photos: dict[str, tuple[bytes, int]], settings: Settings, http: Any) -> list[list[str]]:
    detector = RetinaFaceDetector(threads=settings.model_threads)
    rows = []
    for name, (photo, count) in photos.items():
        image = decode_image(photo)
        faces = len(analyze(image, detector))
        decode = timed(partial(decode_image, photo), count)
        model = timed(partial(analyze, image, detector), count)
        end_to_end = timed(partial(http.detect_faces, Image={"Bytes": photo}), count) if http else []
        http_ms = percentiles(end_to_end) if end_to_end else "skipped"
        rows.append(
            [
                name,
                f"{image.width}x{image.height}",
                str(faces),
                str(count),
                http_ms,
                percentiles(model),
                percentiles(decode),
            ]
        )
    return rows


def match(gt: NDArray[np.float32], care: NDArray[np.bool_], dets: Detections) -> tuple[NDArray[Any], ...]:
    """Scores by descending order, outcome per detection (1 TP, 0 FP, -1 ignored), care boxes found."""
    boxes = gt[:, :4].copy()
    boxes[:, 2:] += boxes[:, :2]
    found = np.zeros(len(gt), bool)
    order = np.argsort(-dets.confidence, kind="stable")
    outcome = np.zeros(len(order), np.int8)
    for rank, index in enumerate(order):
        iou = box_iou(dets.xyxy[index], boxes) if len(gt) else np.zeros(0, np.float32)
        candidates = np.where(~care | ~found, iou, -1.0)  # a care box is matched at most once
        best = int(np.argmax(candidates)) if len(gt) else -1
        if best >= 0 and candidates[best] >= IOU:
            found[best] = care[best]
            outcome[rank] = 1 if care[best] else -1
    return dets.confidence[order], outcome, found


def evaluate(samples: list[Sample], level: str) -> dict[str, Any]:
    """Box count, recall, precision, AP and the found mask over every gt row, for one setting."""
    cares = [gt[:, LEVELS[level]] > 0 for gt, _ in samples]
    parts = [match(gt, care, dets) for (gt, dets), care in zip(samples, cares, strict=True)]
    score, outcome, found = (np.concatenate(column) for column in zip(*parts, strict=True))
    positives = int(np.concatenate(cares).sum())
    tp, fp = int((outcome == 1).sum()), int((outcome == 0).sum())
    return {
        "gt": positives,
        "recall": tp / max(positives, 1),
        "precision": tp / max(tp + fp, 1),
        "ap": average_precision(score, outcome, positives),
        "found": found,
    }


def average_precision(score: NDArray[Any], outcome: NDArray[Any], positives: int) -> float:
    """All-point interpolated area under the PR curve, detections of every image sorted by score."""
    kept = outcome >= 0
    ordered = outcome[kept][np.argsort(-score[kept], kind="stable")]
    tp = np.cumsum(ordered == 1)
    recall = np.concatenate([[0.0], tp / max(positives, 1), [1.0]])
    precision = np.concatenate([[0.0], tp / np.arange(1, len(ordered) + 1), [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.where(recall[1:] != recall[:-1])[0]
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def wider_samples(data: Path, truth: dict[str, Any], limit: int, threads: int) -> dict[str, list[Sample]]:
    """Detections per variant: the operation's pipeline at the default threshold (capped by `analyze`,
    uncapped by `find_faces`) and the floor-threshold sweep (`find_faces`, capped afterwards)."""
    default = RetinaFaceDetector(threads=threads)
    floor = RetinaFaceDetector(threads=threads, score_threshold=CANDIDATE_SCORE)
    variants: dict[str, list[Sample]] = {"capped": [], "uncapped": [], "sweep": []}
    for path in list(truth)[:limit]:
        image = decode_image((data / path).read_bytes())
        gt = np.array(truth[path], np.float32).reshape(-1, 13)
        variants["capped"].append((gt, analyze(image, default)))
        variants["uncapped"].append((gt, find_faces(image, default)))
        variants["sweep"].append((gt, find_faces(image, floor)))
    return variants


def above(samples: list[Sample], threshold: float, capped: bool) -> list[Sample]:
    kept = [(gt, dets[dets.confidence >= threshold]) for gt, dets in samples]
    return [(gt, largest(dets, MAX_FACES)) for gt, dets in kept] if capped else kept


def quality_tables(variants: dict[str, list[Sample]]) -> list[Table]:
    sweep = variants["sweep"]
    columns = [f"{c} {m}" for c in ("cap100", "uncapped") for m in ("recall", "precision", "AP")]
    headline = Table(
        "setting",
        "gt boxes",
        *columns,
        title=f"WIDER FACE subset ({len(sweep)} photos), threshold 0.5; AP over detections >= {CANDIDATE_SCORE}",
    )
    for level in LEVELS:
        cells = [str(evaluate(variants["capped"], level)["gt"])]
        for key, capped in (("capped", True), ("uncapped", False)):
            result = evaluate(variants[key], level)
            ap = evaluate(above(sweep, CANDIDATE_SCORE, capped), level)["ap"]
            cells += [f"{result['recall']:.3f}", f"{result['precision']:.3f}", f"{ap:.3f}"]
        headline.add_row(level, *cells)
    return [headline, band_table(variants), threshold_table(sweep)]


def band_table(variants: dict[str, list[Sample]]) -> Table:
    heights = np.concatenate([gt[:, 3] for gt, _ in variants["capped"]])
    hard = np.concatenate([gt[:, LEVELS["hard"]] > 0 for gt, _ in variants["capped"]])
    found = {key: evaluate(variants[key], "hard")["found"] for key in ("capped", "uncapped")}
    table = Table(
        "face height",
        "hard boxes",
        "recall cap100",
        "recall uncapped",
        title="Recall on 'hard' boxes by face height (threshold 0.5)",
    )
    for name, low, high in BANDS:
        band = hard & (heights >= low) & (heights < high)
        table.add_row(
            name, str(int(band.sum())), *(f"{found[key][band].mean():.3f}" if band.any() else "-" for key in found)
        )
    return table


def threshold_table(sweep: list[Sample]) -> Table:
    metrics = ("P cap100", "R cap100", "P uncapped", "R uncapped")
    columns = [f"{level} {m}" for level in ("easy", "hard") for m in metrics]
    table = Table("threshold", *columns, title="Precision / recall by detector score threshold")
    for threshold in THRESHOLDS:
        cells = []
        for level in ("easy", "hard"):
            for capped in (True, False):
                result = evaluate(above(sweep, threshold, capped), level)
                cells += [f"{result['precision']:.3f}", f"{result['recall']:.3f}"]
        table.add_row(f"{threshold:.1f}", *cells)
    return table


def speed_tables(args: argparse.Namespace, data: Path, settings: Settings, crowd: str) -> list[Table]:
    counts = (10, 5) if args.quick else (args.n_one_face, args.n_crowd)
    photos = {
        "one face 640x480": (one_face_jpeg(data), counts[0]),
        f"crowd {Path(crowd).name[:28]}": ((data / crowd).read_bytes(), counts[1]),
    }
    latency = Table(
        "photo",
        "size",
        "faces",
        "N",
        "HTTP p50 / p95 ms",
        "model p50 / p95 ms",
        "decode p50 / p95 ms",
        title="DetectFaces latency (sequential, after warm-up)",
    )
    load = Table(
        "clients", "seconds", "ok", "errors", "req/s", "p50 / p95 ms", title="DetectFaces throughput, one-face photo"
    )
    with ExitStack() as stack:
        running = None if args.skip_http else stack.enter_context(server(settings))
        for row in latency_rows(photos, settings, client(*running) if running else None):
            latency.add_row(*row)
        if running is None:
            return [latency]
        seconds = 5.0 if args.quick else args.seconds
        load.add_row(*throughput(*running, photos["one face 640x480"][0], args.clients, seconds))
    return [latency, load]


def parse() -> argparse.Namespace:
    parser = argument_parser(__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer iterations, 5 s load, 30 WIDER photos")
    parser.add_argument("--skip-http", action="store_true", help="no server: model and decode timings only")
    parser.add_argument("--model-threads", type=int, help="ONNX Runtime intra-op threads per request")
    parser.add_argument("--workers", type=int, help="requests running models at once in the server")
    parser.add_argument("--n-one-face", type=int, default=50)
    parser.add_argument("--n-crowd", type=int, default=20)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=15.0)
    return parser.parse_args()


def main() -> None:
    args = parse()
    data = args.data.resolve()
    if not (data / WIDER / "gt.json").is_file() or not (data / ONE_FACE).is_file():
        console.print(f"Skipped: shared data not found at {data} (pass --data or set OPSIS_SHARED_DATA).")
        return
    settings = Settings.load(model_threads=args.model_threads, inference_workers=args.workers)
    began, load_before = time.perf_counter(), uptime()
    truth = json.loads((data / WIDER / "gt.json").read_text())
    tables = speed_tables(args, data, settings, max(truth, key=lambda path: len(truth[path])))
    tables += quality_tables(wider_samples(data, truth, 30 if args.quick else len(truth), settings.model_threads))
    env = Table("", "value", title="Machine and settings")
    for name, value in (
        ("cores", str(os.cpu_count())),
        ("onnxruntime", onnxruntime.__version__),
        ("model_threads (ORT intra-op)", str(settings.model_threads)),
        ("inference_workers", str(settings.inference_workers)),
        ("uptime at start", load_before),
        ("uptime at end", uptime()),
        ("total run time", f"{time.perf_counter() - began:.0f} s"),
    ):
        env.add_row(name, value)
    for table in [env, *tables]:
        console.print(table)


if __name__ == "__main__":
    main()
