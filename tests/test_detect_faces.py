"""DetectFaces through boto3 against the live server, on real photos with known faces."""

from __future__ import annotations

import csv
import io
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.conftest import LiveServer, client, read

OBAMA = "faces/identities/face_recognition/images/obama/obama-480p.jpg"
ASTRONAUT = "misc/astronaut.png"
CAT = "misc/chelsea.png"
WIDER_GT = "faces/crowd/wider/gt.json"


def box_xyxy(box: dict[str, float], width: int, height: int) -> np.ndarray:
    left, top = box["Left"] * width, box["Top"] * height
    return np.array([left, top, left + box["Width"] * width, top + box["Height"] * height])


def iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = np.prod(np.clip(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0, None))
    union = np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2]) - inter
    return float(inter / union)


def png_bytes(image: Image.Image, **save: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=save.pop("format", "PNG"), **save)
    return buffer.getvalue()


def detect(rekognition: Any, data: bytes, **params: Any) -> list[dict[str, Any]]:
    faces: list[dict[str, Any]] = rekognition.detect_faces(Image={"Bytes": data}, **params)["FaceDetails"]
    return faces


@pytest.mark.parametrize("photo", [OBAMA, ASTRONAUT, "faces/identities/face_recognition/images/obama/obama.jpg"])
def test_one_face_portrait_is_described_consistently(rekognition: Any, data_root: Path, photo: str) -> None:
    faces = detect(rekognition, read(data_root, photo), Attributes=["DEFAULT"])
    assert len(faces) == 1
    face = faces[0]
    assert face["Confidence"] > 90
    box = face["BoundingBox"]
    assert 0 <= box["Left"] < 1
    assert 0 <= box["Top"] < 1
    assert 0.05 < box["Width"] < 0.9
    points = {mark["Type"]: (mark["X"], mark["Y"]) for mark in face["Landmarks"]}
    assert set(points) == {"eyeLeft", "eyeRight", "nose", "mouthLeft", "mouthRight"}
    for x, y in points.values():
        assert box["Left"] <= x <= box["Left"] + box["Width"]
        assert box["Top"] <= y <= box["Top"] + box["Height"]
    assert points["eyeLeft"][0] < points["eyeRight"][0]
    assert points["mouthLeft"][0] < points["mouthRight"][0]
    eyes_y = (points["eyeLeft"][1] + points["eyeRight"][1]) / 2
    mouth_y = (points["mouthLeft"][1] + points["mouthRight"][1]) / 2
    assert eyes_y < points["nose"][1] < mouth_y
    # These portraits face the camera.
    assert abs(face["Pose"]["Yaw"]) < 25
    assert abs(face["Pose"]["Pitch"]) < 25
    assert abs(face["Pose"]["Roll"]) < 15
    assert 20 < face["Quality"]["Brightness"] < 90
    assert face["Quality"]["Sharpness"] > 50


def test_mirrored_photo_mirrors_box_and_flips_yaw_and_roll(rekognition: Any, data_root: Path) -> None:
    photo = Image.open(io.BytesIO(read(data_root, "faces/identities/face_recognition/images/biden/biden.jpg")))
    original = detect(rekognition, png_bytes(photo))[0]
    mirrored = detect(rekognition, png_bytes(photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))[0]
    box, flipped = original["BoundingBox"], mirrored["BoundingBox"]
    assert flipped["Left"] == pytest.approx(1 - box["Left"] - box["Width"], abs=0.02)
    assert np.sign(original["Pose"]["Yaw"]) == -np.sign(mirrored["Pose"]["Yaw"])
    assert np.sign(original["Pose"]["Roll"]) == -np.sign(mirrored["Pose"]["Roll"])
    assert mirrored["Pose"]["Pitch"] == pytest.approx(original["Pose"]["Pitch"], abs=8)


def test_photo_without_a_face_has_no_face_details(rekognition: Any, data_root: Path) -> None:
    assert detect(rekognition, read(data_root, CAT)) == []


def test_group_photos_find_every_labelled_person_left_to_right(rekognition: Any, data_root: Path) -> None:
    with (data_root / "faces/identities/face_recognition/multi_person.csv").open() as file:
        rows = list(csv.DictReader(file))
    for row in rows:
        people = row["identities_left_to_right"].split(";")
        faces = detect(rekognition, read(data_root, row["path"]))
        # Largest faces first; the labelled people are the main, largest faces.
        areas = [f["BoundingBox"]["Width"] * f["BoundingBox"]["Height"] for f in faces]
        assert areas == sorted(areas, reverse=True)
        assert len(faces) >= len(people), row["path"]
        assert all(f["Confidence"] > 90 for f in faces[: len(people)])


