"""Facial attributes (DetectFaces Attributes, IndexFaces DetectionAttributes, CompareFaces) through
boto3, on real photos whose attributes are unambiguous (each label below was checked by eye)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from PIL import Image, ImageOps

from opsis.service_model import shape_enum, shape_members
from tests.conftest import read

DEEPFACE = "faces/identities/deepface/images"
PEOPLE = "faces/identities/face_recognition/images"
# Broad smiles, lips apart.
SMILING = (f"{DEEPFACE}/img9.jpg", f"{PEOPLE}/biden/biden2.jpg", f"{DEEPFACE}/img1.jpg")
# Neutral faces with closed lips.
NEUTRAL_CLOSED_MOUTH = (f"{DEEPFACE}/img6.jpg", f"{DEEPFACE}/img61.jpg", f"{DEEPFACE}/img47.jpg")
FULL_BEARD = (f"{DEEPFACE}/img61.jpg", f"{DEEPFACE}/img62.jpg")
CLEAN_SHAVEN = (f"{DEEPFACE}/img6.jpg", f"{DEEPFACE}/img9.jpg", f"{DEEPFACE}/img47.jpg", f"{PEOPLE}/biden/biden2.jpg")
EYEGLASSES = (f"{DEEPFACE}/img24.jpg", f"{DEEPFACE}/img25.jpg")
NO_GLASSES = (f"{DEEPFACE}/img6.jpg", f"{DEEPFACE}/img9.jpg", f"{DEEPFACE}/img61.jpg", f"{PEOPLE}/biden/biden2.jpg")
WOMEN = (f"{DEEPFACE}/img6.jpg", f"{DEEPFACE}/img9.jpg", f"{DEEPFACE}/img47.jpg")
MEN = (f"{DEEPFACE}/img61.jpg", f"{DEEPFACE}/img24.jpg", f"{PEOPLE}/biden/biden2.jpg")
OLDER, YOUNGER = f"{PEOPLE}/biden/biden2.jpg", f"{DEEPFACE}/img9.jpg"
GROUP = f"{PEOPLE}/multi/obama_and_biden.jpg"


def main_face(rekognition: Any, data: bytes, attributes: list[str]) -> dict[str, Any]:
    """The largest face's FaceDetail."""
    faces = rekognition.detect_faces(Image={"Bytes": data}, Attributes=attributes)["FaceDetails"]
    assert faces, "no face found"
    return max(faces, key=lambda face: face["BoundingBox"]["Width"] * face["BoundingBox"]["Height"])


def points(face: dict[str, Any]) -> dict[str, tuple[float, float]]:
    return {mark["Type"]: (mark["X"], mark["Y"]) for mark in face["Landmarks"]}


@pytest.fixture(scope="module")
def described(rekognition: Any, data_root: Path) -> dict[str, dict[str, Any]]:
    """Attributes=ALL for every photo the tests below look at, each detected once."""
    photos = {*SMILING, *NEUTRAL_CLOSED_MOUTH, *FULL_BEARD, *CLEAN_SHAVEN, *EYEGLASSES, *NO_GLASSES, *WOMEN, *MEN}
    return {photo: main_face(rekognition, read(data_root, photo), ["ALL"]) for photo in sorted(photos)}


def test_all_returns_every_face_detail_field(described: dict[str, dict[str, Any]]) -> None:
    for face in described.values():
        assert set(face) == shape_members("FaceDetail")
        assert [mark["Type"] for mark in face["Landmarks"]] == list(shape_enum("LandmarkType"))
        emotions = face["Emotions"]
        assert {emotion["Type"] for emotion in emotions} == set(shape_enum("EmotionName")) - {"UNKNOWN"}
        confidences = [emotion["Confidence"] for emotion in emotions]
        assert confidences == sorted(confidences, reverse=True)
        assert sum(confidences) == pytest.approx(100, abs=0.5)
        for key in ("Smile", "EyesOpen", "MouthOpen", "Eyeglasses", "Sunglasses", "Beard", "Mustache", "FaceOccluded"):
            assert isinstance(face[key]["Value"], bool)
            assert 50 <= face[key]["Confidence"] <= 100
        assert 0 <= face["AgeRange"]["Low"] < face["AgeRange"]["High"] <= 100
        assert face["Gender"]["Value"] in {"Male", "Female"}
        assert 50 <= face["Gender"]["Confidence"] <= 100
        assert -90 <= face["EyeDirection"]["Yaw"] <= 90
        assert -90 <= face["EyeDirection"]["Pitch"] <= 90
        assert 0 <= face["EyeDirection"]["Confidence"] <= 100


