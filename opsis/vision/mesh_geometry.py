"""Geometry on MediaPipe's 468-point face mesh: head axes and pose, Rekognition's 30 landmarks,
expression measures and gaze. Pure numpy; opsis.vision.runners.face_mesh runs the networks.

Coordinates are image pixels, x right and y down; the mesh's z is depth in the same pixel scale,
growing away from the camera. The mesh's point numbering is anatomical, but the network places a
mirrored face's points mirrored too, so for an upright face the "image-left" points below are on
the image's left whichever way the person faces.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

# Mesh points that mirror each other, (image-left, image-right) for an upright face: eye corners,
# mouth corners, brows, nose wings, cheeks and jaw (checked by running the mesh on mirrored photos).
SYMMETRIC_PAIRS = (
    (33, 263), (133, 362), (61, 291), (70, 300), (107, 336), (105, 334), (46, 276), (129, 358),
    (234, 454), (93, 323), (132, 361), (58, 288), (172, 397), (136, 365), (150, 379), (127, 356),
    (162, 389), (21, 251), (54, 284), (103, 332), (67, 297), (109, 338),
)  # fmt: skip
# Midline points above the eyes (forehead, glabella) and below the mouth (chin).
MIDLINE_TOP = (10, 151, 9, 8)
MIDLINE_BOTTOM = (152, 175, 199, 200)
NOSE_TIP = 1
UPPER_LIP_INNER, LOWER_LIP_INNER = 13, 14
MOUTH_CORNERS = (61, 291)
OUTER_EYE_CORNERS = (33, 263)
INNER_EYE_CORNERS = (133, 362)

# The iris network's eye contour (71 points): 0-8 run along the lower lid from the outer corner
# (mesh 33 / 263) to the inner one (133 / 362), 9-15 along the upper lid from outer to inner; the
# rest are brow and surrounding points. Contour 12 is above contour 4, and so on for each
# (upper, lower) pair below.
EYE_OUTER, EYE_INNER = 0, 8
UPPER_LID_MIDDLE, LOWER_LID_MIDDLE = 12, 4
EYE_OPENING = slice(0, 16)
CENTRAL_LID_PAIRS = ((10, 2), (11, 3), (12, 4), (13, 5), (14, 6))

# Rekognition's 30 landmark types, in the order of botocore's LandmarkType enum: where each comes
# from. ("mesh", i): mesh point i; ("eye", e, j): contour point j of eye e (0 the image-left eye,
# 1 the image-right one); ("eye centre", e): the mean of eye e's opening contour; ("pupil", e).
LANDMARK_SOURCES: tuple[tuple[str, int, int], ...] = (
    ("eye centre", 0, 0),  # eyeLeft
    ("eye centre", 1, 0),  # eyeRight
    ("mesh", NOSE_TIP, 0),  # nose
    ("mesh", 61, 0),  # mouthLeft
    ("mesh", 291, 0),  # mouthRight
    ("mesh", 70, 0),  # leftEyeBrowLeft: outer end of the image-left brow
    ("mesh", 107, 0),  # leftEyeBrowRight: its inner end
    ("mesh", 105, 0),  # leftEyeBrowUp: its top
    ("mesh", 336, 0),  # rightEyeBrowLeft: inner end of the image-right brow
    ("mesh", 300, 0),  # rightEyeBrowRight: its outer end
    ("mesh", 334, 0),  # rightEyeBrowUp
    ("eye", 0, EYE_OUTER),  # leftEyeLeft
    ("eye", 0, EYE_INNER),  # leftEyeRight
    ("eye", 0, UPPER_LID_MIDDLE),  # leftEyeUp
    ("eye", 0, LOWER_LID_MIDDLE),  # leftEyeDown
    ("eye", 1, EYE_INNER),  # rightEyeLeft
    ("eye", 1, EYE_OUTER),  # rightEyeRight
    ("eye", 1, UPPER_LID_MIDDLE),  # rightEyeUp
    ("eye", 1, LOWER_LID_MIDDLE),  # rightEyeDown
    ("mesh", 98, 0),  # noseLeft: the image-left nose wing at the nostril
    ("mesh", 327, 0),  # noseRight
    ("mesh", 0, 0),  # mouthUp: top of the upper lip
    ("mesh", 17, 0),  # mouthDown: bottom of the lower lip
    ("pupil", 0, 0),  # leftPupil
    ("pupil", 1, 0),  # rightPupil
    ("mesh", 234, 0),  # upperJawlineLeft: face edge at eye height
    ("mesh", 172, 0),  # midJawlineLeft: jaw angle
    ("mesh", 152, 0),  # chinBottom
    ("mesh", 397, 0),  # midJawlineRight
    ("mesh", 454, 0),  # upperJawlineRight
)

# Eyeball radius in eye widths (corner to corner, measured in 3D on the mesh): 12 mm against a
# 29 mm palpebral fissure.
EYEBALL_RADIUS = 0.41
MAX_PLANAR_GAZE = float(np.sin(np.radians(60)))


def head_axes(mesh: NDArray[np.float32], pitch_offset: float = 0.0) -> NDArray[np.float64]:
    """(n, 3, 3) rows: the head's rightward (image-left eye to image-right eye), downward and
    backward unit vectors in image axes. The across axis averages the symmetric pairs, the down
    axis runs from forehead to chin; both lean back at the top, so `pitch_offset` (degrees) turns
    the down and back axes about the across axis, adding itself to the pitch: it is set so that
    faces looking into the camera have pitch 0 on average."""
    points = mesh.astype(np.float64)
    left, right = np.array(SYMMETRIC_PAIRS).T
    across = _unit((points[:, right] - points[:, left]).mean(axis=1))
    down = points[:, list(MIDLINE_BOTTOM)].mean(axis=1) - points[:, list(MIDLINE_TOP)].mean(axis=1)
    down = _unit(down - (down * across).sum(axis=1, keepdims=True) * across)
    back = np.cross(across, down)
    tilt = np.radians(pitch_offset)
    down, back = np.cos(tilt) * down - np.sin(tilt) * back, np.sin(tilt) * down + np.cos(tilt) * back
    return np.stack([across, down, back], axis=1)


def pose_angles(axes: NDArray[np.float64]) -> NDArray[np.float32]:
    """(n, 3) roll, yaw, pitch in degrees with opsis.vision.pose's signs: roll positive clockwise
    in the image, yaw positive when the face turns towards the image's right, pitch positive up.
    Roll comes first (the tilt of the across axis in the image), then yaw and pitch from where the
    de-rolled face points; the face points towards the camera, so no angle folds past +-90."""
    across = axes[:, 0]
    roll = np.arctan2(across[:, 1], across[:, 0])
    yaw, pitch = _yaw_pitch(_derolled(-axes[:, 2], roll))
    angles: NDArray[np.float32] = np.degrees(np.stack([roll, yaw, pitch], axis=1)).astype(np.float32)
    return angles


def _yaw_pitch(facing: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Yaw and pitch (radians) of directions given with the camera looking along +z: (0, 0, -1),
    straight at the camera, is (0, 0)."""
    yaw = np.arctan2(facing[:, 0], -facing[:, 2])
    pitch = np.arctan2(-facing[:, 1], np.hypot(facing[:, 0], facing[:, 2]))
    return yaw, pitch


