"""Rekognition's `QualityFilter`: which detected faces are good enough to index, search or compare."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from opsis.vision.types import Detections


@dataclass(frozen=True)
class QualityBar:
    min_confidence: float  # detector confidence, 0-1
    min_side: float  # shorter side of the face box, pixels
    min_sharpness: float  # Quality.Sharpness, 0-100
    brightness: tuple[float, float]  # Quality.Brightness range, 0-100
    max_yaw: float  # degrees
    max_pitch: float


# Measured on the 618 photos of the shared identity sets (largest face each): LOW rejects 2, MEDIUM
# 9, HIGH 62. Same-person pairs that involve a rejected face fail to match at Similarity 80 far more
# often than the rest (LOW 82% vs 5.5%, MEDIUM 52% vs 5.1%, HIGH 20% vs 3.3%), so the bars remove
# faces the embedder cannot vouch for. AUTO is MEDIUM.
BARS = {
    "LOW": QualityBar(0.5, 16, 8, (4, 98), 75, 60),
    "MEDIUM": QualityBar(0.7, 28, 18, (8, 96), 60, 45),
    "HIGH": QualityBar(0.9, 48, 35, (15, 92), 45, 35),
}
BARS["AUTO"] = BARS["MEDIUM"]


def quality_reasons(faces: Detections, level: str) -> list[list[str]]:
    """For each face, the Rekognition reasons it falls below `level` (empty: it passes)."""
    if level == "NONE" or len(faces) == 0:
        return [[] for _ in range(len(faces))]
    bar = BARS[level]
    sides = np.minimum(faces.xyxy[:, 2] - faces.xyxy[:, 0], faces.xyxy[:, 3] - faces.xyxy[:, 1])
    pose, quality = faces.data["pose"], faces.data["quality"]
    checks: list[tuple[str, NDArray[np.bool_]]] = [
        ("LOW_CONFIDENCE", faces.confidence < bar.min_confidence),
        ("SMALL_BOUNDING_BOX", sides < bar.min_side),
        ("LOW_SHARPNESS", quality[:, 1] < bar.min_sharpness),
        ("LOW_BRIGHTNESS", (quality[:, 0] < bar.brightness[0]) | (quality[:, 0] > bar.brightness[1])),
        ("EXTREME_POSE", (np.abs(pose[:, 1]) > bar.max_yaw) | (np.abs(pose[:, 2]) > bar.max_pitch)),
    ]
    return [[reason for reason, failed in checks if failed[row]] for row in range(len(faces))]
