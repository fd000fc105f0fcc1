"""Image quality of a face region: Rekognition's `Quality.Brightness` and `Quality.Sharpness`."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

# Faces are measured at a fixed size so sharpness does not depend on how large the face is.
SAMPLE_SIDE = 112
# Laplacian variance (on 0-255 grey at SAMPLE_SIDE) that maps to sharpness 63; in-focus portraits
# give 200-2000, motion-blurred or heavily downscaled faces under 50.
SHARPNESS_SCALE = 150.0


def measure_quality(pixels: NDArray[np.uint8], boxes: NDArray[np.float32]) -> NDArray[np.float32]:
    """(n, 2) brightness and sharpness, each 0-100, of the faces in `boxes` (xyxy pixels)."""
    grey = np.asarray(cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY), dtype=np.uint8)
    return np.array([_quality_of(grey, box) for box in boxes], dtype=np.float32).reshape(-1, 2)


def _quality_of(grey: NDArray[np.uint8], box: NDArray[np.float32]) -> tuple[float, float]:
    height, width = grey.shape
    left, top = max(0, int(box[0])), max(0, int(box[1]))
    right, bottom = min(width, int(np.ceil(box[2]))), min(height, int(np.ceil(box[3])))
    if right - left < 2 or bottom - top < 2:
        return 0.0, 0.0
    face = cv2.resize(grey[top:bottom, left:right], (SAMPLE_SIDE, SAMPLE_SIDE), interpolation=cv2.INTER_AREA)
    brightness = float(face.mean()) / 255.0 * 100.0
    variance = float(cv2.Laplacian(face, cv2.CV_64F).var())
    sharpness = 100.0 * (1.0 - np.exp(-variance / SHARPNESS_SCALE))
    return brightness, sharpness
