"""DetectProtectiveEquipment: persons, their body parts, and a summary against required equipment.

Persons and body parts come from `opsis.vision.body_parts`: NanoDet-m "person" boxes merged with
MoveNet MultiPose people (at most `MAX_PERSONS`, Rekognition's 15), faces from THE face pipeline,
FACE / HEAD / LEFT_HAND / RIGHT_HAND regions from the face and the keypoints. As Rekognition does,
only persons and parts detected with confidence 50 or more are returned.

Equipment: no offline model detects face masks, helmets or gloves (MODELS.md §9), and the cues
tried (the face-appearance runner's occlusion probability for FACE_COVER; see
benchmarks/detect_protective_equipment.py) were not measured to work on real masks, so
`EquipmentDetections` is always empty rather than guessed. `Summary` is honest about it: a person
is "with" required equipment only if it is seen to cover the part, and since no equipment type is
judged (`JUDGED_TYPES`), every confident person goes to `PersonsIndeterminate` when any type is
required. With `RequiredEquipmentTypes` empty, every person at MinConfidence or above has all it
needs. A judged type would sort a person into "without" when a required part is visible without
covering equipment.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from opsis.ops.context import Context
from opsis.ops.images import load_image
from opsis.ops.shapes import bounding_box
from opsis.vision.body_parts import BodyPart, Person, assign_faces, locate_parts, merge_persons
from opsis.vision.faces import analyze
from opsis.vision.types import DecodedImage, Detections

if TYPE_CHECKING:
    from mypy_boto3_rekognition.type_defs import (
        DetectProtectiveEquipmentResponseTypeDef,
        ProtectiveEquipmentBodyPartTypeDef,
        ProtectiveEquipmentPersonTypeDef,
        ProtectiveEquipmentSummaryTypeDef,
    )

# Rekognition: "DetectProtectiveEquipment detects PPE worn by up to 15 persons detected in an image."
MAX_PERSONS = 15
# Rekognition "returns predictions only where the detection confidence is between 50% - 100%"; a
# lower MinConfidence acts as 50.
FLOOR_CONFIDENCE = 0.5
# Candidate person boxes the detector scores at least this are merged with the poses; only those
# reaching FLOOR_CONFIDENCE (on their own or through a matching pose) are returned.
CANDIDATE_SCORE = 0.3
# A detected box that neither a pose nor a face confirms must score this much on its own (NanoDet
# gives the close-up cat photo misc/chelsea.png a 0.59 "person", with no pose or face on it).
UNCONFIRMED_SCORE = 0.7
PARTS_FOR_TYPE = {"FACE_COVER": ("FACE",), "HEAD_COVER": ("HEAD",), "HAND_COVER": ("LEFT_HAND", "RIGHT_HAND")}
# Equipment types Opsis can judge; none yet (module docstring).
JUDGED_TYPES: frozenset[str] = frozenset()
PERSON_CLASS = "person"


def detect_protective_equipment(ctx: Context, params: dict[str, Any]) -> DetectProtectiveEquipmentResponseTypeDef:
    """DetectProtectiveEquipment: persons (Id in order of confidence) with their body parts, and
    `Summary` when `SummarizationAttributes` is given."""
    image = load_image(ctx, params["Image"])
    persons = find_persons(ctx, image)
    pose = ctx.pose_estimator()
    response: dict[str, Any] = {
        "ProtectiveEquipmentModelVersion": f"{ctx.object_detector().version}+{pose.version}+no-equipment",
        "Persons": [_person(row, person, image) for row, person in enumerate(persons)],
    }
    attributes = params.get("SummarizationAttributes")
    if attributes is not None:
        response["Summary"] = summarise(
            persons,
            attributes["RequiredEquipmentTypes"],
            max(float(attributes["MinConfidence"]) / 100, FLOOR_CONFIDENCE),
        )
    return response  # type: ignore[return-value]


def find_persons(ctx: Context, image: DecodedImage) -> list[Person]:
    """Persons at confidence 50 or more, most confident first, each with its located body parts."""
    detector = ctx.object_detector()
    objects = detector.detect(image.pixels)
    wanted = (objects.data["class_id"] == detector.classes.index(PERSON_CLASS)) & (
        objects.confidence >= CANDIDATE_SCORE
    )
    poses = ctx.pose_estimator().estimate(image.pixels)
    persons = [p for p in merge_persons(objects[wanted], poses, MAX_PERSONS) if p.confidence >= FLOOR_CONFIDENCE]
    faces = analyze(image, ctx.face_detector()) if persons else Detections.empty()
    assign_faces(persons, faces)
    persons = [p for p in persons if _confirmed(p) or p.confidence >= UNCONFIRMED_SCORE]
    for person in persons:
        person.parts = [part for part in locate_parts(person, faces) if part.confidence >= FLOOR_CONFIDENCE]
    return persons


def _confirmed(person: Person) -> bool:
    return person.keypoints is not None or person.face_row is not None


def _person(row: int, person: Person, image: DecodedImage) -> ProtectiveEquipmentPersonTypeDef:
    return {
        "Id": row,
        "BoundingBox": bounding_box(_clipped(person.xyxy, image), image.width, image.height),
        "Confidence": 100 * person.confidence,
        "BodyParts": [_body_part(part) for part in person.parts],
    }


def _clipped(xyxy: NDArray[np.float32], image: DecodedImage) -> NDArray[np.float32]:
    """Persons' boxes stay inside the photo (MoveNet's can reach past the padding)."""
    return np.clip(xyxy, 0, [image.width, image.height, image.width, image.height]).astype(np.float32)


def _body_part(part: BodyPart) -> ProtectiveEquipmentBodyPartTypeDef:
    return {"Name": part.name, "Confidence": 100 * part.confidence, "EquipmentDetections": []}  # type: ignore[typeddict-item]


def summarise(
    persons: Sequence[Person], required: Iterable[str], threshold: float
) -> ProtectiveEquipmentSummaryTypeDef:
    """Person Ids with, without, and indeterminate for the required equipment at `threshold` (0-1)."""
    summary: dict[str, list[int]] = {
        "PersonsWithRequiredEquipment": [],
        "PersonsWithoutRequiredEquipment": [],
        "PersonsIndeterminate": [],
    }
    types = sorted(set(required))
    for row, person in enumerate(persons):
        summary[_verdict(person, types, threshold)].append(row)
    return summary  # type: ignore[return-value]


def _verdict(person: Person, types: Sequence[str], threshold: float) -> str:
    """Which summary list a person belongs in: "without" as soon as one required part is seen
    bare; else "indeterminate" if any required part could not be judged; else "with"."""
    if person.confidence < threshold:
        return "PersonsIndeterminate"
    parts = {part.name: part for part in person.parts if part.confidence >= threshold}
    undecided = False
    for kind in types:
        for name in PARTS_FOR_TYPE[kind]:
            if kind not in JUDGED_TYPES or name not in parts:
                undecided = True
            elif not _covered(parts[name], kind, threshold):
                return "PersonsWithoutRequiredEquipment"
    return "PersonsIndeterminate" if undecided else "PersonsWithRequiredEquipment"


def _covered(part: BodyPart, kind: str, threshold: float) -> bool:
    """Whether equipment of `kind` is seen covering the part at `threshold` (0-1)."""
    return part.covered.get(kind, 0.0) >= threshold
