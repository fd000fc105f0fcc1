"""Access keys with IAM-style policies, through boto3 against a real server process, with the keys
made, listed and revoked by `opsis keys` while that server runs."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from click.testing import CliRunner

from opsis.cli import main
from tests.conftest import REGION, LiveServer, client, credentials, read, start_server, stop_server

PEOPLE = "faces/identities/face_recognition/images"
ARN = "arn:aws:rekognition:us-east-1:000000000000:collection/"


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Path]]:
    """A server of this module's own (its log is read), at info level."""
    data_dir = tmp_path_factory.mktemp("opsis-keys")
    log_path = data_dir.parent / f"{data_dir.name}.log"
    process, live = start_server(data_dir, log_path, {"OPSIS_LOG_LEVEL": "info"})
    try:
        yield live, log_path
    finally:
        stop_server(process, log_path)


@pytest.fixture(scope="module")
def live(keyed_server: tuple[LiveServer, Path]) -> LiveServer:
    return keyed_server[0]


@pytest.fixture(scope="module")
def admin(live: LiveServer) -> Any:
    return client(live)


@pytest.fixture(scope="module")
def collections(admin: Any, data_root: Path) -> tuple[str, str]:
    """Collections A and B, each with Obama's face."""
    for collection_id in ("keys-a", "keys-b"):
        admin.create_collection(CollectionId=collection_id)
        admin.index_faces(
            CollectionId=collection_id, Image={"Bytes": read(data_root, f"{PEOPLE}/obama/obama.jpg")}, MaxFaces=1
        )
    return "keys-a", "keys-b"


def opsis_keys(live: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    """`opsis keys ...` in its own process, as an operator would run it next to the server."""
    return subprocess.run(
        [sys.executable, "-m", "opsis", "keys", *args, "--data-dir", str(live.data_dir)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "OPSIS_LOG_LEVEL": "debug"},
    )


def create_key(live: LiveServer, *args: str) -> tuple[str, str]:
    done = opsis_keys(live, "create", "--json", *args)
    assert done.returncode == 0, done.stderr
    created = json.loads(done.stdout)
    return created["AccessKeyId"], created["SecretAccessKey"]


def signed_with(live: LiveServer, key: tuple[str, str]) -> Any:
    return boto3.client(
        "rekognition",
        endpoint_url=live.url,
        region_name=REGION,
        aws_access_key_id=key[0],
        aws_secret_access_key=key[1],
        config=Config(retries={"max_attempts": 1}),
    )


def refusal(call: Any, **params: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as raised:
        call(**params)
    response: dict[str, Any] = raised.value.response
    return response


def test_key_for_one_search_on_one_collection(live: LiveServer, collections: tuple[str, str], data_root: Path) -> None:
    a, b = collections
    key = create_key(live, "--name", "kiosk", "--allow", "SearchFacesByImage", "--collection", a)
    other = create_key(live, "--name", "other-kiosk", "--allow", "SearchFacesByImage", "--collection", b)
    kiosk = signed_with(live, key)
    probe = {"Bytes": read(data_root, f"{PEOPLE}/obama/obama2.jpg")}

    assert kiosk.search_faces_by_image(CollectionId=a, Image=probe)["FaceMatches"]

    denied = refusal(kiosk.search_faces_by_image, CollectionId=b, Image=probe)
    assert denied["Error"]["Code"] == "AccessDeniedException"
    assert denied["ResponseMetadata"]["HTTPStatusCode"] == 400
    message = denied["Error"]["Message"]
    assert message == (
        f"User: {key[0]} is not authorized to perform: rekognition:SearchFacesByImage on resource: {ARN}{b}"
    )
    for elsewhere in (a, other[0], credentials(live)[0], "other-kiosk", "kiosk"):
        assert elsewhere not in message.replace(key[0], "")

    # Refused before the handler runs: an absent collection is not told apart from a present one.
    assert refusal(kiosk.search_faces_by_image, CollectionId="absent", Image=probe)["Error"]["Code"] == (
        "AccessDeniedException"
    )
    calls: list[tuple[Any, dict[str, Any], str]] = [
        (kiosk.create_collection, {"CollectionId": "keys-new"}, f"{ARN}keys-new"),
        (kiosk.index_faces, {"CollectionId": a, "Image": probe}, f"{ARN}{a}"),
        (kiosk.detect_faces, {"Image": probe}, "*"),
        (kiosk.list_collections, {}, "*"),
    ]
    for call, params, resource in calls:
        error = refusal(call, **params)["Error"]
        assert error["Code"] == "AccessDeniedException"
        assert error["Message"].endswith(f"on resource: {resource}")
    assert "keys-new" not in admin_collections(live)


def admin_collections(live: LiveServer) -> list[str]:
    ids: list[str] = client(live).list_collections()["CollectionIds"]
    return ids


def test_explicit_deny_overrides_allow(live: LiveServer, collections: tuple[str, str]) -> None:
    a, b = collections
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "rekognition:*", "Resource": "*"},
            {"Effect": "Deny", "Action": ["rekognition:Delete*", "rekognition:IndexFaces"], "Resource": f"{ARN}{a}"},
        ],
    }
    caller = signed_with(live, create_key(live, "--policy", json.dumps(document)))
    assert caller.describe_collection(CollectionId=a)["FaceCount"] == 1
    assert a in caller.list_collections()["CollectionIds"]
    calls: list[tuple[Any, dict[str, Any]]] = [
        (caller.delete_collection, {"CollectionId": a}),
        (caller.delete_faces, {"CollectionId": a, "FaceIds": ["00000000-0000-0000-0000-000000000000"]}),
    ]
    for call, params in calls:
        assert refusal(call, **params)["Error"]["Code"] == "AccessDeniedException"
    assert caller.delete_faces(CollectionId=b, FaceIds=["00000000-0000-0000-0000-000000000000"])["DeletedFaces"] == []
    assert client(live).describe_collection(CollectionId=a)["FaceCount"] == 1


