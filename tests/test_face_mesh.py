"""The face-mesh runner on real photos: landmark anatomy, the converted graphs against LiteRT,
expressions against labels, and the symmetry a mirrored photo must show. Every assertion checks
geometry or a rate against labels, with tolerances far below what a wrong crop, a swapped eye, a
mirrored projection or a broken conversion would give."""

from __future__ import annotations

import csv
from importlib.metadata import distribution
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from opsis.service_model import service_model
from opsis.vision.cache import ModelCache
from opsis.vision.faces import find_faces, largest
from opsis.vision.pose import estimate_pose
from opsis.vision.registry import face_attributes
from opsis.vision.runners.face_mesh import (
    IRIS_FILE,
    IRIS_SIZE,
    MESH_FILE,
    MESH_SIZE,
    PACKAGE,
    FaceMeshRunner,
    crop,
    face_rois,
    iris_rois,
    model_file,
)
from opsis.vision.runners.retinaface import RetinaFaceDetector
from opsis.vision.types import Columns, DecodedImage, Detections

REPO = Path(__file__).resolve().parent.parent
PHOTOS = "faces/identities/face_recognition/images"
PORTRAITS = (
    f"{PHOTOS}/obama/obama-480p.jpg",
    f"{PHOTOS}/biden/biden.jpg",
    f"{PHOTOS}/rose_leslie/img1.jpg",
    f"{PHOTOS}/kit_harington/john2.jpeg",
    f"{PHOTOS}/alex_lacamoire/img1.jpg",
    "misc/astronaut.png",
)
BROAD_SMILE = f"{PHOTOS}/obama/obama-480p.jpg"
NEUTRAL = (f"{PHOTOS}/rose_leslie/img1.jpg", f"{PHOTOS}/kit_harington/john1.jpeg")
# Faces turned well away from the camera, one each way.
TURNED = (f"{PHOTOS}/obama/obama1.jpg", f"{PHOTOS}/kit_harington/john2.jpeg")
CELEBA = "faces/attributes/celeba/attributes.csv"
SAMPLES = 40


@pytest.fixture(scope="session")
def mesher() -> FaceMeshRunner:
    return FaceMeshRunner(threads=2)


@pytest.fixture(scope="session")
def landmark_types() -> list[str]:
    enum: list[str] = service_model().shape_for("LandmarkType").enum
    return enum


def photo(data_root: Path, relative: str) -> NDArray[np.uint8]:
    path = data_root / relative
    if not path.is_file():
        pytest.skip(f"no photo at {path}")
    return np.asarray(Image.open(path).convert("RGB"))


def largest_face(pixels: NDArray[np.uint8], detector: RetinaFaceDetector) -> Detections:
    faces = largest(find_faces(DecodedImage(pixels, "JPEG"), detector), 1)
    assert len(faces) == 1
    return faces


def described(
    data_root: Path, relative: str, detector: RetinaFaceDetector, mesher: FaceMeshRunner
) -> tuple[Detections, Columns]:
    pixels = photo(data_root, relative)
    faces = largest_face(pixels, detector)
    return faces, mesher.annotate(pixels, faces)


def mirrored(pixels: NDArray[np.uint8]) -> NDArray[np.uint8]:
    return np.ascontiguousarray(pixels[:, ::-1])


def test_registry_builds_the_runner(mesher: FaceMeshRunner) -> None:
    runner = face_attributes(ModelCache(), "mediapipe-face-mesh", 1)
    assert isinstance(runner, FaceMeshRunner)
    assert runner.version == mesher.version == f"mediapipe-face-mesh-{distribution(PACKAGE).version}"


def test_no_faces_give_empty_columns_of_the_right_shapes(mesher: FaceMeshRunner) -> None:
    columns = mesher.annotate(np.zeros((64, 64, 3), np.uint8), Detections.empty(landmark_count=5))
    shapes = {name: column.shape for name, column in columns.items()}
    assert shapes == {
        "mesh": (0, 468, 3),
        "mesh_confidence": (0,),
        "landmarks30": (0, 30, 2),
        "mesh_pose": (0, 3),
        "eye_direction": (0, 2),
        "smile": (0,),
        "mouth_open": (0,),
        "eyes_open": (0,),
        "eye_direction_confidence": (0,),
    }


