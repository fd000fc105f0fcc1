"""DetectProtectiveEquipment benchmark (issue #5): speed on this machine, and persons against COCO boxes.

Measures, and prints as tables:
1. latency p50/p95 of DetectProtectiveEquipment end to end (boto3 -> HTTP -> `opsis serve`, started
   here as a subprocess) on a COCO street photo and a two-person photo;
2. person recall at IoU >= 0.5 against the COCO "person" boxes of labels/coco_val2017 and
   labels/coco8 (all boxes, and boxes covering >= 1% of the photo), and precision (returned persons
   matching a COCO person box; COCO leaves some people unlabelled, so it is a lower bound), plus the
   share of matched persons that have a FACE part;
3. equipment accuracy is measured elsewhere: FACE_COVER on painted masks by face_cover.py;
   HEAD_COVER (and the unshipped HAND_COVER) on hand-labelled real crops by train_head_hand_cover.py;
4. `uptime` at start and end, and the threads used.
"""

from __future__ import annotations

import json
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from common import argument_parser, client, percentiles, server, timed, uptime
from PIL import Image
from rich.console import Console
from rich.table import Table

from opsis.config import Settings
from opsis.vision.types import box_iou

console = Console()
COCO_VAL = "labels/coco_val2017"
COCO8 = "labels/coco8"
STREET = "labels/coco_val2017/images/000000017627.jpg"
TWO_PEOPLE = "faces/identities/face_recognition/images/multi/two_people.jpg"
MATCH_IOU = 0.5
LARGE_SHARE = 0.01
COCO_PERSON_ID = 1  # COCO's category id; YOLO's class 0
EQUIPMENT_NOTE = "FACE_COVER: face_cover.py (painted masks); HEAD_COVER, HAND_COVER: train_head_hand_cover.py"

Boxes = np.ndarray  # (n, 4) xyxy as ratios of the photo


def coco_persons(data: Path) -> dict[str, Boxes]:
    """Photo (relative to the data root) -> its COCO person boxes, from both COCO sets."""
    truth: dict[str, Boxes] = {}
    annotations = json.loads((data / COCO_VAL / "annotations.json").read_text())
    for image in annotations["images"]:
        width, height = image["width"], image["height"]
        boxes = [
            [x / width, y / height, (x + w) / width, (y + h) / height]
            for x, y, w, h in (
                a["bbox"]
                for a in annotations["annotations"]
                if a["image_id"] == image["id"] and a["category_id"] == COCO_PERSON_ID
            )
        ]
        truth[f"{COCO_VAL}/images/{image['file_name']}"] = np.asarray(boxes, np.float32).reshape(-1, 4)
    for labels in sorted((data / COCO8 / "labels").glob("*/*.txt")):
        rows = [line.split() for line in labels.read_text().splitlines() if line.strip()]
        boxes = [
            [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]
            for cls, cx, cy, w, h in ((int(r[0]), *map(float, r[1:5])) for r in rows)
            if cls == 0
        ]
        photo = labels.relative_to(data / COCO8 / "labels").with_suffix(".jpg")
        truth[f"{COCO8}/images/{photo}"] = np.asarray(boxes, np.float32).reshape(-1, 4)
    return truth


def returned_persons(response: dict[str, Any]) -> tuple[Boxes, list[bool]]:
    """The response's person boxes as xyxy ratios, and whether each has a FACE part."""
    boxes, faces = [], []
    for person in response["Persons"]:
        box = person["BoundingBox"]
        boxes.append([box["Left"], box["Top"], box["Left"] + box["Width"], box["Top"] + box["Height"]])
        faces.append(any(part["Name"] == "FACE" for part in person["BodyParts"]))
    return np.asarray(boxes, np.float32).reshape(-1, 4), faces


def greedy_matches(found: Boxes, truth: Boxes) -> list[tuple[int, int]]:
    """(found row, truth row) pairs at IoU >= MATCH_IOU, best overlaps first, each row used once."""
    pairs = sorted(
        (
            (float(iou), f, t)
            for f in range(len(found))
            for t, iou in enumerate(box_iou(found[f], truth))
            if iou >= MATCH_IOU
        ),
        reverse=True,
    )
    used_found: set[int] = set()
    used_truth: set[int] = set()
    matches = []
    for _, f, t in pairs:
        if f not in used_found and t not in used_truth:
            used_found.add(f)
            used_truth.add(t)
            matches.append((f, t))
    return matches


def recall_table(data: Path, rekognition: Any) -> Table:
    truth = coco_persons(data)
    counts = {"truth": 0, "large": 0, "found": 0, "found_large": 0, "returned": 0, "correct": 0, "with_face": 0}
    for photo, boxes in truth.items():
        response = rekognition.detect_protective_equipment(Image={"Bytes": (data / photo).read_bytes()})
        found, faces = returned_persons(response)
        matches = greedy_matches(found, boxes)
        large = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) >= LARGE_SHARE
        counts["truth"] += len(boxes)
        counts["large"] += int(large.sum())
        counts["found"] += len(matches)
        counts["found_large"] += sum(1 for _, t in matches if large[t])
        counts["returned"] += len(found)
        counts["correct"] += len(matches)
        counts["with_face"] += sum(1 for f, _ in matches if faces[f])
    table = Table("measure", "value", title=f"Persons vs COCO person boxes ({len(truth)} photos, IoU >= {MATCH_IOU})")
    table.add_row("recall, all person boxes", _ratio(counts["found"], counts["truth"]))
    table.add_row(f"recall, boxes >= {LARGE_SHARE:.0%} of the photo", _ratio(counts["found_large"], counts["large"]))
    table.add_row("precision (lower bound)", _ratio(counts["correct"], counts["returned"]))
    table.add_row("matched persons with a FACE part", _ratio(counts["with_face"], counts["found"]))
    table.add_row("equipment accuracy", EQUIPMENT_NOTE)
    return table


def _ratio(part: int, whole: int) -> str:
    return f"{part / whole:.3f} ({part}/{whole})" if whole else "n/a"


def speed_table(rekognition: Any, data: Path, runs: int) -> Table:
    table = Table("photo", "size", "persons", "p50 / p95 ms", title=f"DetectProtectiveEquipment latency ({runs} runs)")
    for photo in (STREET, TWO_PEOPLE):
        payload = (data / photo).read_bytes()
        attributes = {"MinConfidence": 80, "RequiredEquipmentTypes": ["FACE_COVER", "HEAD_COVER", "HAND_COVER"]}
        response = rekognition.detect_protective_equipment(Image={"Bytes": payload}, SummarizationAttributes=attributes)
        request: dict[str, Any] = {"Image": {"Bytes": payload}, "SummarizationAttributes": attributes}
        times = timed(partial(rekognition.detect_protective_equipment, **request), runs)
        with Image.open(data / photo) as image:
            size = f"{image.width}x{image.height}"
        table.add_row(photo, size, str(len(response["Persons"])), percentiles(times))
    return table


def main() -> None:
    args = argument_parser(__doc__, latency=True).parse_args()
    data: Path = args.data
    began, load_before = time.perf_counter(), uptime()
    settings = Settings.load(model_threads=args.threads, inference_workers=1)
    with server(settings) as (url, credentials):
        rekognition = client(url, credentials)
        tables = [speed_table(rekognition, data, args.runs), recall_table(data, rekognition)]
    env = Table("", "value", title="Machine and settings")
    for key, value in (
        ("models", f"{settings.object_detector} + {settings.pose_estimator} + {settings.face_detector}"),
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
