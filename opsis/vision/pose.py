"""Head pose (roll, yaw, pitch in degrees) from the five alignment landmarks.

A closed form under orthographic projection of a generic head: the nose tip stands out of the
plane of the eyes and mouth corners, so turning the head shifts it sideways (yaw) or along the
eye-to-mouth line (pitch) by an amount set by its depth. With five points this is far steadier
than a perspective solve (solvePnP swung pitch by 25 degrees for a 4 mm change in the model).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

# Generic head, millimetres, relative to the nose tip: half the distance between the eye centres,
# how far the eyes and mouth corners lie behind the nose tip, and their heights above and below
# it. The heights (39 and 26) were set so that the median pitch over ~140 portraits of the shared
# identity sets is 0; widths and depths are those of mean 3D face models.
EYE_HALF_WIDTH = 32.0
EYE_DEPTH = 30.0
MOUTH_DEPTH = 25.0
EYE_HEIGHT = 39.0
MOUTH_DROP = 26.0


def estimate_pose(landmarks: NDArray[np.float32]) -> NDArray[np.float32]:
    """(n, 3) roll, yaw, pitch in degrees for (n, 5, 2) landmarks: eyes, nose, mouth corners.

    Roll is the tilt of the eye line (positive: clockwise in the image); yaw is positive when the
    face turns towards the image's right; pitch is positive when the face looks up.
    """
    points = landmarks.astype(np.float64)
    eye_vector = points[:, 1] - points[:, 0]
    roll = np.arctan2(eye_vector[:, 1], eye_vector[:, 0])
    upright = _rotate(points, -roll)
    eyes = upright[:, :2].mean(axis=1)
    nose = upright[:, 2]
    mouth = upright[:, 3:].mean(axis=1)
    eye_distance = np.maximum(np.linalg.norm(eye_vector, axis=1), 1e-6)
    # Yaw: the nose's sideways offset from the eye-mouth midline, against the eye distance.
    sideways = (nose[:, 0] - (eyes[:, 0] + mouth[:, 0]) / 2) / eye_distance
    midline_depth = (EYE_DEPTH + MOUTH_DEPTH) / 2
    yaw = np.arctan(sideways * 2 * EYE_HALF_WIDTH / midline_depth)
    # Pitch: where the nose falls between eye and mouth height, r = 39/65 when frontal.
    drop = np.maximum(mouth[:, 1] - eyes[:, 1], 1e-6)
    ratio = (nose[:, 1] - eyes[:, 1]) / drop
    total_height = EYE_HEIGHT + MOUTH_DROP
    pitch = -np.arctan2(total_height * ratio - EYE_HEIGHT, EYE_DEPTH - ratio * (EYE_DEPTH - MOUTH_DEPTH))
    angles: NDArray[np.float32] = np.degrees(np.stack([roll, yaw, pitch], axis=1)).astype(np.float32)
    return angles.reshape(-1, 3)


def _rotate(points: NDArray[np.float64], angles: NDArray[np.float64]) -> NDArray[np.float64]:
    """Rotate each face's points by its angle (radians) about the face's eye midpoint."""
    center = points[:, :2].mean(axis=1, keepdims=True)
    cos, sin = np.cos(angles)[:, None], np.sin(angles)[:, None]
    shifted = points - center
    x = shifted[..., 0] * cos - shifted[..., 1] * sin
    y = shifted[..., 0] * sin + shifted[..., 1] * cos
    rotated: NDArray[np.float64] = np.stack([x, y], axis=-1) + center
    return rotated
