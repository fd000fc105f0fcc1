"""THE face pipeline: one path from pixels to described faces, for images, collections and video."""

from __future__ import annotations

import numpy as np

from opsis.vision.pose import estimate_pose
from opsis.vision.quality import measure_quality
from opsis.vision.runners.base import FaceDetector
from opsis.vision.types import DecodedImage, Detections

# Rekognition describes at most the 100 largest faces of an image.
MAX_FACES = 100
# A face that fills a tight crop (e.g. a 150x150 face chip) touches the frame and the detector,
# trained on whole scenes, misses it; a retry on the crop padded with its own border finds it.
PADDED_RETRY_MAX_SIDE = 400
PADDING_RATIO = 0.35


def analyze(image: DecodedImage, detector: FaceDetector, max_faces: int = MAX_FACES) -> Detections:
    """The `max_faces` largest faces, each with landmarks, `pose` (roll, yaw, pitch) and `quality`
    (brightness, sharpness) columns, in pixels of the upright image."""
    faces = largest(find_faces(image, detector), max_faces)
    return faces.with_columns(
        pose=estimate_pose(_landmarks(faces)),
        quality=measure_quality(image.pixels, faces.xyxy),
    )


def find_faces(image: DecodedImage, detector: FaceDetector) -> Detections:
    """Detected faces, retrying small images with a padded border when nothing is found."""
    faces = detector.detect(image.pixels)
    if len(faces) or max(image.width, image.height) > PADDED_RETRY_MAX_SIDE:
        return faces
    pad = round(PADDING_RATIO * max(image.width, image.height))
    padded = np.pad(image.pixels, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    found = detector.detect(padded)
    shifted = Detections(
        found.xyxy - pad,
        found.confidence,
        None if found.landmarks is None else found.landmarks - pad,
        found.data,
    )
    return shifted


def largest(faces: Detections, count: int) -> Detections:
    """The `count` largest faces, largest first."""
    order = np.argsort(-faces.area, kind="stable")[:count]
    return faces[order]


def _landmarks(faces: Detections) -> np.ndarray:
    if faces.landmarks is None:
        raise ValueError("the face detector returned no landmarks")
    return faces.landmarks
