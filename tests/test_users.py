"""Users in collections through boto3: faces grouped per person, searched as one."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import read

PEOPLE = "faces/identities/face_recognition/images"
OBAMA = [f"{PEOPLE}/obama/obama.jpg", f"{PEOPLE}/obama/obama2.jpg", f"{PEOPLE}/obama/obama3.jpg"]
BIDEN = [f"{PEOPLE}/biden/biden.jpg", f"{PEOPLE}/biden/biden2.jpg"]
WIDER_GT = "faces/crowd/wider/gt.json"


def error_code(raised: pytest.ExceptionInfo[ClientError]) -> str:
    return str(raised.value.response["Error"]["Code"])


def index(rekognition: Any, collection_id: str, data: bytes, **params: Any) -> list[str]:
    records = rekognition.index_faces(CollectionId=collection_id, Image={"Bytes": data}, **params)["FaceRecords"]
    return [record["Face"]["FaceId"] for record in records]


@pytest.fixture
def people(rekognition: Any, data_root: Path) -> Iterator[tuple[str, dict[str, list[str]]]]:
    """A collection with three photos of Obama and two of Biden (FaceIds by person), no users yet."""
    collection_id = f"users-{uuid.uuid4().hex[:10]}"
    rekognition.create_collection(CollectionId=collection_id)
    faces = {
        "obama": [index(rekognition, collection_id, read(data_root, p), MaxFaces=1)[0] for p in OBAMA],
        "biden": [index(rekognition, collection_id, read(data_root, p), MaxFaces=1)[0] for p in BIDEN],
    }
    yield collection_id, faces
    rekognition.delete_collection(CollectionId=collection_id)


def test_create_list_and_delete_users(rekognition: Any, people: tuple[str, dict[str, list[str]]]) -> None:
    collection_id, _ = people
    for user_id in ("user-a", "user-b", "user-c"):
        rekognition.create_user(CollectionId=collection_id, UserId=user_id)
    with pytest.raises(ClientError) as raised:
        rekognition.create_user(CollectionId=collection_id, UserId="user-a")
    assert error_code(raised) == "ConflictException"
    pages = list(
        rekognition.get_paginator("list_users").paginate(CollectionId=collection_id, PaginationConfig={"PageSize": 2})
    )
    users = [u for p in pages for u in p["Users"]]
    assert [u["UserId"] for u in users] == ["user-a", "user-b", "user-c"]
    assert {u["UserStatus"] for u in users} == {"CREATED"}
    assert rekognition.describe_collection(CollectionId=collection_id)["UserCount"] == 3
    rekognition.delete_user(CollectionId=collection_id, UserId="user-b")
    with pytest.raises(ClientError) as raised:
        rekognition.delete_user(CollectionId=collection_id, UserId="user-b")
    assert error_code(raised) == "ResourceNotFoundException"


def test_client_request_token_makes_retries_safe(rekognition: Any, people: tuple[str, dict[str, list[str]]]) -> None:
    collection_id, _ = people
    token = uuid.uuid4().hex
    rekognition.create_user(CollectionId=collection_id, UserId="retry", ClientRequestToken=token)
    rekognition.create_user(CollectionId=collection_id, UserId="retry", ClientRequestToken=token)  # a retry: no error
    with pytest.raises(ClientError) as raised:
        rekognition.create_user(CollectionId=collection_id, UserId="someone-else", ClientRequestToken=token)
    assert error_code(raised) == "IdempotentParameterMismatchException"


def test_associate_faces_checks_each_face(rekognition: Any, people: tuple[str, dict[str, list[str]]]) -> None:
    collection_id, faces = people
    rekognition.create_user(CollectionId=collection_id, UserId="barack")
    rekognition.create_user(CollectionId=collection_id, UserId="joe")
    first = rekognition.associate_faces(CollectionId=collection_id, UserId="barack", FaceIds=faces["obama"][:2])
    assert [f["FaceId"] for f in first["AssociatedFaces"]] == faces["obama"][:2]
    assert first["UserStatus"] == "ACTIVE"
    rekognition.associate_faces(CollectionId=collection_id, UserId="joe", FaceIds=faces["biden"][:1])
    missing = str(uuid.uuid4())
    second = rekognition.associate_faces(
        CollectionId=collection_id,
        UserId="barack",
        FaceIds=[faces["obama"][2], faces["biden"][1], faces["biden"][0], missing],
    )
    assert [f["FaceId"] for f in second["AssociatedFaces"]] == [faces["obama"][2]]
    reasons = {f["FaceId"]: f["Reasons"] for f in second["UnsuccessfulFaceAssociations"]}
    assert reasons == {
        faces["biden"][1]: ["LOW_MATCH_CONFIDENCE"],  # not like barack's faces
        faces["biden"][0]: ["ASSOCIATED_TO_A_DIFFERENT_USER"],
        missing: ["FACE_NOT_FOUND"],
    }
    listed = rekognition.list_faces(CollectionId=collection_id, UserId="barack")["Faces"]
    assert sorted(f["FaceId"] for f in listed) == sorted(faces["obama"])
    assert all(f["UserId"] == "barack" for f in listed)
    # A face that belongs to a user is not deleted until it is disassociated.
    refused = rekognition.delete_faces(CollectionId=collection_id, FaceIds=[faces["obama"][0]])
    assert refused["UnsuccessfulFaceDeletions"][0]["Reasons"] == ["ASSOCIATED_TO_AN_EXISTING_USER"]


def test_disassociate_and_delete_user(rekognition: Any, people: tuple[str, dict[str, list[str]]]) -> None:
    collection_id, faces = people
    rekognition.create_user(CollectionId=collection_id, UserId="barack")
    rekognition.associate_faces(CollectionId=collection_id, UserId="barack", FaceIds=faces["obama"])
    response = rekognition.disassociate_faces(
        CollectionId=collection_id, UserId="barack", FaceIds=[faces["obama"][0], faces["biden"][0]]
    )
    assert [f["FaceId"] for f in response["DisassociatedFaces"]] == [faces["obama"][0]]
    assert response["UnsuccessfulFaceDisassociations"][0]["Reasons"] == ["ASSOCIATED_TO_A_DIFFERENT_USER"]
    rekognition.delete_user(CollectionId=collection_id, UserId="barack")
    remaining = rekognition.list_faces(CollectionId=collection_id)["Faces"]
    assert len(remaining) == 5
    assert all("UserId" not in face for face in remaining)


def test_search_users(rekognition: Any, people: tuple[str, dict[str, list[str]]], data_root: Path) -> None:
    collection_id, faces = people
    for user_id, person in (("barack", "obama"), ("joe", "biden")):
        rekognition.create_user(CollectionId=collection_id, UserId=user_id)
        rekognition.associate_faces(CollectionId=collection_id, UserId=user_id, FaceIds=faces[person][:2])
    probe = index(rekognition, collection_id, read(data_root, f"{PEOPLE}/obama/obama1.jpg"), MaxFaces=1)[0]
    by_face = rekognition.search_users(CollectionId=collection_id, FaceId=probe)
    assert by_face["SearchedFace"] == {"FaceId": probe}
    assert [m["User"]["UserId"] for m in by_face["UserMatches"]] == ["barack"]
    by_user = rekognition.search_users(CollectionId=collection_id, UserId="joe", UserMatchThreshold=0)
    assert by_user["SearchedUser"] == {"UserId": "joe"}
    assert [m["User"]["UserId"] for m in by_user["UserMatches"]] == ["barack"]  # never the user itself
    group = read(data_root, f"{PEOPLE}/multi/obama_and_biden.jpg")
    by_image = rekognition.search_users_by_image(CollectionId=collection_id, Image={"Bytes": group})
    assert by_image["UserMatches"][0]["User"]["UserId"] == "barack"  # obama's is the largest face there
    assert by_image["UserMatches"][0]["Similarity"] >= 80
    assert len(by_image["UnsearchedFaces"]) == 2
    assert all(u["Reasons"] == ["FACE_NOT_LARGEST"] for u in by_image["UnsearchedFaces"])
    with pytest.raises(ClientError) as raised:
        rekognition.search_users(CollectionId=collection_id)
    assert error_code(raised) == "InvalidParameterException"


def test_a_user_holds_at_most_100_faces(rekognition: Any, data_root: Path) -> None:
    ground_truth = json.loads((data_root / WIDER_GT).read_text())
    crowds = sorted(ground_truth, key=lambda photo: -len(ground_truth[photo]))[:3]
    collection_id = f"quota-{uuid.uuid4().hex[:8]}"
    rekognition.create_collection(CollectionId=collection_id)
    try:
        face_ids = [
            f
            for photo in crowds
            for f in index(rekognition, collection_id, read(data_root, photo), QualityFilter="NONE")
        ]
        assert len(face_ids) > 100
        rekognition.create_user(CollectionId=collection_id, UserId="crowd")
        rekognition.associate_faces(
            CollectionId=collection_id, UserId="crowd", FaceIds=face_ids[:100], UserMatchThreshold=0
        )
        with pytest.raises(ClientError) as raised:
            rekognition.associate_faces(CollectionId=collection_id, UserId="crowd", FaceIds=face_ids[100:101])
        assert error_code(raised) == "ServiceQuotaExceededException"
    finally:
        rekognition.delete_collection(CollectionId=collection_id)
