"""People and their FACE, HEAD and hand regions, from an object detector, a pose estimator and faces.

Persons are the detector's "person" boxes merged with the pose estimator's people: a pose whose box
overlaps a detected person (IoU >= `MATCH_IOU`) lends it its keypoints, and a pose no detection
matches is a person of its own (MoveNet finds people NanoDet scores low, and vice versa). A
person's confidence is the better of the two scores.

Body parts, in pixels of the upright image:
  FACE   the detected face (RetinaFace) whose centre lies in the person's upper half and nearest the
         head keypoints; else a square around the confident head keypoints (nose, eyes, ears).
  HEAD   the face box widened and raised to take in the skull: the hair and anything worn on it.
  hands  a square centred past the wrist along the forearm (elbow -> wrist), sized by the forearm;
         LEFT_HAND is the person's own left (MoveNet's "left_wrist"), as in COCO.
A part is reported only when the points it is built from are confident (`MIN_KEYPOINT_SCORE`);
its confidence is theirs (or the face detector's, for a detected face).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from opsis.vision.types import Detections, box_iou

MATCH_IOU = 0.3
MIN_KEYPOINT_SCORE = 0.3
# A pose no detected box confirms counts as a person only with this many confident keypoints
# (MoveNet alone scores a close-up cat 0.59 as a person, with no confident keypoint on it).
MIN_POSE_ONLY_KEYPOINTS = 6
# Keypoint indices (COCO order, as MoveNet's).
NOSE, LEFT_EYE, RIGHT_EYE, LEFT_EAR, RIGHT_EAR = 0, 1, 2, 3, 4
LEFT_ELBOW, RIGHT_ELBOW, LEFT_WRIST, RIGHT_WRIST = 7, 8, 9, 10
HEAD_POINTS = (NOSE, LEFT_EYE, RIGHT_EYE, LEFT_EAR, RIGHT_EAR)
# A hand's centre lies this far past the wrist, and its box is this wide, in forearm lengths
# (a hand is about 0.75 of the forearm in adult proportions; its palm centre ~0.35 beyond the wrist).
HAND_OFFSET = 0.35
HAND_SIDE = 0.8
# The skull above a face box: RetinaFace's box runs from the brows to the chin, so the crown is about
# 0.6 face heights above its top; the head is 20 % wider than the face.
HEAD_RAISE = 0.6
HEAD_WIDEN = 0.2
# A face built from keypoints: the eye (or ear) spread times this is its width.
FACE_FROM_EYES = 2.2
FACE_FROM_EARS = 1.1


@dataclass
class BodyPart:
    name: str  # FACE, HEAD, LEFT_HAND or RIGHT_HAND
    xyxy: NDArray[np.float32]
    confidence: float  # 0-1
    # Equipment type -> P (0-1) that it covers the part; a type absent here was not judged.
    covered: dict[str, float] = field(default_factory=dict)


@dataclass
class Person:
    xyxy: NDArray[np.float32]
    confidence: float  # 0-1
    keypoints: NDArray[np.float32] | None = None  # (17, 2) pixels
    keypoint_score: NDArray[np.float32] | None = None  # (17,)
    face_row: int | None = None  # row in the faces Detections
    parts: list[BodyPart] = field(default_factory=list)


def merge_persons(detected: Detections, poses: Detections, limit: int) -> list[Person]:
    """Detected person boxes and pose-estimated people as one list, most confident first."""
    persons = [Person(box, float(score)) for box, score in zip(detected.xyxy, detected.confidence, strict=True)]
    taken: set[int] = set()
    for row in range(len(poses)):
        match = _best_match(poses.xyxy[row], detected.xyxy, taken)
        if match is None and _confident_count(poses, row) < MIN_POSE_ONLY_KEYPOINTS:
            continue
        if match is None:
            persons.append(Person(poses.xyxy[row], float(poses.confidence[row])))
            match = len(persons) - 1
        taken.add(match)
        person = persons[match]
        person.confidence = max(person.confidence, float(poses.confidence[row]))
        person.keypoints = _landmarks(poses)[row]
        person.keypoint_score = poses.data["keypoint_score"][row]
    persons.sort(key=lambda person: -person.confidence)
    return persons[:limit]


def _best_match(box: NDArray[np.float32], boxes: NDArray[np.float32], taken: set[int]) -> int | None:
    if len(boxes) == 0:
        return None
    overlap = box_iou(box, boxes)
    # `taken` also holds persons made from unmatched poses, appended past the detected rows.
    overlap[[row for row in taken if row < len(boxes)]] = 0.0
    best = int(np.argmax(overlap))
    return best if overlap[best] >= MATCH_IOU else None


def _confident_count(poses: Detections, row: int) -> int:
    return int((poses.data["keypoint_score"][row] >= MIN_KEYPOINT_SCORE).sum())


def _landmarks(poses: Detections) -> NDArray[np.float32]:
    if poses.landmarks is None:
        raise ValueError("the pose estimator returned no keypoints")
    return poses.landmarks


def assign_faces(persons: list[Person], faces: Detections) -> None:
    """Give each person at most one face: a face centred in its upper half, nearest its head."""
    centres = (faces.xyxy[:, :2] + faces.xyxy[:, 2:]) / 2
    free = set(range(len(faces)))
    for person in persons:
        left, top, right, bottom = person.xyxy
        inside = [
            row for row in free
            if left <= centres[row, 0] <= right and top <= centres[row, 1] <= top + (bottom - top) / 2
        ]  # fmt: skip
        if not inside:
            continue
        anchor = _head_anchor(person)
        row = min(inside, key=lambda r: float(np.hypot(*(centres[r] - anchor))))
        person.face_row = row
        free.discard(row)


def _head_anchor(person: Person) -> NDArray[np.float32]:
    """Where the head should be: the confident head keypoints' mean, else the box's top centre."""
    points = _confident(person, HEAD_POINTS)
    if len(points):
        return np.asarray(points.mean(axis=0), np.float32)
    left, top, right, _ = person.xyxy
    return np.array([(left + right) / 2, top], np.float32)


def _confident(person: Person, indices: tuple[int, ...]) -> NDArray[np.float32]:
    if person.keypoints is None or person.keypoint_score is None:
        return np.zeros((0, 2), np.float32)
    chosen = [i for i in indices if person.keypoint_score[i] >= MIN_KEYPOINT_SCORE]
    return person.keypoints[chosen]


def locate_parts(person: Person, faces: Detections) -> list[BodyPart]:
    """The person's FACE, HEAD and hand regions that can be located (see the module docstring)."""
    face = _face(person, faces)
    parts = [] if face is None else [face, BodyPart("HEAD", head_box(face.xyxy), face.confidence)]
    for name, elbow, wrist in (("LEFT_HAND", LEFT_ELBOW, LEFT_WRIST), ("RIGHT_HAND", RIGHT_ELBOW, RIGHT_WRIST)):
        hand = _hand(person, name, elbow, wrist)
        if hand is not None:
            parts.append(hand)
    return parts