def test_faces_without_landmarks_are_refused(mesher: FaceMeshRunner) -> None:
    faces = Detections(np.array([[10, 10, 50, 50]], np.float32), np.ones(1, np.float32))
    with pytest.raises(ValueError, match="landmarks"):
        mesher.annotate(np.zeros((64, 64, 3), np.uint8), faces)


def test_columns_have_one_float32_row_per_face_and_probabilities_in_range(
    data_root: Path, detector: RetinaFaceDetector, mesher: FaceMeshRunner
) -> None:
    pixels = photo(data_root, f"{PHOTOS}/multi/two_people.jpg")
    faces = find_faces(DecodedImage(pixels, "JPEG"), detector)
    assert len(faces) >= 2
    columns = mesher.annotate(pixels, faces)
    for name, column in columns.items():
        assert column.dtype == np.float32, name
        assert len(column) == len(faces), name
        assert np.isfinite(column).all(), name
    for name in ("mesh_confidence", "smile", "mouth_open", "eyes_open", "eye_direction_confidence"):
        assert ((columns[name] >= 0) & (columns[name] <= 1)).all(), name
    assert (columns["mesh_confidence"] > 0.9).all()


@pytest.mark.parametrize("relative", PORTRAITS)
def test_landmarks_lie_on_the_face_in_anatomical_order(
    data_root: Path, detector: RetinaFaceDetector, mesher: FaceMeshRunner, landmark_types: list[str], relative: str
) -> None:
    faces, columns = described(data_root, relative, detector, mesher)
    points = dict(zip(landmark_types, columns["landmarks30"][0], strict=True))
    left, top, right, bottom = faces.xyxy[0]
    margin = 0.15 * (right - left)  # the jaw and brows may reach a little past the detector's box
    for name, (x, y) in points.items():
        assert left - margin <= x <= right + margin, name
        assert top - margin <= y <= bottom + margin, name
    x = {name: float(point[0]) for name, point in points.items()}
    y = {name: float(point[1]) for name, point in points.items()}
    # Top to bottom (these portraits are upright).
    assert max(y["leftEyeBrowUp"], y["rightEyeBrowUp"]) < min(y["eyeLeft"], y["eyeRight"])
    assert max(y["eyeLeft"], y["eyeRight"]) < y["nose"] < y["mouthUp"] < y["mouthDown"] < y["chinBottom"]
    assert y["leftEyeUp"] < y["leftEyeDown"]
    assert y["rightEyeUp"] < y["rightEyeDown"]
    # Left to right in the image: "left" is the viewer's left, as Rekognition's eyeLeft.
    row = ("upperJawlineLeft", "leftEyeLeft", "leftEyeRight", "rightEyeLeft", "rightEyeRight", "upperJawlineRight")
    assert [x[name] for name in row] == sorted(x[name] for name in row)
    for first, second in (
        ("eyeLeft", "eyeRight"),
        ("mouthLeft", "mouthRight"),
        ("noseLeft", "noseRight"),
        ("leftEyeBrowLeft", "leftEyeBrowRight"),
        ("rightEyeBrowLeft", "rightEyeBrowRight"),
        ("midJawlineLeft", "chinBottom"),
        ("chinBottom", "midJawlineRight"),
    ):
        assert x[first] < x[second], (first, second)
    # The detector's five points and the mesh's agree to a fraction of the eye distance.
    assert faces.landmarks is not None
    ours = np.stack([points[name] for name in ("eyeLeft", "eyeRight", "nose", "mouthLeft", "mouthRight")])
    eye_distance = np.linalg.norm(faces.landmarks[0, 1] - faces.landmarks[0, 0])
    assert np.linalg.norm(ours - faces.landmarks[0], axis=1).max() < 0.25 * eye_distance


