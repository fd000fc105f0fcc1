"""DetectLabels benchmark (issue #5): speed on this machine, COCO objects, and ImageNet label coverage.

Measures, and prints as tables:
1. latency p50/p95 of DetectLabels end to end (boto3 -> HTTP -> `opsis serve`, started here as a
   subprocess), with and without IMAGE_PROPERTIES, and of the detector alone in-process, on a
   640x480 COCO photo;
2. on the COCO photos (labels/coco_val2017 + labels/coco8): image-level label recall and precision
   (the object labels returned vs the COCO classes present), instance box recall at IoU >= 0.5 (all
   objects, and objects covering >= 5% of the photo) and instance precision, per MinConfidence;
   and AP50 over all classes pooled, beside NanoDet-m's published COCO mAP (0.5:0.95, 5,000
   val2017 photos; not the same measure, and a dozen photos are no test set);
3. on the ImageNet samples (labels/imagenet, one photo per class): which classes the label taxonomy
   can express at all, found through WordNet 3.0 (Debian's `wordnet-base`; ImageNet's wnids are its
   noun offsets): a taxonomy label describes a class if the label's synset is the class's or one of
   its hypernyms. "Object" classes have such a label that a detector class maps to ("Dog" for a
   collie), "ancestor only" ones only a parent label ("Mammal" for a jaguar). Recall is over the
   expressible classes: the most specific describing label returned, or any describing label;
4. `uptime` at start and end, and the threads used.
"""

from __future__ import annotations

import csv
import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from common import argument_parser, client, percentiles, server, timed, uptime
from PIL import Image
from rich.console import Console
from rich.table import Table

from opsis.config import Settings
from opsis.ops.taxonomy import Taxonomy, taxonomy
from opsis.vision.runners.nanodet import NanoDetDetector

COCO_VAL = "labels/coco_val2017"
COCO8 = "labels/coco8"
IMAGENET = "labels/imagenet"
SPEED_PHOTO = "labels/coco_val2017/images/000000017627.jpg"
WORDNET_NOUNS = Path("/usr/share/wordnet/data.noun")
THRESHOLDS = (30.0, 40.0, 55.0)
PUBLISHED_MAP = 23.5  # NanoDet-m 416, COCO val2017 mAP 0.5:0.95 (RangiLyu/nanodet README)
LARGE_SHARE = 0.05
console = Console(width=150)

Box = tuple[float, float, float, float]  # xyxy, ratios of the image size


@dataclass(frozen=True)
class Instance:
    label: str
    confidence: float
    box: Box


# --- ground truth ----------------------------------------------------------------------------------


def coco_truth(data: Path) -> dict[str, list[tuple[str, Box]]]:
    """photo (relative to the data root) -> its objects: (COCO class, box)."""
    truth: dict[str, list[tuple[str, Box]]] = {}
    annotations = json.loads((data / COCO_VAL / "annotations.json").read_text())
    classes = {c["id"]: c["name"] for c in annotations["categories"]}
    for image in annotations["images"]:
        w, h = image["width"], image["height"]
        truth[f"{COCO_VAL}/images/{image['file_name']}"] = [
            (classes[a["category_id"]], (a["bbox"][0] / w, a["bbox"][1] / h, (a["bbox"][0] + a["bbox"][2]) / w,
                                         (a["bbox"][1] + a["bbox"][3]) / h))
            for a in annotations["annotations"]
            if a["image_id"] == image["id"] and not a.get("iscrowd")
        ]  # fmt: skip
    names = dict(re.findall(r"^\s+(\d+): (.+)$", (data / COCO8 / "coco8.yaml").read_text(), re.MULTILINE))
    for label_file in sorted((data / COCO8 / "labels").glob("*/*.txt")):
        rows = [line.split() for line in label_file.read_text().splitlines() if line.strip()]
        boxes = [(names[c].strip(), [float(v) for v in rest]) for c, *rest in rows]
        truth[f"{COCO8}/images/{label_file.parent.name}/{label_file.stem}.jpg"] = [
            (name, (cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2)) for name, (cx, cy, bw, bh) in boxes
        ]
    return truth