def test_wildcard_actions(live: LiveServer, collections: tuple[str, str], tmp_path: Path) -> None:
    a, _ = collections
    policy_file = tmp_path / "read-only.json"
    actions = ["rekognition:describe*", "rekognition:List*"]  # action patterns ignore case, as IAM's
    policy_file.write_text(json.dumps({"Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}))
    reader = signed_with(live, create_key(live, "--policy", str(policy_file)))
    assert reader.describe_collection(CollectionId=a)["FaceCount"] == 1
    assert a in reader.list_collections()["CollectionIds"]
    assert len(reader.list_faces(CollectionId=a)["Faces"]) == 1
    assert refusal(reader.create_collection, CollectionId="keys-c")["Error"]["Code"] == "AccessDeniedException"
    assert refusal(reader.delete_collection, CollectionId=a)["Error"]["Code"] == "AccessDeniedException"


def test_revoke_takes_effect_on_the_running_server(live: LiveServer) -> None:
    key = create_key(live, "--allow", "rekognition:ListCollections")
    caller = signed_with(live, key)
    caller.list_collections()

    done = opsis_keys(live, "revoke", key[0])
    assert done.returncode == 0, done.stderr
    assert refusal(caller.list_collections)["Error"]["Code"] == "UnrecognizedClientException"
    assert opsis_keys(live, "revoke", key[0]).returncode == 1  # revoked already
    client(live).list_collections()  # the administrator's key is untouched


def test_secrets_are_neither_stored_in_clear_nor_logged(keyed_server: tuple[LiveServer, Path]) -> None:
    live, log_path = keyed_server
    keys = [create_key(live, "--name", f"k{i}", "--allow", "rekognition:ListCollections") for i in range(2)]
    for key in keys:
        signed_with(live, key).list_collections()
    opsis_keys(live, "revoke", keys[1][0])
    stored = [path for path in live.data_dir.rglob("*") if path.is_file()]
    assert any(path.name == "keys.db" for path in stored)
    for key in keys:
        for path in stored:
            content = path.read_bytes()
            assert key[1].encode() not in content, path
        assert key[1] not in log_path.read_text(errors="replace")
        assert key[1] not in opsis_keys(live, "list").stdout + opsis_keys(live, "list", "--json").stdout
    for name in ("keys.db", "master.key"):
        assert stat.S_IMODE((live.data_dir / name).stat().st_mode) == 0o600


def test_cli_create_list_revoke(tmp_path: Path) -> None:
    runner = CliRunner()
    data_dir = ["--data-dir", str(tmp_path)]
    created = runner.invoke(
        main, ["keys", "create", "--name", "door", "--allow", "SearchFacesByImage", "--collection", "staff", *data_dir]
    )
    assert created.exit_code == 0, created.output
    key_id = created.stdout.split("aws_access_key_id = ")[1].split()[0]
    secret = created.stdout.split("aws_secret_access_key = ")[1].split()[0]

    listed = runner.invoke(main, ["keys", "list", "--json", *data_dir])
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.stdout)
    assert row["AccessKeyId"] == key_id
    assert row["Name"] == "door"
    assert row["Revoked"] is None
    assert row["PolicySummary"] == "Allow rekognition:SearchFacesByImage on collection/staff"
    assert row["Policy"]["Statement"][0]["Resource"] == [f"{ARN}staff"]
    table = runner.invoke(main, ["keys", "list", *data_dir]).stdout
    assert key_id in table
    assert "door" in table
    assert secret not in listed.stdout + table

    assert runner.invoke(main, ["keys", "revoke", key_id, *data_dir]).exit_code == 0
    (row,) = json.loads(runner.invoke(main, ["keys", "list", "--json", *data_dir]).stdout)
    assert row["Revoked"] is not None
    assert runner.invoke(main, ["keys", "revoke", "OPSISNOSUCHKEY", *data_dir]).exit_code == 1


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        ([], "--allow ACTION"),
        (["--collection", "staff"], "at least one --allow"),
        (["--policy", "{nope"], "not valid JSON"),
        (["--policy", '{"Statement": [{"Effect": "Permit", "Action": "rekognition:*", "Resource": "*"}]}'], "Effect"),
        (["--policy", '{"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}'], "rekognition:"),
        (["--allow", "SearchFaceByImage"], "matches no Rekognition operation"),
        (["--policy", "/no/such/policy.json"], "neither JSON nor a readable file"),
        (["--policy", '{"Statement": []}', "--allow", "DetectFaces"], "not both"),
    ],
)
def test_cli_refuses_bad_policies(tmp_path: Path, args: list[str], complaint: str) -> None:
    result = CliRunner().invoke(main, ["keys", "create", *args, "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert complaint in result.output
    assert not (tmp_path / "keys.db").exists()