@pytest.mark.parametrize("relative", PORTRAITS)
def test_pupils_lie_inside_their_eyes(
    data_root: Path, detector: RetinaFaceDetector, mesher: FaceMeshRunner, landmark_types: list[str], relative: str
) -> None:
    _, columns = described(data_root, relative, detector, mesher)
    points = dict(zip(landmark_types, columns["landmarks30"][0], strict=True))
    for side in ("left", "right"):
        pupil = points[f"{side}Pupil"]
        corners = (points[f"{side}EyeLeft"], points[f"{side}EyeRight"])
        lids = (points[f"{side}EyeUp"], points[f"{side}EyeDown"])
        assert corners[0][0] < pupil[0] < corners[1][0], side
        assert lids[0][1] - 1 < pupil[1] < lids[1][1] + 1, side


def test_converted_graphs_agree_with_litert(
    data_root: Path, detector: RetinaFaceDetector, mesher: FaceMeshRunner
) -> None:
    """The same crops through LiteRT's interpreter on the .tflite files and through the ONNX graphs."""
    interpreter = pytest.importorskip("ai_edge_litert.interpreter")
    pixels = photo(data_root, f"{PHOTOS}/multi/two_people.jpg")
    faces = find_faces(DecodedImage(pixels, "JPEG"), detector)
    face_crops = np.stack([crop(pixels, roi, MESH_SIZE) for roi in face_rois(faces)])
    points, logits = mesher.run_mesh(face_crops)
    eye_crops = np.stack([crop(pixels, roi, IRIS_SIZE) for roi in iris_rois(mesher.outputs(pixels, faces).mesh)])
    contours, irises = mesher.run_iris(eye_crops)
    for file, crops, ours in (
        (MESH_FILE, face_crops, (points, logits)),
        (IRIS_FILE, eye_crops, (contours, irises)),
    ):
        litert = interpreter.Interpreter(model_content=model_file(file))
        litert.allocate_tensors()
        for row, image in enumerate(crops):
            litert.set_tensor(litert.get_input_details()[0]["index"], image[None].astype(np.float32) / 255)
            litert.invoke()
            for output, mine in zip(litert.get_output_details(), ours, strict=True):
                theirs = litert.get_tensor(output["index"]).reshape(-1)
                # Coordinates in crop pixels; 0.05 px is far below any visible difference.
                assert np.abs(theirs - mine[row].reshape(-1)).max() < 0.05, file


def test_a_broad_smile_smiles_with_the_mouth_open(
    data_root: Path, detector: RetinaFaceDetector, mesher: FaceMeshRunner
) -> None:
    _, columns = described(data_root, BROAD_SMILE, detector, mesher)
    assert columns["smile"][0] > 0.5
    assert columns["mouth_open"][0] > 0.5
    assert columns["eyes_open"][0] > 0.5


@pytest.mark.parametrize("relative", NEUTRAL)
def test_a_neutral_face_neither_smiles_nor_opens_its_mouth(
    data_root: Path, detector: RetinaFaceDetector, mesher: FaceMeshRunner, relative: str
) -> None:
    _, columns = described(data_root, relative, detector, mesher)
    assert columns["smile"][0] < 0.5
    assert columns["mouth_open"][0] < 0.5
    assert columns["eyes_open"][0] > 0.5