def iou(a: Box, b: Box) -> float:
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def instances(response: dict[str, Any]) -> list[Instance]:
    found = []
    for label in response["Labels"]:
        for instance in label["Instances"]:
            box = instance["BoundingBox"]
            xyxy = (box["Left"], box["Top"], box["Left"] + box["Width"], box["Top"] + box["Height"])
            found.append(Instance(label["Name"], instance["Confidence"], xyxy))
    return found


# --- COCO --------------------------------------------------------------------------------------------


def coco_table(truth: dict[str, list[tuple[str, Box]]], responses: dict[str, dict[str, Any]], names: Taxonomy) -> Table:
    to_label = names.detectors[NanoDetDetector.name]
    table = Table(
        "MinConfidence", "label recall", "label precision", "box recall (all)", f"box recall (>= {LARGE_SHARE:.0%})",
        "box precision", "instances", title=f"COCO photos ({len(truth)} photos, "
        f"{sum(len(v) for v in truth.values())} objects): labels and boxes at IoU >= 0.5",
    )  # fmt: skip
    for threshold in THRESHOLDS:
        counts = np.zeros(8)
        for photo, objects in truth.items():
            found = [i for i in instances(responses[photo]) if i.confidence >= threshold]
            counts += coco_counts(objects, found, to_label)
        hit, present, right, labels_said, boxes, total, large_hit, large = counts
        said = _said(responses, threshold)
        table.add_row(
            f"{threshold:.0f}", _share(hit, present), _share(right, labels_said), _share(boxes, total),
            _share(large_hit, large), _share(_matched(truth, responses, threshold, to_label), said),
            f"{said:.0f}",
        )  # fmt: skip
    return table


def coco_counts(objects: list[tuple[str, Box]], found: list[Instance], to_label: Mapping[str, str]) -> np.ndarray:
    """(labels hit, labels present, labels right, labels said, boxes found, boxes, large found, large)."""
    present = {to_label[name] for name, _ in objects}
    said = {i.label for i in found}
    hits = [any(i.label == to_label[name] and iou(i.box, box) >= 0.5 for i in found) for name, box in objects]
    large = [(b[2] - b[0]) * (b[3] - b[1]) >= LARGE_SHARE for _, b in objects]
    return np.array([
        len(present & said), len(present), len(said & present), len(said), sum(hits), len(objects),
        sum(h for h, big in zip(hits, large, strict=True) if big), sum(large),
    ], float)  # fmt: skip


def _matched(truth: dict[str, Any], responses: dict[str, Any], threshold: float, to_label: Mapping[str, str]) -> float:
    """Instances at or above the threshold on an annotated object of their class (greedy, one each)."""
    matched = 0
    for photo, objects in truth.items():
        free = list(objects)
        for found in sorted(instances(responses[photo]), key=lambda i: -i.confidence):
            if found.confidence < threshold:
                continue
            best = max(free, key=lambda o: iou(found.box, o[1]) if to_label[o[0]] == found.label else -1, default=None)
            if best is not None and to_label[best[0]] == found.label and iou(found.box, best[1]) >= 0.5:
                free.remove(best)
                matched += 1
    return matched


def _said(responses: dict[str, Any], threshold: float) -> float:
    return float(sum(i.confidence >= threshold for r in responses.values() for i in instances(r)))


