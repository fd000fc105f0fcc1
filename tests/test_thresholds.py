"""The identification threshold guard: an operator's floor refuses looser searches; high-stakes
mode raises them to 99 and says so in a response header."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsis import Opsis, Settings
from opsis.errors import InvalidParameterException
from opsis.store.base import AuditQuery
from tests.conftest import client, start_server, stop_server

PEOPLE = "faces/identities/face_recognition/images"
OBAMA, OBAMA2 = f"{PEOPLE}/obama/obama.jpg", f"{PEOPLE}/obama/obama2.jpg"


def test_a_floor_refuses_looser_identification_and_replaces_the_default(tmp_path: Path, data_root: Path) -> None:
    with Opsis(Settings.load(data_dir=tmp_path, identification_threshold_floor=90.0)) as opsis:
        opsis.call("CreateCollection", {"CollectionId": "c"})
        opsis.call("IndexFaces", {"CollectionId": "c", "Image": {"Bytes": (data_root / OBAMA).read_bytes()}})
        probe = {"CollectionId": "c", "Image": {"Bytes": (data_root / OBAMA2).read_bytes()}}
        with pytest.raises(InvalidParameterException, match="below this server's floor of 90"):
            opsis.call("SearchFacesByImage", {**probe, "FaceMatchThreshold": 80})
        with pytest.raises(InvalidParameterException):
            opsis.call("SearchUsersByImage", {**probe, "UserMatchThreshold": 50})
        opsis.call("SearchFacesByImage", probe)  # no threshold: the floor, not Rekognition's 80
        opsis.call("SearchFacesByImage", {**probe, "FaceMatchThreshold": 95})
        entries = [entry.record for entry in opsis.ctx.audit.entries(_searches())]
    # Every attempt is audited, the refused one too, with what was asked and what the server did.
    assert [entry.details.get("FaceMatchThreshold") for entry in entries] == [80, None, 95]
    assert [entry.outcome for entry in entries] == ["InvalidParameterException", "ok", "ok"]
    assert entries[1].details["Warnings"] == ["FaceMatchThreshold not given: this server's floor 90 applies"]


def _searches() -> AuditQuery:
    return AuditQuery(operation="SearchFacesByImage")


def test_high_stakes_mode_raises_thresholds_to_99_with_a_warning_header(tmp_path: Path, data_root: Path) -> None:
    process, live = start_server(tmp_path / "data", tmp_path / "server.log", {"OPSIS_HIGH_STAKES": "1"})
    try:
        rekognition = client(live)
        rekognition.create_collection(CollectionId="c")
        rekognition.index_faces(CollectionId="c", Image={"Bytes": (data_root / OBAMA).read_bytes()})
        probe = {"Bytes": (data_root / OBAMA2).read_bytes()}
        loose = rekognition.search_faces_by_image(CollectionId="c", Image=probe, FaceMatchThreshold=80)
        warning = loose["ResponseMetadata"]["HTTPHeaders"]["x-opsis-warning"]
        assert warning == "FaceMatchThreshold 80 raised to 99 (high-stakes mode)"
        assert all(match["Similarity"] >= 99 for match in loose["FaceMatches"])
        strict = rekognition.search_faces_by_image(CollectionId="c", Image=probe, FaceMatchThreshold=99.5)
        assert "x-opsis-warning" not in strict["ResponseMetadata"]["HTTPHeaders"]
    finally:
        stop_server(process, tmp_path / "server.log")
