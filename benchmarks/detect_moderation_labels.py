"""DetectModerationLabels benchmark: speed, and false positives on every shared photo.

None of the shared photos is explicit, so every label is a false positive, and recall cannot be
measured (there is no explicit data here, and none may be fetched). Measures, and prints:

1. False positives. The most confident moderation label of every JPEG/PNG under the data root with
   both sides at least 80 px (DetectModerationLabels' minimum; smaller images, such as FER2013's
   48x48 crops, are counted and left out), scored in-process by the runner Opsis uses (--moderator;
   for open_nsfw, "Explicit" with P(nsfw) x 100). Count and rate of photos labelled at MinConfidence
   20 (Yahoo: P(nsfw) below 0.2 is "safe with high probability"), 50 (the default) and 80 (Yahoo:
   above 0.8 "NSFW with high probability"), with a 95% upper bound on the rate (Wilson). Split by
   benchmarks/labels/moderation_suggestive.csv: every
   shared photo scoring 0.2 or more was looked at and marked 1 when it shows swimwear, underwear, a
   bare torso or implied / partial nudity (what Rekognition files under "Swimwear or Underwear" or
   "Non-Explicit Nudity of Intimate parts and Kissing", not "Explicit"); photos of another split
   have no mark and count as "unlabelled". Per data set, and the worst offenders.
2. Speed: the runner alone (pre-processing + network, decoding excluded) p50/p95 over every scored
   photo, and DetectModerationLabels end to end (boto3 -> HTTP -> `opsis serve`, a subprocess on a
   temporary data dir) p50/p95 over a fixed sample of photos, each sent once after a warm-up.
3. `uptime` at start and end, and the ONNX Runtime threads.

    .venv/bin/python benchmarks/detect_moderation_labels.py [--data ../shared/data] [--quick] \
        [--moderator open-nsfw|nudenet-320n]
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime
from common import argument_parser, client, percentiles, server, uptime
from PIL import Image
from rich.console import Console
from rich.table import Table

from opsis.config import Settings
from opsis.ops.images import MIN_IMAGE_SIDE
from opsis.ops.moderation import TAXONOMY, label_confidences
from opsis.vision import registry
from opsis.vision.cache import ModelCache
from opsis.vision.image import decode_image
from opsis.vision.runners.base import ContentModerator

SUFFIXES = (".jpg", ".jpeg", ".png")
LABELS = Path(__file__).resolve().parent / "labels" / "moderation_suggestive.csv"
THRESHOLDS = (20.0, 50.0, 80.0)
DEFAULT_MIN_CONFIDENCE = 50.0
API_SAMPLE = 80
WORST = 15
QUICK_PHOTOS = 300
console = Console(width=160)


@dataclass(frozen=True)
class Scored:
    path: str  # relative to the data root
    label: str  # the most confident moderation label ("" when the model gives none)
    confidence: float  # its Confidence, 0-100
    milliseconds: float  # runner alone

    @property
    def data_set(self) -> str:
        parts = self.path.split("/")
        return "/".join(parts[: min(3 if parts[0] == "faces" else 2, len(parts) - 1)])


def photos(data: Path) -> list[Path]:
    return sorted(path for path in data.rglob("*") if path.is_file() and path.suffix.lower() in SUFFIXES)


def is_big_enough(path: Path) -> bool:
    with Image.open(path) as image:
        return min(image.size) >= MIN_IMAGE_SIDE


def score(data: Path, paths: list[Path], moderator: ContentModerator) -> list[Scored]:
    scored = []
    for path in paths:
        pixels = decode_image(path.read_bytes()).pixels
        start = time.perf_counter()
        scores = moderator.moderate(pixels)
        elapsed = (time.perf_counter() - start) * 1000
        confidences = label_confidences(moderator.name, scores)
        # The most confident label, and of equally confident ones (a label and its parents) the most specific.
        label = max(confidences, key=lambda name: (confidences[name], TAXONOMY[name].level), default="")
        scored.append(Scored(str(path.relative_to(data)), label, confidences.get(label, 0.0), elapsed))
    return scored


def hand_labels() -> dict[str, bool]:
    with LABELS.open() as file:
        return {row["path"]: row["suggestive"] == "1" for row in csv.DictReader(file)}


def kind(path: str, labels: dict[str, bool]) -> str:
    if path not in labels:
        return "unlabelled"
    return "suggestive" if labels[path] else "other"


def wilson_upper(count: int, total: int, z: float = 1.96) -> float:
    """Upper end of the 95% Wilson interval of a rate."""
    if total == 0:
        return 1.0
    rate = count / total
    centre = rate + z * z / (2 * total)
    spread = z * math.sqrt(rate * (1 - rate) / total + z * z / (4 * total * total))
    return (centre + spread) / (1 + z * z / total)


def false_positive_table(scored: list[Scored], labels: dict[str, bool], skipped: int) -> Table:
    table = Table(
        "MinConfidence",
        "labelled photos",
        "rate",
        "95% upper bound",
        "suggestive",
        "other",
        "unlabelled",
        title=f"False positives (any label) on {len(scored)} non-explicit shared photos "
        f"({skipped} smaller than {MIN_IMAGE_SIDE} px left out)",
    )
    for threshold in THRESHOLDS:
        flagged = [s for s in scored if s.confidence >= threshold]
        kinds = Counter(kind(s.path, labels) for s in flagged)
        name = f"{threshold:.0f}" + (" (default)" if threshold == DEFAULT_MIN_CONFIDENCE else "")
        table.add_row(
            name,
            str(len(flagged)),
            f"{len(flagged) / len(scored):.2%}",
            f"{wilson_upper(len(flagged), len(scored)):.2%}",
            str(kinds["suggestive"]),
            str(kinds["other"]),
            str(kinds["unlabelled"]),
        )
    return table


def per_set_table(scored: list[Scored]) -> Table:
    table = Table("data set", "photos", "p50 / max confidence", ">= 20", ">= 50", title="Per data set")
    for data_set in sorted({s.data_set for s in scored}):
        confidences = np.array([s.confidence for s in scored if s.data_set == data_set])
        table.add_row(
            data_set,
            str(len(confidences)),
            f"{np.median(confidences):.2f} / {confidences.max():.1f}",
            str(int((confidences >= 20).sum())),
            str(int((confidences >= 50).sum())),
        )
    return table


def worst_table(scored: list[Scored], labels: dict[str, bool]) -> Table:
    table = Table("#", "label", "Confidence", "hand label", "photo", title=f"The {WORST} highest-scoring photos")
    for number, item in enumerate(sorted(scored, key=lambda s: -s.confidence)[:WORST], start=1):
        table.add_row(str(number), item.label, f"{item.confidence:.1f}", kind(item.path, labels), item.path)
    return table


def api_latency(data: Path, scored: list[Scored], settings: Settings) -> list[float]:
    """Milliseconds of DetectModerationLabels over boto3 on a spread of the scored photos."""
    sample = [data / s.path for s in scored[:: max(1, len(scored) // API_SAMPLE)]]
    with server(settings) as (url, credentials):
        rekognition = client(url, credentials)
        for path in sample[:3]:
            rekognition.detect_moderation_labels(Image={"Bytes": path.read_bytes()})
        times = []
        for path in sample:
            body = path.read_bytes()
            start = time.perf_counter()
            rekognition.detect_moderation_labels(Image={"Bytes": body})
            times.append((time.perf_counter() - start) * 1000)
    return times


def speed_table(scored: list[Scored], api: list[float], moderator: ContentModerator) -> Table:
    table = Table("what", "photos", "p50 / p95 ms", title="Speed")
    runner = f"{moderator.name} runner (pre-processing + network)"
    table.add_row(runner, str(len(scored)), percentiles([s.milliseconds for s in scored]))
    table.add_row("DetectModerationLabels, boto3 over HTTP", str(len(api)), percentiles(api))
    table.add_row("MODELS.md (open-nsfw / nudenet-320n, loaded machine)", "", "~240 / ~480")
    return table


def parse() -> argparse.Namespace:
    parser = argument_parser(__doc__)
    parser.add_argument("--quick", action="store_true", help=f"score {QUICK_PHOTOS} photos spread over the data")
    parser.add_argument("--model-threads", type=int, default=2)
    parser.add_argument("--moderator", choices=registry.CONTENT_MODERATORS, default="open-nsfw")
    return parser.parse_args()


def main() -> None:
    args = parse()
    data = args.data.resolve()
    if not (data / "misc").is_dir():
        console.print(f"Skipped: shared data not found at {data} (pass --data or set OPSIS_SHARED_DATA).")
        return
    os.environ["OPSIS_CONTENT_MODERATOR"] = args.moderator  # for the server the benchmark starts
    settings = Settings.load(model_threads=args.model_threads, content_moderator=args.moderator)
    began, load_before = time.perf_counter(), uptime()
    every = photos(data)
    usable = [path for path in every if is_big_enough(path)]
    skipped = len(every) - len(usable)
    if args.quick:
        usable = usable[:: max(1, len(usable) // QUICK_PHOTOS)]
    moderator = registry.content_moderator(ModelCache(), settings.content_moderator, settings.model_threads)
    scored = score(data, usable, moderator)
    labels = hand_labels()
    api = api_latency(data, scored, settings)
    env = Table("", "value", title="Machine and settings")
    for name, value in (
        ("cores", str(os.cpu_count())),
        ("onnxruntime", onnxruntime.__version__),
        ("model", moderator.version),
        ("model_threads (ORT intra-op)", str(settings.model_threads)),
        ("uptime at start", load_before),
        ("uptime at end", uptime()),
        ("total run time", f"{time.perf_counter() - began:.0f} s"),
    ):
        env.add_row(name, value)
    for table in (
        env,
        speed_table(scored, api, moderator),
        false_positive_table(scored, labels, skipped),
        per_set_table(scored),
        worst_table(scored, labels),
    ):
        console.print(table)
    console.print(
        "Recall is not measured: the shared data holds no explicit photo. Published anchors (yahoo/open_nsfw): "
        "P(nsfw) < 0.2 safe with high probability, > 0.8 NSFW with high probability; no accuracy figure. "
        "For NudeNet none is quoted here."
    )


if __name__ == "__main__":
    main()
