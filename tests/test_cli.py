"""The `opsis` command line and the AWS CLI, on real photos."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from opsis.cli import main
from tests.conftest import REGION, LiveServer

OBAMA = "faces/identities/face_recognition/images/obama/obama-480p.jpg"
GROUP = "faces/identities/face_recognition/images/multi/two_people.jpg"


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