def _face(person: Person, faces: Detections) -> BodyPart | None:
    if person.face_row is not None:
        return BodyPart("FACE", faces.xyxy[person.face_row], float(faces.confidence[person.face_row]))
    if person.keypoints is None or person.keypoint_score is None:
        return None
    scores = person.keypoint_score
    eyes = scores[LEFT_EYE] >= MIN_KEYPOINT_SCORE and scores[RIGHT_EYE] >= MIN_KEYPOINT_SCORE
    ears = scores[LEFT_EAR] >= MIN_KEYPOINT_SCORE and scores[RIGHT_EAR] >= MIN_KEYPOINT_SCORE
    if scores[NOSE] < MIN_KEYPOINT_SCORE or not (eyes or ears):
        return None
    pair, factor = ((LEFT_EYE, RIGHT_EYE), FACE_FROM_EYES) if eyes else ((LEFT_EAR, RIGHT_EAR), FACE_FROM_EARS)
    points = person.keypoints
    width = factor * float(np.hypot(*(points[pair[0]] - points[pair[1]])))
    centre = (points[pair[0]] + points[pair[1]]) / 2 * 0.5 + points[NOSE] * 0.5
    half = np.array([width / 2, width * 0.6], np.float32)  # faces are taller than wide
    used = [NOSE, *pair]
    confidence = float(scores[used].min())
    return BodyPart("FACE", np.concatenate([centre - half, centre + half]).astype(np.float32), confidence)


def head_box(face: NDArray[np.float32]) -> NDArray[np.float32]:
    """The head around a face box: wider, and raised to the crown."""
    left, top, right, bottom = face
    width, height = right - left, bottom - top
    widen = HEAD_WIDEN * width / 2
    return np.array([left - widen, top - HEAD_RAISE * height, right + widen, bottom], np.float32)


def _hand(person: Person, name: str, elbow: int, wrist: int) -> BodyPart | None:
    if person.keypoints is None or person.keypoint_score is None:
        return None
    score = float(min(person.keypoint_score[elbow], person.keypoint_score[wrist]))
    if score < MIN_KEYPOINT_SCORE:
        return None
    forearm = person.keypoints[wrist] - person.keypoints[elbow]
    length = float(np.hypot(*forearm))
    if length < 1.0:
        return None
    centre = person.keypoints[wrist] + HAND_OFFSET * forearm
    half = HAND_SIDE * length / 2
    return BodyPart(
        name, np.array([centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half], np.float32), score
    )