def pooled_ap50(
    truth: dict[str, list[tuple[str, Box]]], responses: dict[str, Any], to_label: Mapping[str, str]
) -> float:
    """All-point AP at IoU 0.5 over every class pooled, every detection the server returned."""
    outcomes: list[tuple[float, bool]] = []
    for photo, objects in truth.items():
        free = list(objects)
        for found in sorted(instances(responses[photo]), key=lambda i: -i.confidence):
            candidates = [o for o in free if to_label[o[0]] == found.label]
            best = max(candidates, key=lambda o: iou(found.box, o[1]), default=None)
            hit = best is not None and iou(found.box, best[1]) >= 0.5
            if hit and best is not None:
                free.remove(best)
            outcomes.append((found.confidence, hit))
    outcomes.sort(key=lambda o: -o[0])
    hits = np.cumsum([hit for _, hit in outcomes])
    precision = hits / np.arange(1, len(outcomes) + 1)
    recall = hits / sum(len(v) for v in truth.values())
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    return float(np.sum(np.diff(np.concatenate([[0.0], recall])) * envelope))


def _share(part: float, whole: float) -> str:
    return f"{part / whole:.2f} ({part:.0f}/{whole:.0f})" if whole else "-"


# --- ImageNet ------------------------------------------------------------------------------------


def wordnet_hypernyms(path: Path) -> dict[str, list[str]]:
    """noun offset -> its direct hypernyms (including instance hypernyms), from WordNet's data.noun."""
    hypernyms: dict[str, list[str]] = {}
    for line in path.read_text(encoding="latin-1").splitlines():
        if line.startswith("  "):  # the licence header
            continue
        fields = line.split(" ")
        words = int(fields[3], 16)
        pointer = 4 + 2 * words
        count = int(fields[pointer])
        pointers = [fields[pointer + 1 + 4 * i : pointer + 5 + 4 * i] for i in range(count)]
        hypernyms[fields[0]] = [offset for symbol, offset, pos, _ in pointers if symbol in ("@", "@i") and pos == "n"]
    return hypernyms


def closure(offset: str, hypernyms: dict[str, list[str]]) -> set[str]:
    seen, stack = {offset}, [offset]
    while stack:
        for parent in hypernyms.get(stack.pop(), []):
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return seen


def describing_labels(wnid: str, hypernyms: dict[str, list[str]], names: Taxonomy) -> set[str]:
    """The taxonomy labels whose WordNet synset is the class's or a hypernym of it."""
    synsets = closure(wnid.removeprefix("n"), hypernyms)
    return {label.name for label in names.labels.values() if label.wordnet in synsets}


def imagenet_tables(data: Path, rekognition: Any, names: Taxonomy) -> list[Table]:
    if not WORDNET_NOUNS.exists():
        note = Table("ImageNet coverage needs WordNet 3.0: apt-get install wordnet-base", title="ImageNet")
        return [note]
    hypernyms = wordnet_hypernyms(WORDNET_NOUNS)
    object_labels = set(names.detectors[NanoDetDetector.name].values())
    rows = list(csv.DictReader((data / IMAGENET / "labels.csv").open()))
    results = []
    for row in rows:
        targets = describing_labels(row["wnid"], hypernyms, names)
        deepest = {t for t in targets if not any(t in names.labels[o].ancestors for o in targets)}
        response = rekognition.detect_labels(Image={"Bytes": (data / row["path"]).read_bytes()}, MinConfidence=30)
        results.append((row["label"], targets, deepest, response["Labels"]))
    title = f"ImageNet samples: what the taxonomy can express ({len(rows)} classes)"
    coverage = Table("classes", "count", "share", title=title)
    objects = [r for r in results if r[1] & object_labels]
    ancestors = [r for r in results if r[1] and not r[1] & object_labels]
    for name, group in (("object label (a detector class)", objects), ("ancestor label only", ancestors),
                        ("nothing", [r for r in results if not r[1]])):  # fmt: skip
        coverage.add_row(name, str(len(group)), f"{len(group) / len(rows):.0%}")
    recall = Table("classes", "MinConfidence", "most specific label", "any describing label", "some other object label",
                   title="ImageNet recall over the expressible classes")  # fmt: skip
    for name, group in (("object", objects), ("ancestor only", ancestors)):
        for threshold in THRESHOLDS:
            said = [{label["Name"] for label in labels if label["Confidence"] >= threshold} for *_, labels in group]
            specific = sum(bool(deepest & s) for (_, _, deepest, _), s in zip(group, said, strict=True))
            anything = sum(bool(targets & s) for (_, targets, _, _), s in zip(group, said, strict=True))
            other = sum(bool((s & object_labels) - targets) for (_, targets, _, _), s in zip(group, said, strict=True))
            recall.add_row(name, f"{threshold:.0f}", _share(specific, len(group)), _share(anything, len(group)),
                           _share(other, len(group)))  # fmt: skip
    examples = Table("class", "describing labels (most specific)", "returned at 55", title="ImageNet: object classes")
    for label, _, deepest, labels in objects:
        returned = [f"{x['Name']} {x['Confidence']:.0f}" for x in labels if x["Confidence"] >= 55 and x["Instances"]]
        examples.add_row(label, ", ".join(sorted(deepest)), ", ".join(returned))
    return [coverage, recall, examples]


