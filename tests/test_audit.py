"""The audit trail: boto3 calls of biometric operations are recorded with their principal, request
id, thresholds and returned ids (never the image), queryable with `opsis audit`, append-only and
tamper-evident."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner

from opsis import Opsis, Settings
from opsis.cli import main
from tests.conftest import LiveServer, credentials

PEOPLE = "faces/identities/face_recognition/images"
OBAMA, OBAMA2, BIDEN = f"{PEOPLE}/obama/obama.jpg", f"{PEOPLE}/obama/obama2.jpg", f"{PEOPLE}/biden/biden.jpg"


def audit_entries(data_dir: Path, *args: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(main, ["audit", "list", "--json", "--data-dir", str(data_dir), *args])
    assert result.exit_code == 0, result.output
    entries: list[dict[str, Any]] = json.loads(result.output)
    return entries


def image(data_root: Path, path: str) -> dict[str, bytes]:
    return {"Bytes": (data_root / path).read_bytes()}


def test_biometric_calls_are_recorded_with_who_what_and_the_ids_returned(
    rekognition: Any, server: LiveServer, data_root: Path
) -> None:
    rekognition.create_collection(CollectionId="audited")
    indexed = rekognition.index_faces(CollectionId="audited", Image=image(data_root, OBAMA), ExternalImageId="obama")
    face_id = indexed["FaceRecords"][0]["Face"]["FaceId"]
    search = rekognition.search_faces_by_image(
        CollectionId="audited", Image=image(data_root, OBAMA2), FaceMatchThreshold=90
    )
    compare = rekognition.compare_faces(SourceImage=image(data_root, OBAMA), TargetImage=image(data_root, BIDEN))
    with pytest.raises(ClientError):
        rekognition.search_faces_by_image(CollectionId="not-there", Image=image(data_root, OBAMA2))
    rekognition.detect_faces(Image=image(data_root, OBAMA))  # not biometric: not recorded
    rekognition.delete_faces(CollectionId="audited", FaceIds=[face_id])

    by_request = {entry["RequestId"]: entry for entry in audit_entries(server.data_dir)}
    access_key_id = credentials(server)[0]
    index_entry = by_request[indexed["ResponseMetadata"]["RequestId"]]
    assert index_entry["Operation"] == "IndexFaces"
    assert index_entry["Principal"] == access_key_id
    assert index_entry["CollectionId"] == "audited"
    assert index_entry["Details"]["FaceIds"] == [face_id]
    assert index_entry["Details"]["ExternalImageId"] == "obama"
    search_entry = by_request[search["ResponseMetadata"]["RequestId"]]
    assert search_entry["Details"]["FaceMatchThreshold"] == 90
    assert [m["FaceId"] for m in search_entry["Details"]["Matches"]] == [face_id]
    assert by_request[compare["ResponseMetadata"]["RequestId"]]["Details"]["UnmatchedFaces"] == 1
    failed = [e for e in by_request.values() if e["CollectionId"] == "not-there"]
    assert [e["Outcome"] for e in failed] == ["ResourceNotFoundException"]
    assert not [e for e in by_request.values() if e["Operation"] == "DetectFaces"]
    deletions = audit_entries(server.data_dir, "--operation", "DeleteFaces", "--collection-id", "audited")
    assert deletions[-1]["Details"]["FaceIds"] == [face_id]
    # Ids and thresholds only: no image bytes, no vectors.
    stored = (server.data_dir / "audit.db").read_bytes()
    assert b"\xff\xd8\xff" not in stored
    assert b"Bytes" not in stored


def test_the_trail_is_append_only_and_tampering_shows(tmp_path: Path, data_root: Path) -> None:
    with Opsis(Settings.load(data_dir=tmp_path)) as opsis:
        opsis.call("CreateCollection", {"CollectionId": "c"})
        for path in (OBAMA, BIDEN):
            opsis.call("IndexFaces", {"CollectionId": "c", "Image": image(data_root, path)})
        opsis.call("SearchFacesByImage", {"CollectionId": "c", "Image": image(data_root, OBAMA2)})
    runner = CliRunner()
    verified = runner.invoke(main, ["audit", "verify", "--data-dir", str(tmp_path)])
    assert verified.exit_code == 0, verified.output
    assert "Intact: 3 entries" in verified.output
    entries = audit_entries(tmp_path)
    assert [e["Principal"] for e in entries] == ["local"] * 3

    db = sqlite3.connect(tmp_path / "audit.db")
    for statement in ("UPDATE entries SET principal = 'someone' WHERE seq = 2", "DELETE FROM entries WHERE seq = 2"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute(statement)
    # Someone with the file and the will to drop the guard: the chain still gives them away.
    db.execute("DROP TRIGGER entries_are_never_changed")
    db.execute("UPDATE entries SET details = '{}' WHERE seq = 2")
    db.commit()
    db.close()
    broken = runner.invoke(main, ["audit", "verify", "--data-dir", str(tmp_path)])
    assert broken.exit_code == 1
    assert "entry 2" in broken.output

    exported = runner.invoke(main, ["audit", "export", "--data-dir", str(tmp_path), "--operation", "IndexFaces"])
    lines = [json.loads(line) for line in exported.output.splitlines()]
    assert [line["Operation"] for line in lines] == ["IndexFaces", "IndexFaces"]
    assert all(len(line["Hash"]) == 64 for line in lines)


def test_video_face_search_is_recorded_when_it_starts_and_ends(tmp_path: Path, data_root: Path) -> None:
    with Opsis(Settings.load(data_dir=tmp_path)) as opsis:
        opsis.call("CreateCollection", {"CollectionId": "stage"})
        still = data_root / f"{PEOPLE}/lin_manuel_miranda/lin-manuel-miranda.png"
        face_id = opsis.call("IndexFaces", {"CollectionId": "stage", "Image": {"Bytes": still.read_bytes()}})[
            "FaceRecords"
        ][0]["Face"]["FaceId"]
        clip = data_root / "faces/identities/face_recognition/video/short_hamilton_clip.mp4"
        job_id = opsis.start_video_job("StartFaceSearch", clip, CollectionId="stage", FaceMatchThreshold=90)
        assert opsis.wait_for_video_job(job_id) == "SUCCEEDED"
    searches = audit_entries(tmp_path, "--operation", "StartFaceSearch")
    assert [e["Outcome"] for e in searches] == ["ok", "SUCCEEDED"]
    assert searches[0]["Details"] == {"FaceMatchThreshold": 90, "JobId": job_id}
    assert searches[1]["Details"]["Ids"] == [face_id]
    assert searches[1]["Details"]["Matches"] >= 10


def test_retention_drops_old_entries_and_the_rest_still_verifies(tmp_path: Path) -> None:
    import time

    from opsis.store.audit import SQLiteAuditLog
    from opsis.store.base import AuditQuery, AuditRecord

    log = SQLiteAuditLog(tmp_path / "audit.db", retention_seconds=0.5)
    for number in range(3):
        log.append(AuditRecord("key", f"old-{number}", "SearchFaces", "c", "ok", {}))
    time.sleep(0.6)
    log.append(AuditRecord("key", "new", "SearchFaces", "c", "ok", {}))
    assert [entry.record.request_id for entry in log.entries(AuditQuery())] == ["new"]
    result = log.verify()
    assert result.intact
    assert result.entries == 1
    log.close()
