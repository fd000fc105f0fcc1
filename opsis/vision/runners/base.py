"""The small protocols every model runner implements, one per task."""

from __future__ import annotations

from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from opsis.vision.types import Detections


class FaceDetector(Protocol):
    """Finds faces and their five alignment points in an RGB image."""

    name: str
    version: str

    def detect(self, pixels: NDArray[np.uint8]) -> Detections:
        """Faces in pixels of `pixels`, with (n, 5, 2) landmarks: eyes, nose tip, mouth corners
        in image-left-to-right order."""
        ...