def test_named_attributes_come_on_top_of_default(rekognition: Any, data_root: Path) -> None:
    photo = read(data_root, SMILING[0])
    default = main_face(rekognition, photo, ["DEFAULT"])
    assert set(default) == {"BoundingBox", "Confidence", "Landmarks", "Pose", "Quality"}
    assert len(default["Landmarks"]) == 5
    smile = main_face(rekognition, photo, ["SMILE"])
    assert set(smile) == {"BoundingBox", "Confidence", "Landmarks", "Pose", "Quality", "Smile"}
    pair = main_face(rekognition, photo, ["DEFAULT", "AGE_RANGE", "GENDER"])
    assert set(pair) - set(default) == {"AgeRange", "Gender"}
    assert set(main_face(rekognition, photo, ["ALL", "DEFAULT"])) == shape_members("FaceDetail")


def test_unknown_attribute_is_rejected(unvalidated_rekognition: Any, data_root: Path) -> None:
    with pytest.raises(ClientError) as raised:
        unvalidated_rekognition.detect_faces(Image={"Bytes": read(data_root, SMILING[0])}, Attributes=["HAIR_COLOR"])
    assert raised.value.response["Error"]["Code"] == "InvalidParameterException"


@pytest.mark.parametrize("photo", SMILING)
def test_a_broad_smile_smiles_with_the_mouth_open_and_looks_happy(described: dict[str, Any], photo: str) -> None:
    face = described[photo]
    assert face["Smile"]["Value"] is True
    assert face["MouthOpen"]["Value"] is True
    assert face["Emotions"][0]["Type"] == "HAPPY"
    assert face["EyesOpen"]["Value"] is True


@pytest.mark.parametrize("photo", NEUTRAL_CLOSED_MOUTH)
def test_a_neutral_face_neither_smiles_nor_opens_its_mouth(described: dict[str, Any], photo: str) -> None:
    face = described[photo]
    assert face["Smile"]["Value"] is False
    assert face["MouthOpen"]["Value"] is False
    assert face["EyesOpen"]["Value"] is True


def test_beards_and_glasses(described: dict[str, Any]) -> None:
    for photo in FULL_BEARD:
        assert described[photo]["Beard"]["Value"] is True, photo
    for photo in CLEAN_SHAVEN:
        assert described[photo]["Beard"]["Value"] is False, photo
        assert described[photo]["Mustache"]["Value"] is False, photo
    for photo in EYEGLASSES:
        assert described[photo]["Eyeglasses"]["Value"] is True, photo
    for photo in NO_GLASSES:
        assert described[photo]["Eyeglasses"]["Value"] is False, photo
    for photo, face in described.items():
        assert face["Sunglasses"]["Value"] is False, photo
        assert face["FaceOccluded"]["Value"] is False, photo


def test_gender_and_age(described: dict[str, Any]) -> None:
    for photo in WOMEN:
        assert described[photo]["Gender"]["Value"] == "Female", photo
    for photo in MEN:
        assert described[photo]["Gender"]["Value"] == "Male", photo
    older, younger = described[OLDER]["AgeRange"], described[YOUNGER]["AgeRange"]
    assert older["Low"] + older["High"] > younger["Low"] + younger["High"]
    assert older["High"] >= 50
    assert younger["Low"] <= 40


