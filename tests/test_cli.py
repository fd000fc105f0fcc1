"""The `opsis` command line and the AWS CLI, on real photos."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from opsis.cli import _external_id, main
from tests.conftest import REGION, LiveServer

IMAGES = "faces/identities/face_recognition/images"
OBAMA = f"{IMAGES}/obama/obama-480p.jpg"
GROUP = f"{IMAGES}/multi/two_people.jpg"
# Indexed: two photos of one person and one of another; OBAMA (another photo of the first) searches them.
INDEXED = (f"{IMAGES}/obama/obama.jpg", f"{IMAGES}/obama/obama2.jpg", f"{IMAGES}/biden/biden.jpg")


def test_detect_faces_json_is_the_api_response(data_root: Path) -> None:
    result = CliRunner().invoke(main, ["detect-faces", str(data_root / GROUP), "--json"])
    assert result.exit_code == 0, result.output
    response = json.loads(result.output)
    assert len(response["FaceDetails"]) == 2
    assert {"BoundingBox", "Confidence", "Landmarks", "Pose", "Quality"} <= set(response["FaceDetails"][0])


def test_detect_faces_table(data_root: Path) -> None:
    result = CliRunner().invoke(main, ["detect-faces", str(data_root / GROUP)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "2 face(s) in two_people.jpg" in result.output
    assert "Confidence" in result.output


def test_detect_faces_table_summarises_requested_attributes(data_root: Path) -> None:
    photo = data_root / "faces/identities/face_recognition/images/biden/biden2.jpg"
    result = CliRunner().invoke(
        main, ["detect-faces", str(photo), "--attributes", "GENDER,SMILE,EMOTIONS"], terminal_width=250
    )
    assert result.exit_code == 0, result.output
    assert "Male" in result.output
    assert "HAPPY" in result.output
    assert "Smile" in result.output
    assert "no Smile" not in result.output


def test_detect_faces_on_a_bad_file_prints_the_rekognition_error(tmp_path: Path) -> None:
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a photo")
    result = CliRunner().invoke(main, ["detect-faces", str(bad)])
    assert result.exit_code == 1
    assert "InvalidImageFormatException" in result.output


def test_detect_faces_rejects_an_unknown_attribute(data_root: Path) -> None:
    result = CliRunner().invoke(main, ["detect-faces", str(data_root / OBAMA), "--attributes", "WINGS"])
    assert result.exit_code == 1
    assert "InvalidParameterException" in result.output


@pytest.mark.skipif(shutil.which("aws", path=str(Path(sys.executable).parent)) is None, reason="AWS CLI not installed")
def test_aws_cli_detect_faces_on_an_s3_object(server: LiveServer, data_root: Path) -> None:
    """`aws rekognition detect-faces --image '{"S3Object":...}'` works unchanged against Opsis."""
    target = server.data_dir / "buckets" / "cli-bucket" / "portrait.jpg"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes((data_root / OBAMA).read_bytes())
    env = {
        **os.environ,
        "AWS_SHARED_CREDENTIALS_FILE": str(server.credentials_file),
        "AWS_PROFILE": "opsis",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": os.devnull,
    }
    aws = str(Path(sys.executable).parent / "aws")
    completed = subprocess.run(
        [
            aws,
            "rekognition",
            "detect-faces",
            "--endpoint-url",
            server.url,
            "--image",
            '{"S3Object":{"Bucket":"cli-bucket","Name":"portrait.jpg"}}',
            "--attributes",
            "DEFAULT",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert len(json.loads(completed.stdout)["FaceDetails"]) == 1


# --- collections, faces and users on a temporary data directory ------------------------------------


def opsis(data_dir: Path, *args: str) -> Result:
    """`opsis ARGS --data-dir DATA_DIR`, in-process."""
    return CliRunner().invoke(main, [*args, "--data-dir", str(data_dir)], terminal_width=200)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def indexed_collection(data_root: Path, data_dir: Path, collection_id: str) -> dict[str, str]:
    """A new collection holding the INDEXED photos' faces: ExternalImageId (file stem) -> FaceId."""
    ok(opsis(data_dir, "create-collection", collection_id))
    responses = json.loads(
        ok(opsis(data_dir, "index-faces", collection_id, *(str(data_root / p) for p in INDEXED), "--json")).stdout
    )
    assert [len(r["FaceRecords"]) for r in responses] == [1, 1, 1]
    return {r["FaceRecords"][0]["Face"]["ExternalImageId"]: r["FaceRecords"][0]["Face"]["FaceId"] for r in responses}


