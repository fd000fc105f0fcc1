"""NudeNet 3.4 (`nudenet/320n.onnx`, a YOLOv8n detector of 18 exposed / covered body parts).

OPTIONAL and AGPL-3.0: the wheel's LICENSE is the GNU Affero GPL v3 (its metadata says MIT), and
the weights come with it. It is never a default dependency; an operator who accepts the AGPL
installs it with `pip install --no-deps nudenet==3.4.2` (or the `moderation-agpl` extra) and sets
OPSIS_CONTENT_MODERATOR=nudenet-320n.

Pre- and post-processing are the package's own (`NudeDetector.detect`: pad to a square, 320x320,
YOLOv8 decoding, NMS), fed the BGR pixels `cv2.imread` would give it; only the ONNX Runtime session
is ours, so threads follow Opsis's settings. A class's score is its most confident box (0 when none
of its boxes reaches the package's 0.2 floor): raw detector confidences, not calibrated.
"""

from __future__ import annotations

from importlib.metadata import version as package_version
from importlib.resources import files

import cv2
import numpy as np
from numpy.typing import NDArray

from opsis.vision.ort import create_session

PACKAGE = "nudenet"
MODEL_FILE = "320n.onnx"
# The package's class names, in its output order (nudenet/nudenet.py `__labels`).
CLASSES = (
    "FEMALE_GENITALIA_COVERED",
    "FACE_FEMALE",
    "BUTTOCKS_EXPOSED",
    "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_BREAST_EXPOSED",
    "ANUS_EXPOSED",
    "FEET_EXPOSED",
    "BELLY_COVERED",
    "FEET_COVERED",
    "ARMPITS_COVERED",
    "ARMPITS_EXPOSED",
    "FACE_MALE",
    "BELLY_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "ANUS_COVERED",
    "FEMALE_BREAST_COVERED",
    "BUTTOCKS_COVERED",
)


class NudeNetModerator:
    """`ContentModerator` over NudeNet's body-part detector: one score per body-part class."""

    name = "nudenet-320n"
    classes: tuple[str, ...] = CLASSES

    def __init__(self, threads: int = 1) -> None:
        try:
            from nudenet import NudeDetector
        except ImportError:
            raise RuntimeError(
                "nudenet-320n needs the optional, AGPL-3.0 package nudenet: pip install --no-deps nudenet==3.4.2"
            ) from None
        self.version = f"{self.name}-{package_version('nudenet')}"
        self._detector = NudeDetector()
        # Its own session takes ONNX Runtime's defaults (every core); ours follows Opsis's settings.
        self._detector.onnx_session = create_session((files(PACKAGE) / MODEL_FILE).read_bytes(), threads)

    def moderate(self, pixels: NDArray[np.uint8]) -> dict[str, float]:
        """The most confident box's score for each body-part class."""
        scores = dict.fromkeys(CLASSES, 0.0)
        for box in self._detector.detect(np.ascontiguousarray(cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))):
            scores[box["class"]] = max(scores[box["class"]], float(box["score"]))
        return scores