def test_landmarks_lie_on_the_face_in_anatomical_order(described: dict[str, Any]) -> None:
    for photo, face in described.items():
        box = face["BoundingBox"]
        at = points(face)
        for name, (x, y) in at.items():
            # The mesh reaches the jaw and brows, which may lie a little outside the detector's box.
            assert box["Left"] - 0.15 * box["Width"] <= x <= box["Left"] + 1.15 * box["Width"], (photo, name)
            assert box["Top"] - 0.15 * box["Height"] <= y <= box["Top"] + 1.15 * box["Height"], (photo, name)
        for side in ("left", "right"):
            eye_left, eye_right = at[f"{side}EyeLeft"], at[f"{side}EyeRight"]
            pupil = at[f"{side}Pupil"]
            assert eye_left[0] < pupil[0] < eye_right[0], (photo, side)
            assert at[f"{side}EyeUp"][1] < at[f"{side}EyeDown"][1], (photo, side)
            assert at[f"{side}EyeBrowUp"][1] < at[f"{side}EyeUp"][1], (photo, side)
        assert at["eyeLeft"][0] < at["nose"][0] < at["eyeRight"][0], photo
        assert at["leftEyeRight"][0] < at["rightEyeLeft"][0], photo
        assert at["noseLeft"][0] < at["noseRight"][0], photo
        assert at["mouthLeft"][0] < at["mouthRight"][0], photo
        assert at["upperJawlineLeft"][0] < at["midJawlineLeft"][0] < at["chinBottom"][0], photo
        assert at["chinBottom"][0] < at["midJawlineRight"][0] < at["upperJawlineRight"][0], photo
        eyes_y = (at["eyeLeft"][1] + at["eyeRight"][1]) / 2
        assert eyes_y < at["nose"][1] < at["mouthUp"][1] < at["mouthDown"][1] < at["chinBottom"][1], photo


def test_a_mirrored_face_turns_the_other_way(rekognition: Any, data_root: Path) -> None:
    photo = f"{DEEPFACE}/img61.jpg"
    image = Image.open(io.BytesIO(read(data_root, photo))).convert("RGB")
    buffer = io.BytesIO()
    ImageOps.mirror(image).save(buffer, format="PNG")
    pose = main_face(rekognition, read(data_root, photo), ["ALL"])["Pose"]
    mirrored = main_face(rekognition, buffer.getvalue(), ["ALL"])["Pose"]
    assert mirrored["Yaw"] == pytest.approx(-pose["Yaw"], abs=3)
    assert mirrored["Roll"] == pytest.approx(-pose["Roll"], abs=3)
    # Neither network is exactly mirror-symmetric; pitch, the least certain angle, moves most.
    assert mirrored["Pitch"] == pytest.approx(pose["Pitch"], abs=6)


def test_index_faces_returns_the_detection_attributes(rekognition: Any, data_root: Path) -> None:
    rekognition.create_collection(CollectionId="attributes")
    try:
        indexed = rekognition.index_faces(
            CollectionId="attributes", Image={"Bytes": read(data_root, SMILING[1])}, DetectionAttributes=["ALL"]
        )
        detail = indexed["FaceRecords"][0]["FaceDetail"]
        assert set(detail) == shape_members("FaceDetail")
        assert detail["Smile"]["Value"] is True
        plain = rekognition.index_faces(CollectionId="attributes", Image={"Bytes": read(data_root, SMILING[1])})
        assert "Smile" not in plain["FaceRecords"][0]["FaceDetail"]
    finally:
        rekognition.delete_collection(CollectionId="attributes")


def test_compared_faces_carry_emotions_and_smile(rekognition: Any, data_root: Path) -> None:
    response = rekognition.compare_faces(
        SourceImage={"Bytes": read(data_root, f"{PEOPLE}/biden/biden.jpg")},
        TargetImage={"Bytes": read(data_root, GROUP)},
    )
    faces = [match["Face"] for match in response["FaceMatches"]] + response["UnmatchedFaces"]
    assert len(faces) >= 2
    for face in faces:
        assert set(face) == shape_members("ComparedFace")
        assert len(face["Emotions"]) == 8
        assert len(face["Landmarks"]) == 30
    (biden,) = response["FaceMatches"]
    # Biden grins at the crowd.
    assert biden["Face"]["Smile"]["Value"] is True
    assert biden["Face"]["Emotions"][0]["Type"] == "HAPPY"
