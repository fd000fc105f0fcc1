"""The in-process Python API: same operations and errors as the server, no server needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsis import Opsis, Settings
from opsis.errors import InvalidParameterException, UnknownOperationException
from tests.conftest import read

PHOTO = "faces/identities/face_recognition/images/obama/obama-480p.jpg"


def test_operations_errors_and_no_store_for_stateless_calls(tmp_path: Path, data_root: Path) -> None:
    with Opsis(Settings.load(data_dir=tmp_path / "data")) as opsis:
        assert len(opsis.detect_faces(read(data_root, PHOTO))["FaceDetails"]) == 1
        with pytest.raises(UnknownOperationException, match="Nope"):
            opsis.call("Nope", {})
        with pytest.raises(InvalidParameterException):
            opsis.call("DetectFaces", {"Image": {"Bytes": b"x"}, "Extra": 1})
    assert not (tmp_path / "data" / "faces.db").exists(), "DetectFaces alone opens no face store"


def test_image_operations_take_a_path_and_api_parameters(tmp_path: Path, data_root: Path) -> None:
    with Opsis(Settings.load(data_dir=tmp_path / "data")) as opsis:
        faces = opsis.detect_faces(data_root / PHOTO, attributes=("GENDER",))["FaceDetails"]
        assert faces[0]["Gender"]["Value"] == "Male"
        labels = {label["Name"] for label in opsis.detect_labels(data_root / PHOTO, MinConfidence=40)["Labels"]}
        assert "Person" in labels
        page = opsis.detect_text(data_root / "text/tesseract/phototest.png")
        assert any(d["Type"] == "WORD" for d in page["TextDetections"])
        assert opsis.detect_moderation_labels(data_root / PHOTO)["ModerationLabels"] == []
        assert opsis.recognize_celebrities(data_root / PHOTO)["CelebrityFaces"] == []
