"""People pathing benchmark: tracking accuracy on the MOT17 mini, speed, and indexes on the intel video.

Measures, and prints as tables, for each person-search coverage of `opsis.vision.tracking`:
1. MOTA, IDF1, ID switches, precision and recall on video/mot17_mini (motmetrics; ground truth
   rows of class 1 (pedestrian) with consider = 1, IoU >= 0.5; a prediction matched to another
   ground-truth row (distractor, static person, reflection, consider = 0) is dropped first, as the
   MOT devkit does). The mini holds only 4-8 consecutive frames per sequence (30 fps, mostly
   1920x1080), so ID figures over so few frames say little: per-sequence rows show the spread;
2. speed: ms per frame (person search + tracking, and + faces) on 1280x720 frames (the MOT frames
   resized) and the multiple of real time at 5 sampled frames a second; the whole intel video
   (768x432, decoding included) at 5 frames a second;
3. distinct person indexes on video/intel/one-by-one-person-detection.mp4, against the truth seen
   by eye: 6 persons, one at a time, each walking in, standing at the table and leaving
   (about 6-20, 23-45, 51-70, 75-87, 93-120 and 124-136 s);
4. `uptime` at start and end, and the threads used.
"""

from __future__ import annotations

import configparser
import time
from pathlib import Path
from typing import Any

import cv2
import motmetrics as mm
import numpy as np
from common import argument_parser, percentiles, uptime
from numpy.typing import NDArray
from PIL import Image
from rich.console import Console
from rich.table import Table
from scipy.optimize import linear_sum_assignment

from opsis.config import Settings
from opsis.ops.context import Context
from opsis.vision.faces import analyze
from opsis.vision.runners.base import FaceDetector, ObjectDetector
from opsis.vision.tracking import Coverage, PersonTracker, TrackedFrame, detect_persons, track_persons
from opsis.vision.types import DecodedImage
from opsis.vision.video import probe, sample_frames

console = Console(width=180)
MOT = "video/mot17_mini"
INTEL = "video/intel/one-by-one-person-detection.mp4"
INTEL_PERSONS = 6  # counted by eye (module docstring)
PEDESTRIAN = 1
MATCH_IOU = 0.5
SAMPLE_RATE = 5.0
HD = (1280, 720)
METRICS = ["mota", "idf1", "num_switches", "precision", "recall", "num_frames"]


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument(
        "--coverage", nargs="+", type=Coverage, default=list(Coverage), help="person-search coverages to compare"
    )
    parser.add_argument(
        "--intel-coverage",
        nargs="+",
        type=Coverage,
        default=[Coverage.WHOLE_FRAME, Coverage.TILED],
        help="coverages to run over the whole intel video (DENSE takes several minutes)",
    )
    args = parser.parse_args()
    began, load_before = time.perf_counter(), uptime()
    settings = Settings(data_dir=Path("/tmp/opsis-bench-track"))
    ctx = Context.create(settings)
    detector, faces = ctx.object_detector(), ctx.face_detector()

    accuracy(args.data / MOT, detector, args.coverage)
    speed(args.data, detector, faces, args.coverage)
    intel(args.data / INTEL, detector, args.intel_coverage)

    table = Table(title="Run")
    table.add_column("")
    table.add_column("value")
    for name, value in (
        ("model threads", str(settings.model_threads)),
        ("uptime at start", load_before),
        ("uptime at end", uptime()),
        ("wall time", f"{time.perf_counter() - began:.0f} s"),
    ):
        table.add_row(name, value)
    console.print(table)


def accuracy(root: Path, detector: ObjectDetector, coverages: list[Coverage]) -> None:
    table = Table(title=f"MOT17 mini: tracking accuracy (IoU >= {MATCH_IOU}, class 1, consider = 1)")
    for column in ("coverage", "sequence", "frames", "GT boxes", "MOTA", "IDF1", "ID sw", "precision", "recall"):
        table.add_column(column)
    sequences = sorted(path for path in root.iterdir() if (path / "gt" / "gt.txt").is_file())
    for coverage in coverages:
        accumulators, names = [], []
        for sequence in sequences:
            accumulators.append(track_sequence(sequence, detector, coverage))
            names.append(sequence.name.removesuffix("-FRCNN"))
        host = mm.metrics.create()
        summary = host.compute_many(accumulators, metrics=METRICS, names=names, generate_overall=True)
        for name, row in summary.iterrows():
            ground_truth = sum(
                int(acc.events["Type"].isin(["MATCH", "SWITCH", "MISS"]).sum())
                for acc, seq in zip(accumulators, names, strict=True)
                if name in (seq, "OVERALL")
            )
            table.add_row(
                coverage.value,
                str(name),
                str(int(row["num_frames"])),
                str(ground_truth),
                f"{row['mota']:.3f}",
                f"{row['idf1']:.3f}",
                str(int(row["num_switches"])),
                f"{row['precision']:.3f}",
                f"{row['recall']:.3f}",
            )
        table.add_section()
    console.print(table)


