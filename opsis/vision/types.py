"""Value types that travel through the vision pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

Columns = dict[str, NDArray[Any]]


@dataclass(frozen=True)
class DecodedImage:
    """An upright RGB image and what decoding it did.

    `pixels` is (h, w, 3) uint8 RGB with any EXIF orientation already applied, so every coordinate
    the pipeline produces refers to the image as a person sees it.
    """

    pixels: NDArray[np.uint8]
    format: str  # "JPEG" or "PNG"
    exif_orientation: int | None = None  # the EXIF tag that was applied (1-8), None if absent

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])


@dataclass(frozen=True)
class Detections:
    """Boxes found in one image, with per-row extras (supervision's `Detections`, typed).

    `xyxy` is (n, 4) in pixels of the upright image, `confidence` (n,) in 0-1, `landmarks` (n, k, 2)
    in pixels, and `data` holds further per-row columns (pose, quality, embeddings, ...).
    """

    xyxy: NDArray[np.float32]
    confidence: NDArray[np.float32]
    landmarks: NDArray[np.float32] | None = None
    data: Columns = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.xyxy)
        if self.xyxy.shape != (n, 4):
            raise ValueError(f"xyxy must be (n, 4), got {self.xyxy.shape}")
        if self.confidence.shape != (n,):
            raise ValueError(f"confidence must be ({n},), got {self.confidence.shape}")
        if self.landmarks is not None and (self.landmarks.ndim != 3 or len(self.landmarks) != n):
            raise ValueError(f"landmarks must be ({n}, k, 2), got {self.landmarks.shape}")
        for name, column in self.data.items():
            if len(column) != n:
                raise ValueError(f"data column {name!r} has {len(column)} rows, expected {n}")

    @classmethod
    def empty(cls, landmark_count: int = 0) -> Detections:
        landmarks = np.zeros((0, landmark_count, 2), np.float32) if landmark_count else None
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), landmarks)

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: NDArray[Any] | slice | list[int]) -> Detections:
        """Rows selected by an index array, a boolean mask or a slice."""
        return Detections(
            xyxy=self.xyxy[index],
            confidence=self.confidence[index],
            landmarks=None if self.landmarks is None else self.landmarks[index],
            data={name: column[index] for name, column in self.data.items()},
        )

    @property
    def area(self) -> NDArray[np.float32]:
        wh = np.clip(self.xyxy[:, 2:] - self.xyxy[:, :2], 0, None)
        area: NDArray[np.float32] = (wh[:, 0] * wh[:, 1]).astype(np.float32)
        return area

    def with_columns(self, **columns: NDArray[Any]) -> Detections:
        """A copy with extra (or replaced) per-row data columns."""
        return Detections(self.xyxy, self.confidence, self.landmarks, {**self.data, **columns})

    @staticmethod
    def merge(parts: list[Detections]) -> Detections:
        """Concatenate detections from several passes over one image (same columns in each)."""
        if not parts:
            return Detections.empty()
        landmarks = None
        if all(p.landmarks is not None for p in parts):
            landmarks = np.concatenate([p.landmarks for p in parts if p.landmarks is not None])
        names = set.intersection(*(set(p.data) for p in parts))
        return Detections(
            xyxy=np.concatenate([p.xyxy for p in parts]),
            confidence=np.concatenate([p.confidence for p in parts]),
            landmarks=landmarks,
            data={name: np.concatenate([p.data[name] for p in parts]) for name in names},
        )

    def nms(self, iou_threshold: float) -> Detections:
        """Greedy non-maximum suppression, highest confidence first."""
        order = np.argsort(-self.confidence, kind="stable")
        keep: list[int] = []
        boxes = self.xyxy
        while order.size:
            best, rest = order[0], order[1:]
            keep.append(int(best))
            order = rest[box_iou(boxes[best], boxes[rest]) <= iou_threshold]
        return self[np.array(keep, dtype=np.int64)]


def box_iou(box: NDArray[np.float32], boxes: NDArray[np.float32]) -> NDArray[np.float32]:
    """IoU of one xyxy box against (n, 4) boxes."""
    top_left = np.maximum(box[:2], boxes[:, :2])
    bottom_right = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=1)
    area = np.prod(box[2:] - box[:2])
    areas = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    overlap: NDArray[np.float32] = (inter / np.maximum(area + areas - inter, 1e-9)).astype(np.float32)
    return overlap


@dataclass(frozen=True)
class TextReading:
    """The text read in one image: its lines, and the words each line splits into.

    Both are Detections whose `landmarks` are (n, 4, 2) quadrilaterals in pixels, in reading order
    (the text's top-left, top-right, bottom-right, bottom-left as a reader sees it, so a rotated
    line keeps a rotated quad) and whose `xyxy` is the quad's axis-aligned box. `data["text"]` is
    an object array of str in both; `words.data["line"]` (int64) is the row of the word's line.
    Lines come in reading order (top to bottom, then left to right), words in order along each line.
    """

    lines: Detections
    words: Detections
