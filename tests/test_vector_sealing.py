"""Encryption at rest of face vectors (OPSIS_VECTOR_KEY): no vector in the clear in any file, the
store refuses to open without its key or with another, and turning it on seals what was stored."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from opsis import Opsis, Settings
from opsis.store.base import NewFace
from opsis.store.sealing import Seal, SealError, new_key
from opsis.store.sqlite import SQLiteFaceStore

DIMENSION = 128
PEOPLE = "faces/identities/face_recognition/images"


def vectors(count: int) -> NDArray[np.float32]:
    return np.random.default_rng(7).normal(0, 0.1, (count, DIMENSION)).astype(np.float32)


def files_holding(root: Path, needle: bytes) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file() and needle in path.read_bytes()]


def seal() -> Seal:
    return Seal.from_setting(new_key())


def test_sealed_vectors_are_in_no_file_and_still_searchable(tmp_path: Path) -> None:
    key = seal()
    data = vectors(300)
    store = SQLiteFaceStore(tmp_path / "faces.db", hnsw_threshold=100, seal=key)
    store.create_collection("people", "model-v1", {})
    faces = store.add_faces("people", [NewFace("i", None, (0.1, 0.1, 0.2, 0.2), 99.0, v) for v in data])
    assert store.search("people", data[5], 1, 100.0)[0].face.face_id == faces[5].face_id
    np.testing.assert_array_equal(store.face_vector("people", faces[9].face_id), data[9])
    store.close()  # an unsealed store would save its HNSW graph here
    for row in (0, 5, 299):
        assert files_holding(tmp_path, data[row].tobytes()) == []
    again = SQLiteFaceStore(tmp_path / "faces.db", hnsw_threshold=100, seal=key)
    assert again.search("people", data[299], 1, 100.0)[0].face.face_id == faces[299].face_id
    again.close()
    with pytest.raises(SealError, match="set OPSIS_VECTOR_KEY"):
        SQLiteFaceStore(tmp_path / "faces.db")
    with pytest.raises(SealError, match="not the key"):
        SQLiteFaceStore(tmp_path / "faces.db", seal=seal())


def test_turning_sealing_on_seals_what_was_stored(tmp_path: Path) -> None:
    data = vectors(50)
    plain = SQLiteFaceStore(tmp_path / "faces.db", hnsw_threshold=10)
    plain.create_collection("people", "model-v1", {})
    faces = plain.add_faces("people", [NewFace("i", None, (0.1, 0.1, 0.2, 0.2), 99.0, v) for v in data])
    plain.search("people", data[0], 1, 100.0)
    plain.close()
    assert files_holding(tmp_path, data[3].tobytes()), "the clear vector was on disk"
    sealed = SQLiteFaceStore(tmp_path / "faces.db", hnsw_threshold=10, seal=seal())
    assert files_holding(tmp_path, data[3].tobytes()) == []
    assert sealed.search("people", data[3], 1, 100.0)[0].face.face_id == faces[3].face_id
    sealed.close()


def test_the_setting_seals_a_collection_used_through_the_api(tmp_path: Path, data_root: Path) -> None:
    settings = Settings.load(data_dir=tmp_path, vector_key=new_key())
    with Opsis(settings) as opsis:
        opsis.call("CreateCollection", {"CollectionId": "c"})
        photo = {"Bytes": (data_root / PEOPLE / "obama/obama.jpg").read_bytes()}
        face_id = opsis.call("IndexFaces", {"CollectionId": "c", "Image": photo})["FaceRecords"][0]["Face"]["FaceId"]
        probe = {"Bytes": (data_root / PEOPLE / "obama/obama2.jpg").read_bytes()}
        matches = opsis.call("SearchFacesByImage", {"CollectionId": "c", "Image": probe})["FaceMatches"]
        vector = opsis.ctx.store.face_vector("c", face_id).tobytes()
    assert [match["Face"]["FaceId"] for match in matches] == [face_id]
    assert files_holding(tmp_path, vector) == []