def track_sequence(sequence: Path, detector: ObjectDetector, coverage: Coverage) -> mm.MOTAccumulator:
    info = configparser.ConfigParser()
    info.read(sequence / "seqinfo.ini")
    rate = float(info["Sequence"]["frameRate"])
    truth = np.loadtxt(sequence / "gt" / "gt.txt", delimiter=",", ndmin=2)
    tracker = PersonTracker(rate)
    frames: list[TrackedFrame] = []
    for image in sorted((sequence / "img1").glob("*.jpg")):
        frames += tracker.update(int(image.stem), detect_persons(_rgb(image), detector, coverage))
    frames += tracker.finish()
    accumulator = mm.MOTAccumulator(auto_id=False)
    for frame in frames:  # timestamp_millis carries the MOT frame number here
        rows = truth[truth[:, 0] == frame.timestamp_millis]
        counted = (rows[:, 6] == 1) & (rows[:, 7] == PEDESTRIAN)
        boxes = np.array([person.xyxy for person in frame.persons], np.float32).reshape(-1, 4)
        kept = ~_matched_to_ignored(boxes, _xyxy(rows[:, 2:6]), counted)
        predicted = boxes[kept]
        indexes = [person.index for person, keep in zip(frame.persons, kept, strict=True) if keep]
        gt = rows[counted]
        distances = _distances(_xyxy(gt[:, 2:6]), predicted)
        accumulator.update(gt[:, 1].astype(int).tolist(), indexes, distances, frameid=frame.timestamp_millis)
    return accumulator


def _rgb(path: Path) -> NDArray[np.uint8]:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), np.uint8)


def _matched_to_ignored(boxes: NDArray[np.float32], truth: NDArray[np.float32], counted: NDArray[Any]) -> NDArray[Any]:
    """Predictions the best one-to-one IoU matching pairs with a ground-truth row not counted."""
    dropped = np.zeros(len(boxes), bool)
    if len(boxes) == 0 or len(truth) == 0:
        return dropped
    overlap = np.array([_iou(box, truth) for box in boxes])
    predictions, rows = linear_sum_assignment(-overlap)
    for prediction, row in zip(predictions, rows, strict=True):
        if overlap[prediction, row] >= MATCH_IOU and not counted[row]:
            dropped[prediction] = True
    return dropped


def _iou(box: NDArray[np.float32], boxes: NDArray[np.float32]) -> NDArray[np.float32]:
    top_left = np.maximum(box[:2], boxes[:, :2])
    bottom_right = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=1)
    union = np.prod(box[2:] - box[:2]) + np.prod(boxes[:, 2:] - boxes[:, :2], axis=1) - inter
    result: NDArray[np.float32] = (inter / np.maximum(union, 1e-9)).astype(np.float32)
    return result


def _xyxy(xywh: NDArray[Any]) -> NDArray[np.float32]:
    return np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1).astype(np.float32)


def _distances(truth: NDArray[np.float32], predicted: NDArray[np.float32]) -> NDArray[np.float64]:
    """1 - IoU, NaN (no match) below MATCH_IOU: motmetrics' `iou_matrix`, which calls the
    `np.asfarray` numpy 2 removed."""
    distances = np.full((len(truth), len(predicted)), np.nan)
    for row, box in enumerate(truth):
        if len(predicted):
            overlap = _iou(box, predicted)
            distances[row] = np.where(overlap >= MATCH_IOU, 1 - overlap, np.nan)
    return distances


def speed(data: Path, detector: ObjectDetector, face_detector: FaceDetector, coverages: list[Coverage]) -> None:
    """ms per 720p frame for the person search + tracking, and with faces added."""
    paths = sorted((data / MOT).glob("*/img1/*.jpg"))
    frames = [np.asarray(cv2.resize(_rgb(path), HD, interpolation=cv2.INTER_AREA), np.uint8) for path in paths]
    table = Table(title=f"Speed: {len(frames)} MOT17 frames resized to {HD[0]}x{HD[1]}, one tracker over them all")
    for column in ("coverage", "faces", "ms / frame p50 / p95", "x real time at 5 fps (p50)", "CPU ms / frame (mean)"):
        table.add_column(column)
    for coverage in coverages:
        for with_faces in (False, True):
            tracker = PersonTracker(SAMPLE_RATE)
            times, cpu = [], []
            for number, pixels in enumerate(frames):
                start, start_cpu = time.perf_counter(), time.process_time()
                persons = detect_persons(pixels, detector, coverage)
                faces = analyze(DecodedImage(pixels, "video"), face_detector) if with_faces else None
                tracker.update(number * 200, persons, faces)
                times.append((time.perf_counter() - start) * 1000)
                cpu.append((time.process_time() - start_cpu) * 1000)
            ms = times[2:]  # the first frames warm the sessions up
            table.add_row(
                coverage.value,
                "yes" if with_faces else "no",
                percentiles(ms),
                f"{200 / np.median(ms):.2f}",
                f"{np.mean(cpu[2:]):.0f}",
            )
    console.print(table)


def intel(path: Path, detector: ObjectDetector, coverages: list[Coverage]) -> None:
    metadata = probe(path)
    seconds = metadata.duration_millis / 1000
    table = Table(
        title=f"Intel one-by-one video ({metadata.frame_width}x{metadata.frame_height}, {seconds:.0f} s) at "
        f"{SAMPLE_RATE:g} frames/s, decoding included; truth: {INTEL_PERSONS} persons"
    )
    for column in ("coverage", "indexes", "frames with a person", "ms / frame", "x real time", "index: first-last s"):
        table.add_column(column)
    for coverage in coverages:
        start = time.perf_counter()
        frames = list(track_persons(sample_frames(path, SAMPLE_RATE), detector, SAMPLE_RATE, coverage))
        elapsed = time.perf_counter() - start
        spans: dict[int, list[int]] = {}
        for frame in frames:
            for person in frame.persons:
                spans.setdefault(person.index, []).append(frame.timestamp_millis)
        table.add_row(
            coverage.value,
            str(len(spans)),
            str(sum(1 for frame in frames if frame.persons)),
            f"{elapsed * 1000 / len(frames):.0f}",
            f"{seconds / elapsed:.2f}",
            ", ".join(f"{index}: {min(t) / 1000:.1f}-{max(t) / 1000:.1f}" for index, t in sorted(spans.items())),
        )
    console.print(table)


if __name__ == "__main__":
    main()