def test_index_search_list_and_delete_faces(data_root: Path, tmp_path: Path) -> None:
    faces = indexed_collection(data_root, tmp_path, "people")
    assert set(faces) == {"obama", "obama2", "biden"}

    search = json.loads(ok(opsis(tmp_path, "search-faces-by-image", "people", str(data_root / OBAMA), "--json")).stdout)
    matched = [match["Face"]["ExternalImageId"] for match in search["FaceMatches"]]
    assert matched[0] in ("obama", "obama2")
    assert set(matched) == {"obama", "obama2"}

    table = ok(opsis(tmp_path, "list-faces", "people")).output
    assert "3 face(s) in people" in table
    assert all(face_id in table for face_id in faces.values())

    deleted = ok(opsis(tmp_path, "delete-faces", "people", faces["biden"])).output
    assert "Deleted 1 of 1 face(s) from people" in deleted
    listed = json.loads(ok(opsis(tmp_path, "list-faces", "people", "--json")).stdout)
    assert {face["ExternalImageId"] for face in listed["Faces"]} == {"obama", "obama2"}

    described = json.loads(ok(opsis(tmp_path, "describe-collection", "people", "--json")).stdout)
    assert described["FaceCount"] == 2
    assert datetime.fromisoformat(described["CreationTimestamp"]).tzinfo is not None

    assert "Deleted collection people" in ok(opsis(tmp_path, "delete-collection", "people")).output
    assert "0 collection(s)" in ok(opsis(tmp_path, "list-collections")).output


def test_list_faces_follows_next_token(data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    faces = indexed_collection(data_root, tmp_path, "paged")
    monkeypatch.setattr("opsis.ops.collection_faces.DEFAULT_PAGE", 1)
    listed = json.loads(ok(opsis(tmp_path, "list-faces", "paged", "--json")).stdout)
    assert sorted(face["FaceId"] for face in listed["Faces"]) == sorted(faces.values())
    assert "NextToken" not in listed


def test_users(data_root: Path, tmp_path: Path) -> None:
    faces = indexed_collection(data_root, tmp_path, "team")
    ok(opsis(tmp_path, "create-user", "team", "barack"))
    associated = ok(opsis(tmp_path, "associate-faces", "team", "barack", faces["obama"], faces["obama2"])).output
    assert "Associated 2 of 2 face(s) with barack (user ACTIVE)" in associated
    found = ok(opsis(tmp_path, "search-users-by-image", "team", str(data_root / OBAMA))).output
    assert "1 user(s) in team" in found
    assert "barack" in found
    assert "barack" in ok(opsis(tmp_path, "list-faces", "team", "--user-id", "barack")).output
    similar = json.loads(ok(opsis(tmp_path, "search-faces", "team", faces["obama"], "--json")).stdout)
    assert [match["Face"]["FaceId"] for match in similar["FaceMatches"]] == [faces["obama2"]]
    ok(opsis(tmp_path, "delete-user", "team", "barack"))
    assert json.loads(ok(opsis(tmp_path, "list-users", "team", "--json")).stdout) == {"Users": []}


def test_compare_faces_of_one_person_is_a_match(data_root: Path) -> None:
    source, target = (str(data_root / p) for p in INDEXED[:2])
    result = ok(CliRunner().invoke(main, ["compare-faces", source, target], terminal_width=200))
    assert "1 of 1 face(s) in obama2.jpg match the largest face in obama.jpg" in result.output
    response = json.loads(ok(CliRunner().invoke(main, ["compare-faces", target, source, "--json"])).stdout)
    assert response["FaceMatches"][0]["Similarity"] >= 80


def test_call_runs_any_operation(data_root: Path, tmp_path: Path) -> None:
    detected = json.loads(ok(opsis(tmp_path, "call", "detect-faces", "--image", str(data_root / OBAMA))).stdout)
    assert len(detected["FaceDetails"]) == 1
    source, target = (data_root / p for p in INDEXED[:2])
    params = {"SourceImage": {"Bytes": f"fileb://{source}"}, "TargetImage": {"Bytes": f"fileb://{target}"}}
    compared = json.loads(ok(opsis(tmp_path, "call", "CompareFaces", "--params", json.dumps(params))).stdout)
    assert len(compared["FaceMatches"]) == 1
    params_file = tmp_path / "params.json"
    params_file.write_text(json.dumps({"CollectionId": "called"}))
    created = json.loads(ok(opsis(tmp_path, "call", "CreateCollection", "--params", f"@{params_file}")).stdout)
    assert created["CollectionArn"].endswith(":collection/called")
    unknown = opsis(tmp_path, "call", "FlyToTheMoon")
    assert unknown.exit_code == 1
    assert "Error (UnknownOperationException)" in unknown.output


def test_a_missing_collection_is_a_rekognition_error(data_root: Path, tmp_path: Path) -> None:
    for args in (("list-faces", "nope"), ("search-faces-by-image", "nope", str(data_root / OBAMA))):
        result = opsis(tmp_path, *args)
        assert result.exit_code == 1
        assert "Error (ResourceNotFoundException): " in result.output
        assert "nope" in result.output


def test_external_image_id_defaults_to_the_sanitised_file_stem() -> None:
    assert _external_id(Path("/photos/obama2.jpg")) == "obama2"
    assert _external_id(Path("Me & you (2020).v2.jpg")) == "Me_you_2020_.v2"
    assert _external_id(Path("été.png")) == "t"
    assert _external_id(Path("日本.png")) is None