def celeba_rows(data_root: Path) -> list[dict[str, str]]:
    path = data_root / CELEBA
    if not path.is_file():
        pytest.skip(f"no labels at {path}")
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return rows[:: max(1, len(rows) // SAMPLES)][:SAMPLES]


@pytest.mark.parametrize(("column", "label"), [("smile", "Smiling"), ("mouth_open", "Mouth_Slightly_Open")])
def test_expressions_follow_celeba_labels(
    data_root: Path, detector: RetinaFaceDetector, mesher: FaceMeshRunner, column: str, label: str
) -> None:
    rows = celeba_rows(data_root)
    scores = np.array([described(data_root, row["path"], detector, mesher)[1][column][0] for row in rows])
    truth = np.array([row[label] == "1" for row in rows])
    assert ((scores >= 0.5) == truth).mean() >= 0.7  # CelebA's own labels disagree with people's ~10%
    assert scores[truth].mean() - scores[~truth].mean() > 0.3


def test_eyes_open_follows_labels(data_root: Path, detector: RetinaFaceDetector, mesher: FaceMeshRunner) -> None:
    """Hand-labelled faces (benchmarks/labels/eyes_open.csv), FER2013 crops upscaled as there."""
    with (REPO / "benchmarks" / "labels" / "eyes_open.csv").open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if "fer2013" not in row["path"]]
    closed = [row for row in rows if row["eyes_open"] == "0"]
    opened = [row for row in rows if row["eyes_open"] == "1"][::4]
    scores = {
        row["path"]: described(data_root, row["path"], detector, mesher)[1]["eyes_open"][0] for row in closed + opened
    }
    assert np.mean([scores[row["path"]] < 0.5 for row in closed]) >= 0.6
    assert np.mean([scores[row["path"]] >= 0.5 for row in opened]) >= 0.9


@pytest.mark.parametrize("relative", TURNED)
def test_mirroring_negates_yaw_roll_and_gaze_yaw(
    data_root: Path, detector: RetinaFaceDetector, mesher: FaceMeshRunner, landmark_types: list[str], relative: str
) -> None:
    pixels = photo(data_root, relative)
    face = largest_face(pixels, detector)
    columns = mesher.annotate(pixels, face)
    flipped = mirrored(pixels)
    mirror = mesher.annotate(flipped, largest_face(flipped, detector))
    roll, yaw, pitch = columns["mesh_pose"][0]
    assert abs(yaw) > 10  # these faces are turned, so the sign test below means something
    assert mirror["mesh_pose"][0] == pytest.approx([-roll, -yaw, pitch], abs=3.0)
    assert mirror["eye_direction"][0, 0] == pytest.approx(-columns["eye_direction"][0, 0], abs=4.0)
    # The image-left pupil of the mirror is the image-right pupil of the photo, and so on.
    points = dict(zip(landmark_types, columns["landmarks30"][0], strict=True))
    mirror_points = dict(zip(landmark_types, mirror["landmarks30"][0], strict=True))
    width, tolerance = pixels.shape[1], 0.05 * float(face.xyxy[0, 2] - face.xyxy[0, 0])
    for name, twin in (("leftPupil", "rightPupil"), ("mouthLeft", "mouthRight"), ("nose", "nose")):
        assert mirror_points[name][0] == pytest.approx(width - points[twin][0], abs=tolerance), name


@pytest.mark.parametrize("relative", TURNED)
def test_mesh_pose_agrees_in_sign_with_the_five_point_estimate(
    data_root: Path, detector: RetinaFaceDetector, mesher: FaceMeshRunner, relative: str
) -> None:
    faces, columns = described(data_root, relative, detector, mesher)
    assert faces.landmarks is not None
    five_point = estimate_pose(faces.landmarks)[0]
    assert np.sign(columns["mesh_pose"][0, 1]) == np.sign(five_point[1])


def test_mesh_pose_tracks_the_five_point_estimate_over_portraits(
    data_root: Path, detector: RetinaFaceDetector, mesher: FaceMeshRunner
) -> None:
    relatives = sorted(
        str(path.relative_to(data_root)) for path in (data_root / PHOTOS).glob("*/*.jp*g") if "multi" not in path.parts
    )
    if len(relatives) < 10:
        pytest.skip("too few portraits")
    mesh_pose, five_point = [], []
    for relative in relatives:
        faces, columns = described(data_root, relative, detector, mesher)
        assert faces.landmarks is not None
        mesh_pose.append(columns["mesh_pose"][0])
        five_point.append(estimate_pose(faces.landmarks)[0])
    ours, theirs = np.array(mesh_pose), np.array(five_point)
    for index in (0, 1):  # roll and yaw; pitch from five points is too rough to compare
        assert np.corrcoef(ours[:, index], theirs[:, index])[0, 1] > 0.8, index


def test_eye_direction_is_relative_to_the_head(
    data_root: Path, detector: RetinaFaceDetector, mesher: FaceMeshRunner
) -> None:
    """Portrait subjects look into the camera, so a turned head has its eyes turned back."""
    for relative in TURNED:
        _, columns = described(data_root, relative, detector, mesher)
        head_yaw, eye_yaw = columns["mesh_pose"][0, 1], columns["eye_direction"][0, 0]
        assert np.sign(eye_yaw) == -np.sign(head_yaw)
        assert 0.5 < abs(eye_yaw / head_yaw) < 1.5