def _derolled(vectors: NDArray[np.float64], roll: NDArray[np.float64]) -> NDArray[np.float64]:
    """Vectors turned by -roll about the camera axis."""
    cos, sin = np.cos(roll), np.sin(roll)
    x = vectors[:, 0] * cos + vectors[:, 1] * sin
    y = vectors[:, 1] * cos - vectors[:, 0] * sin
    return np.stack([x, y, vectors[:, 2]], axis=1)


def _unit(vectors: NDArray[np.float64]) -> NDArray[np.float64]:
    unit: NDArray[np.float64] = vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)
    return unit


def in_head_frame(mesh: NDArray[np.float32], axes: NDArray[np.float64]) -> NDArray[np.float64]:
    """Mesh points in head coordinates (across, down, back) about the nose tip, in units of the
    outer-eye-corner span, so measures taken on them ignore roll, yaw, pitch and face size."""
    points = mesh.astype(np.float64) - mesh[:, NOSE_TIP : NOSE_TIP + 1]
    head = np.einsum("nij,nkj->nki", axes, points)
    span = np.linalg.norm(head[:, OUTER_EYE_CORNERS[1]] - head[:, OUTER_EYE_CORNERS[0]], axis=1)
    scaled: NDArray[np.float64] = head / np.maximum(span, 1e-9)[:, None, None]
    return scaled


def lip_corner_retraction(head: NDArray[np.float64]) -> NDArray[np.float32]:
    """How far the mouth corners sit behind the inner upper lip's centre, in eye spans: a smile
    (zygomaticus major) pulls the corners up and back along the cheeks."""
    corners = head[:, list(MOUTH_CORNERS), 2].mean(axis=1)
    retraction: NDArray[np.float32] = (corners - head[:, UPPER_LIP_INNER, 2]).astype(np.float32)
    return retraction


def lip_gap(head: NDArray[np.float64]) -> NDArray[np.float32]:
    """Distance between the inner lips' centres, in eye spans."""
    gap = np.linalg.norm(head[:, UPPER_LIP_INNER] - head[:, LOWER_LIP_INNER], axis=1)
    result: NDArray[np.float32] = gap.astype(np.float32)
    return result


