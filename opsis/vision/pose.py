"""Head pose (roll, yaw, pitch in degrees) from the five alignment landmarks."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

# A generic adult head, millimetres, x to the image right, y up, z towards the camera, origin at
# the nose tip; rows match the detector's landmarks: eyes (image left, right), nose, mouth corners.
# Widths and depths from mean 3D face models; the nose tip's height (40 of the 65 mm eye-to-mouth
# drop) was set so that the median pitch over ~140 portraits of the shared identity sets is 0.
FACE_MODEL_MM = np.array(
    [
        [-32.0, 40.0, -30.0],
        [32.0, 40.0, -30.0],
        [0.0, 0.0, 0.0],
        [-25.0, -25.0, -25.0],
        [25.0, -25.0, -25.0],
    ],
    dtype=np.float64,
)


def estimate_pose(landmarks: NDArray[np.float32], width: int, height: int) -> NDArray[np.float32]:
    """(n, 3) roll, yaw, pitch in degrees for (n, 5, 2) landmarks in an image of this size.

    Roll is the tilt of the eye line (positive: clockwise in the image); yaw is positive when the
    face turns towards the image's right; pitch is positive when the face looks up. Each lies in
    [-180, 180] as Rekognition's `Pose` does.
    """
    focal = float(max(width, height))
    camera = np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]], dtype=np.float64)
    poses = [_pose_of(points.astype(np.float64), camera) for points in landmarks]
    return np.array(poses, dtype=np.float32).reshape(-1, 3)


def _pose_of(points: NDArray[np.float64], camera: NDArray[np.float64]) -> tuple[float, float, float]:
    eye_vector = points[1] - points[0]
    roll = float(np.degrees(np.arctan2(eye_vector[1], eye_vector[0])))
    # solvePnP wants y down in the image but our model has y up: flip the model's y and z.
    model = FACE_MODEL_MM * np.array([1.0, -1.0, -1.0])
    found, rotation_vector, _ = cv2.solvePnP(model, points, camera, None, flags=cv2.SOLVEPNP_EPNP)
    if not found:
        return roll, 0.0, 0.0
    found, rotation_vector, _ = cv2.solvePnP(
        model, points, camera, None, rotation_vector, np.array([[0.0], [0.0], [500.0]]), True,
        flags=cv2.SOLVEPNP_ITERATIVE,
    )
    rotation, _ = cv2.Rodrigues(rotation_vector)
    # Euler angles of R = Rz(roll) Ry(yaw) Rx(pitch) in the camera frame (x right, y down, z away).
    yaw = float(np.degrees(np.arcsin(np.clip(-rotation[2, 0], -1.0, 1.0))))
    pitch = float(np.degrees(np.arctan2(rotation[2, 1], rotation[2, 2])))
    return roll, -yaw, -pitch

