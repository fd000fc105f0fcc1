"""THE face pipeline: one path from pixels to described faces, for images, collections and video."""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from opsis.vision.pose import estimate_pose
from opsis.vision.quality import measure_quality
from opsis.vision.runners.base import FaceAttributes, FaceDetector, FaceEmbedder
from opsis.vision.types import Columns, DecodedImage, Detections

# Rekognition describes at most the 100 largest faces of an image.
MAX_FACES = 100
# A face that fills a tight crop (e.g. a 150x150 face chip) touches the frame and the detector,
# trained on whole scenes, misses it; a retry on the crop padded with its own border finds it.
PADDED_RETRY_MAX_SIDE = 400
PADDING_RATIO = 0.35
# The detector's largest anchors are 512 px; faces well beyond them come out loosely placed, so
# images holding one are looked at again at half scale, where such a face fits the anchors.
LARGE_FACE_SIDE = 450.0
FACE_NMS_IOU = 0.4


def analyze(image: DecodedImage, detector: FaceDetector, max_faces: int = MAX_FACES) -> Detections:
    """The `max_faces` largest faces, each with landmarks, `pose` (roll, yaw, pitch) and `quality`
    (brightness, sharpness) columns, in pixels of the upright image."""
    faces = largest(find_faces(image, detector), max_faces)
    return faces.with_columns(
        pose=estimate_pose(_landmarks(faces)),
        quality=measure_quality(image.pixels, faces.xyxy),
    )


def embed_faces(image: DecodedImage, faces: Detections, embedder: FaceEmbedder) -> Detections:
    """`faces` with an `embedding` column: identity vectors from the embedder."""
    return faces.with_columns(embedding=embedder.embed(image.pixels, faces))


def describe(image: DecodedImage, faces: Detections, runners: Iterable[FaceAttributes]) -> Detections:
    """`faces` with the columns (age, emotions, mesh, ...) each attribute runner computes for them."""
    columns: Columns = {}
    for runner in runners:
        columns.update(runner.annotate(image.pixels, faces))
    return faces.with_columns(**columns)


def find_faces(image: DecodedImage, detector: FaceDetector) -> Detections:
    """Detected faces, with a second look at a coarser scale when a face is too big for the
    detector's anchors, and a retry of small images with a padded border when nothing is found."""
    faces = detector.detect(image.pixels)
    if len(faces) and _longest_side(faces) > LARGE_FACE_SIDE:
        coarse = _detect_scaled(detector, image.pixels, 0.5)
        return Detections.merge([faces, coarse]).nms(FACE_NMS_IOU)
    if len(faces) or max(image.width, image.height) > PADDED_RETRY_MAX_SIDE:
        return faces
    pad = round(PADDING_RATIO * max(image.width, image.height))
    padded = np.pad(image.pixels, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    return _shifted(detector.detect(padded), -pad)


def _longest_side(faces: Detections) -> float:
    return float((faces.xyxy[:, 2:] - faces.xyxy[:, :2]).max())


def _detect_scaled(detector: FaceDetector, pixels: np.ndarray, scale: float) -> Detections:
    size = (max(1, round(pixels.shape[1] * scale)), max(1, round(pixels.shape[0] * scale)))
    found = detector.detect(np.asarray(cv2.resize(pixels, size, interpolation=cv2.INTER_AREA), dtype=np.uint8))
    landmarks = None if found.landmarks is None else found.landmarks / scale
    return Detections(found.xyxy / scale, found.confidence, landmarks, found.data)


def _shifted(found: Detections, offset: float) -> Detections:
    landmarks = None if found.landmarks is None else found.landmarks + offset
    return Detections(found.xyxy + offset, found.confidence, landmarks, found.data)


def largest(faces: Detections, count: int) -> Detections:
    """The `count` largest faces, largest first."""
    order = np.argsort(-faces.area, kind="stable")[:count]
    return faces[order]


def _landmarks(faces: Detections) -> np.ndarray:
    if faces.landmarks is None:
        raise ValueError("the face detector returned no landmarks")
    return faces.landmarks