def eye_opening(contours: NDArray[np.float32]) -> NDArray[np.float32]:
    """Mean over both eyes of the lid gap (five central pairs) over the corner-to-corner width,
    on the iris network's contours in the image (the mesh's own lids barely follow a blink)."""
    points = contours[..., :2].astype(np.float64)
    upper, lower = np.array(CENTRAL_LID_PAIRS).T
    gaps = np.linalg.norm(points[:, :, upper] - points[:, :, lower], axis=3).mean(axis=2)
    widths = np.linalg.norm(points[:, :, EYE_INNER] - points[:, :, EYE_OUTER], axis=2)
    opening: NDArray[np.float32] = (gaps / np.maximum(widths, 1e-9)).mean(axis=1).astype(np.float32)
    return opening


def rekognition_landmarks(
    mesh: NDArray[np.float32], contours: NDArray[np.float32], irises: NDArray[np.float32]
) -> NDArray[np.float32]:
    """(n, 30, 2) image points of Rekognition's landmark types, in LANDMARK_SOURCES order."""
    columns = []
    for kind, first, second in LANDMARK_SOURCES:
        match kind:
            case "mesh":
                columns.append(mesh[:, first, :2])
            case "eye":
                columns.append(contours[:, first, second, :2])
            case "eye centre":
                columns.append(contours[:, first, EYE_OPENING, :2].mean(axis=1))
            case "pupil":
                columns.append(irises[:, first, 0, :2])
            case _:
                raise ValueError(f"unknown landmark source {kind!r}")
    landmarks: NDArray[np.float32] = np.stack(columns, axis=1).astype(np.float32)
    return landmarks


def pupil_offsets(
    mesh: NDArray[np.float32], contours: NDArray[np.float32], irises: NDArray[np.float32]
) -> NDArray[np.float64]:
    """(n, 2 eyes, 2) image offsets of each pupil from the midpoint of its eye's corners, in eye
    widths (corner to corner in 3D on the mesh, so turning the head does not shrink the unit)."""
    outer, inner = mesh[:, list(OUTER_EYE_CORNERS)], mesh[:, list(INNER_EYE_CORNERS)]
    widths = np.linalg.norm(outer.astype(np.float64) - inner, axis=2)
    middle = (contours[:, :, EYE_OUTER, :2] + contours[:, :, EYE_INNER, :2]).astype(np.float64) / 2
    offsets: NDArray[np.float64] = (irises[:, :, 0, :2] - middle) / np.maximum(widths, 1e-9)[:, :, None]
    return offsets


def gaze_directions(
    offsets: NDArray[np.float64], axes: NDArray[np.float64], corner_depth: float, iris_rise: float
) -> NDArray[np.float64]:
    """(n, 3) unit gaze vectors in image axes (towards the camera: (0, 0, -1)), both eyes averaged,
    from `pupil_offsets`.

    Each pupil sits on a sphere of EYEBALL_RADIUS eye widths whose centre lies `corner_depth` eye
    widths behind the midpoint of the eye corners along the head's forward axis, and looking
    straight ahead the pupil is `iris_rise` eye widths above that midpoint. Under orthographic
    projection a pupil's offset then gives its gaze's x and y; z follows from unit length.
    """
    forward, up = -axes[:, None, 2, :2], -axes[:, None, 1, :2]
    planar = (offsets + corner_depth * forward - iris_rise * up) / EYEBALL_RADIUS
    # A visible pupil is at most about 60 degrees off the camera axis: clip what noise pushes beyond.
    planar /= np.maximum(np.linalg.norm(planar, axis=2, keepdims=True) / MAX_PLANAR_GAZE, 1.0)
    depth = -np.sqrt(1.0 - (planar**2).sum(axis=2, keepdims=True))
    return _unit(np.concatenate([planar, depth], axis=2).mean(axis=1))


def eye_direction(axes: NDArray[np.float64], gaze: NDArray[np.float64]) -> NDArray[np.float32]:
    """(n, 2) yaw, pitch in degrees of the gaze relative to the head (Rekognition's EyeDirection
    is "independent of the head pose"), with the head pose's signs: yaw positive towards the
    image's right, pitch positive up. Looking into the camera, it is about minus the head's yaw
    and pitch."""
    in_head = np.einsum("nij,nj->ni", axes, gaze)  # (across, down, back) components
    yaw, pitch = _yaw_pitch(in_head)
    angles: NDArray[np.float32] = np.degrees(np.stack([yaw, pitch], axis=1)).astype(np.float32)
    return angles