# --- speed ---------------------------------------------------------------------------------------


def speed_table(rekognition: Any, data: Path, settings: Settings, runs: int) -> Table:
    photo = (data / SPEED_PHOTO).read_bytes()
    detector = NanoDetDetector(settings.model_cache_dir, threads=settings.model_threads)
    pixels = np.asarray(Image.open(data / SPEED_PHOTO).convert("RGB"))
    table = Table("what", "p50 / p95 ms", title=f"Latency on a 640x480 COCO photo ({runs} runs after 3 warm-up)")
    calls: Iterable[tuple[str, Any]] = (
        ("DetectLabels (GENERAL_LABELS), boto3 -> HTTP", lambda: rekognition.detect_labels(Image={"Bytes": photo})),
        (
            "DetectLabels + IMAGE_PROPERTIES, boto3 -> HTTP",
            lambda: rekognition.detect_labels(Image={"Bytes": photo}, Features=["GENERAL_LABELS", "IMAGE_PROPERTIES"]),
        ),
        ("NanoDet-m alone (in-process: resize, ONNX, decode, NMS)", lambda: detector.detect(pixels)),
    )
    for name, call in calls:
        table.add_row(name, percentiles(timed(call, runs)))
    return table


def main() -> None:
    args = argument_parser(__doc__, latency=True).parse_args()
    data: Path = args.data
    began, load_before = time.perf_counter(), uptime()
    settings = Settings.load(model_threads=args.threads, inference_workers=1)
    names = taxonomy()
    tables: list[Table] = []
    with server(settings) as (url, credentials):
        rekognition = client(url, credentials)
        tables.append(speed_table(rekognition, data, settings, args.runs))
        truth = coco_truth(data)
        responses = {
            photo: rekognition.detect_labels(Image={"Bytes": (data / photo).read_bytes()}, MinConfidence=0)
            for photo in truth
        }
        tables.append(coco_table(truth, responses, names))
        ap50 = pooled_ap50(truth, responses, names.detectors[NanoDetDetector.name])
        tables.extend(imagenet_tables(data, rekognition, names))
    env = Table("", "value", title="Machine and settings")
    for key, value in (
        ("COCO AP50, all classes pooled (these photos)", f"{ap50:.3f}"),
        ("published: NanoDet-m 416 COCO val2017 mAP 0.5:0.95", f"{PUBLISHED_MAP}"),
        ("model", f"{NanoDetDetector.version} + {names.version}"),
        ("ONNX Runtime threads / inference workers", f"{settings.model_threads} / {settings.inference_workers}"),
        ("uptime at start", load_before),
        ("uptime at end", uptime()),
        ("wall time", f"{time.perf_counter() - began:.0f} s"),
    ):
        env.add_row(key, value)
    for table in [*tables, env]:
        console.print(table)


if __name__ == "__main__":
    main()