def test_faces_match_wider_ground_truth_on_easy_photos(rekognition: Any, data_root: Path) -> None:
    ground_truth = json.loads((data_root / WIDER_GT).read_text())
    hits = total = 0
    for path, boxes in ground_truth.items():
        easy = [b for b in boxes if b[4] == 1]
        if not easy or len(boxes) > 20:
            continue
        image = Image.open(data_root / path)
        found = [box_xyxy(f["BoundingBox"], *image.size) for f in detect(rekognition, read(data_root, path))]
        for x, y, w, h, *_ in easy:
            truth = np.array([x, y, x + w, y + h], dtype=float)
            hits += any(iou(truth, f) >= 0.5 for f in found)
            total += 1
    assert total >= 30
    assert hits / total >= 0.85


def test_crowd_photo_returns_the_100_largest_faces(rekognition: Any, data_root: Path) -> None:
    ground_truth = json.loads((data_root / WIDER_GT).read_text())
    path = max(ground_truth, key=lambda photo: len(ground_truth[photo]))
    faces = detect(rekognition, read(data_root, path))
    assert len(faces) == 100
    areas = [f["BoundingBox"]["Width"] * f["BoundingBox"]["Height"] for f in faces]
    assert areas == sorted(areas, reverse=True)


@pytest.mark.parametrize(("scale", "canvas"), [(0.45, (1920, 1080)), (0.85, (3840, 2160))])
def test_small_face_in_a_large_frame_is_found(
    rekognition: Any, data_root: Path, scale: float, canvas: tuple[int, int]
) -> None:
    """Rekognition's minimum face is 40 px in a 1920x1080 frame, proportionally more in larger ones."""
    photo = Image.open(io.BytesIO(read(data_root, OBAMA)))
    expected = detect(rekognition, read(data_root, OBAMA))[0]["BoundingBox"]
    small = photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.Resampling.LANCZOS)
    frame = Image.new("RGB", canvas, (128, 128, 128))
    offset = (canvas[0] // 3, canvas[1] // 2)
    frame.paste(small, offset)
    face_px = expected["Width"] * small.width
    assert face_px < 40 * canvas[0] / 1920 * 1.3  # the face is near Rekognition's minimum
    faces = detect(rekognition, png_bytes(frame, format="JPEG", quality=95))
    truth = box_xyxy(expected, *small.size) + np.array([*offset, *offset])
    assert any(iou(truth, box_xyxy(f["BoundingBox"], *canvas)) >= 0.5 for f in faces)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_is_applied_before_detection(rekognition: Any, data_root: Path, orientation: int) -> None:
    """A camera stores pixels sideways with an EXIF tag; boxes refer to the upright photo."""
    upright = Image.open(io.BytesIO(read(data_root, OBAMA)))
    expected = detect(rekognition, png_bytes(upright, format="JPEG", quality=95))[0]["BoundingBox"]
    # The stored pixels are the upright photo turned the opposite way to what the tag undoes.
    stored = upright.transpose(
        {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}[orientation]
    )
    exif = Image.Exif()
    exif[0x0112] = orientation
    response = rekognition.detect_faces(Image={"Bytes": png_bytes(stored, format="JPEG", quality=95, exif=exif)})
    assert "OrientationCorrection" not in response
    found = box_xyxy(response["FaceDetails"][0]["BoundingBox"], *upright.size)
    assert iou(found, box_xyxy(expected, *upright.size)) > 0.8


def test_rgba_png_with_transparency(rekognition: Any, data_root: Path) -> None:
    faces = detect(rekognition, read(data_root, "faces/identities/face_recognition/images/obama/32bit.png"))
    assert len(faces) == 1
    assert faces[0]["Confidence"] > 90


def test_grayscale_photo(rekognition: Any, data_root: Path) -> None:
    grey = Image.open(io.BytesIO(read(data_root, ASTRONAUT))).convert("L")
    assert len(detect(rekognition, png_bytes(grey))) == 1


def test_s3_object_in_a_local_bucket_gives_the_same_faces_as_bytes(
    rekognition: Any, server: LiveServer, data_root: Path
) -> None:
    key = "people/obama 480p.jpg"
    target = server.data_dir / "buckets" / "photos" / key
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(read(data_root, OBAMA))
    from_s3 = rekognition.detect_faces(Image={"S3Object": {"Bucket": "photos", "Name": key}})["FaceDetails"]
    assert from_s3 == detect(rekognition, read(data_root, OBAMA))


def test_attributes_all_still_returns_the_default_fields(rekognition: Any, data_root: Path) -> None:
    face = detect(rekognition, read(data_root, OBAMA), Attributes=["ALL"])[0]
    assert {"BoundingBox", "Confidence", "Landmarks", "Pose", "Quality"} <= set(face)


def test_concurrent_requests_all_get_the_same_answer(server: LiveServer, data_root: Path) -> None:
    """Eight clients at once through the bounded inference pool; models are shared safely."""
    photos = [read(data_root, OBAMA), read(data_root, "faces/identities/face_recognition/images/multi/two_people.jpg")]
    clients = [client(server) for _ in range(8)]
    expected = [detect(clients[0], photo) for photo in photos]
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda n: detect(clients[n], photos[n % 2]), range(8)))
    assert all(answer == expected[n % 2] for n, answer in enumerate(answers))
