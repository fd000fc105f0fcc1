"""The small protocols every model runner implements, one per task."""

from __future__ import annotations

from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from opsis.vision.types import Columns, Detections, TextReading


class FaceDetector(Protocol):
    """Finds faces and their five alignment points in an RGB image."""

    name: str
    version: str

    def detect(self, pixels: NDArray[np.uint8]) -> Detections:
        """Faces in pixels of `pixels`, with (n, 5, 2) landmarks: eyes, nose tip, mouth corners
        in image-left-to-right order."""
        ...


class FaceEmbedder(Protocol):
    """Turns faces into identity vectors; near vectors (Euclidean) mean the same person."""

    name: str
    version: str
    dimension: int

    def embed(self, pixels: NDArray[np.uint8], faces: Detections) -> NDArray[np.float32]:
        """(n, dimension) vectors for the n faces (boxes and landmarks from a FaceDetector)."""
        ...


class FaceAttributes(Protocol):
    """Describes faces (age, gender, emotions, ...) as per-face columns for `Detections.data`."""

    name: str
    version: str

    def annotate(self, pixels: NDArray[np.uint8], faces: Detections) -> Columns:
        """Columns of n rows for the n faces (boxes and landmarks from a FaceDetector); confidences
        in them are calibrated probabilities in 0-1."""
        ...


class ContentModerator(Protocol):
    """Scores a whole image for the kinds of unsafe content it was trained on."""

    name: str
    version: str
    classes: tuple[str, ...]  # the model's own class names, the keys `moderate` returns

    def moderate(self, pixels: NDArray[np.uint8]) -> dict[str, float]:
        """The model's score, 0-1, for each of its `classes` in an RGB image."""
        ...


class TextReader(Protocol):
    """Finds lines of text in an RGB image, reads them and splits them into words."""

    name: str
    version: str

    def read(self, pixels: NDArray[np.uint8]) -> TextReading:
        """Lines and words with reading-order quads, text and confidences (calibrated
        probabilities in 0-1 that a word is read exactly right; a line's is its words' mean)."""
        ...


class PoseEstimator(Protocol):
    """Finds people and their body keypoints in an RGB image."""

    name: str
    version: str
    keypoints: tuple[str, ...]  # keypoint names, in the order of `landmarks`

    def estimate(self, pixels: NDArray[np.uint8]) -> Detections:
        """Person boxes in pixels of `pixels`, most confident first, with (n, k, 2) keypoint
        `landmarks` and an (n, k) `keypoint_score` column in 0-1."""
        ...


class ObjectDetector(Protocol):
    """Finds objects of a fixed set of classes in an RGB image."""

    name: str
    version: str
    classes: tuple[str, ...]  # the model's own class names; `class_id` indexes them

    def detect(self, pixels: NDArray[np.uint8]) -> Detections:
        """Boxes in pixels of `pixels`, highest confidence first, with an int64 `class_id` column;
        confidences are the model's scores in 0-1."""
        ...


class EquipmentClassifier(Protocol):
    """Judges whether body parts are covered by protective equipment, from boxes in the photo."""

    name: str
    version: str
    kinds: tuple[str, ...]  # the equipment types it judges, e.g. "HEAD_COVER"

    def covered(self, pixels: NDArray[np.uint8], boxes: NDArray[np.float32], kinds: list[str]) -> NDArray[np.float32]:
        """(n,) calibrated P(the part in box i is covered by equipment of type kinds[i])."""
        ...
