"""Erasure through the live server: once DeleteFaces or DeleteCollection has answered, no file in the
data directory (face store, WAL, index graphs, audit trail, job store, keys) holds the face's vector."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opsis import Opsis, Settings
from tests.conftest import LiveServer

PEOPLE = "faces/identities/face_recognition/images"


def files_holding(root: Path, needle: bytes) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file() and needle in path.read_bytes()]


def stored_vector(server: LiveServer, collection_id: str, face_id: str) -> bytes:
    """The vector as the store holds it, read through the store on the server's data directory."""
    with Opsis(Settings.load(data_dir=server.data_dir)) as opsis:
        return opsis.ctx.store.face_vector(collection_id, face_id).tobytes()


def test_deleted_faces_leave_no_copy_of_their_vectors(rekognition: Any, server: LiveServer, data_root: Path) -> None:
    rekognition.create_collection(CollectionId="erase-me")
    ids = {}
    for name in ("obama/obama.jpg", "biden/biden.jpg"):
        photo = (data_root / PEOPLE / name).read_bytes()
        ids[name] = rekognition.index_faces(CollectionId="erase-me", Image={"Bytes": photo})["FaceRecords"][0]["Face"][
            "FaceId"
        ]
    rekognition.search_faces(CollectionId="erase-me", FaceId=ids["obama/obama.jpg"])  # loads the index
    obama, biden = (stored_vector(server, "erase-me", ids[name]) for name in ids)
    assert files_holding(server.data_dir, obama), "the scan finds a stored vector"

    rekognition.delete_faces(CollectionId="erase-me", FaceIds=[ids["obama/obama.jpg"]])
    assert files_holding(server.data_dir, obama) == []
    assert files_holding(server.data_dir, biden)
    rekognition.delete_collection(CollectionId="erase-me")
    assert files_holding(server.data_dir, biden) == []
