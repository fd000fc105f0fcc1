"""DetectProtectiveEquipment: persons, their body parts, and a summary against required equipment.

Persons and body parts come from `opsis.vision.body_parts`: NanoDet-m "person" boxes merged with
MoveNet MultiPose people (at most `MAX_PERSONS`, Rekognition's 15), faces from THE face pipeline,
FACE / HEAD / LEFT_HAND / RIGHT_HAND regions from the face and the keypoints. As Rekognition does,
only persons and parts detected with confidence 50 or more are returned.

Equipment: no offline model detects face masks, helmets or gloves (MODELS.md §9). FACE_COVER is
judged from the face-appearance runner's `face_occluded` probability P (a calibrated "face partly
covered") on the detected face: P >= 0.5 gives the FACE part a FACE_COVER detection over the lower
face with Confidence P x 100 and CoversBodyPart true. MEASURED ON PAINTED MASKS ONLY, so optimistic
(benchmarks/face_cover.py, 300 identity photos, one mask each in shapes and colours the runner was
not trained on): AUC 0.98, balanced accuracy 0.91 at 0.5 on held-out identities; 1.7 % of real
unmasked faces (none of 25 bearded) reach 0.5. It is an occlusion cue, not a mask detector: 28 % of
WIDER faces covered by hands, microphones or other objects (12 of 43) also reach 0.5 and would be
reported as covered; a FACE found only from keypoints (no detected face) is not judged, and a mask
can cost the person altogether (misc/astronaut.png with a painted mask returns no person).

HEAD_COVER (hard hats, helmets, caps, hats, surgical caps, hoods) is judged on the HEAD part of a
person with a detected face, by `opsis.vision.runners.cover`: an L2-logistic head, Platt-scaled, on
mean-pooled last-stage features of the open_nsfw ResNet-50 already shipped for moderation, one
128 px crop per head, all heads of a photo in one pass (~11 ms per person on one idle core, 16-21
under load). P >= 0.5 gives the HEAD a HEAD_COVER over its upper half with Confidence P x 100.
Measured by nested 5-fold cross-validation grouped by photo (and CelebA identity) on 336 hand-
labelled real heads from 214 photos, 48 covered (benchmarks/train_head_hand_cover.py,
benchmarks/labels/head_hand_cover.csv): accuracy 0.938 (always "bare": 0.857), balanced accuracy
0.825, ROC AUC 0.974, recall 0.67 at specificity 0.98, ECE 0.02. On the 177 WIDER FACE heads (66
photos, 39 covered): accuracy 0.944 (0.780), balanced 0.881, AUC 0.978. Limits: small sample;
it says "bare" unless sure, so it misses a third of covers, and most hats in close-up portraits
(2 of CelebA's 9 Wearing_Hat heads); a HEAD built from keypoints (no detected face) is not
judged. Most of the labelled heads
come from the shared WIDER photos, so a test on one of them checks wiring, not generalisation.
HAND_COVER stays unjudged (`JUDGED_TYPES`; no detection, persons requiring it are
indeterminate): the same recipe on the pipeline's hand crops had 7 gloves among 132 labelled
hands and scored AUC 0.28 (below chance), so no glove head ships.

`Summary`: a person is "with" the required equipment when every required part is seen covered at
MinConfidence, "without" as soon as one required part is judged bare with that confidence (1 - P
for a judged type), and "indeterminate" otherwise (an unjudged type, an unseen part, or P in between).
With `RequiredEquipmentTypes` empty, every person at MinConfidence or above has all it needs.
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
from opsis.vision.runners.base import EquipmentClassifier, FaceAttributes
from opsis.vision.types import DecodedImage, Detections

if TYPE_CHECKING:
    from mypy_boto3_rekognition.type_defs import (
        DetectProtectiveEquipmentResponseTypeDef,
        EquipmentDetectionTypeDef,
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
# Equipment types Opsis can judge (module docstring).
JUDGED_TYPES: frozenset[str] = frozenset({"FACE_COVER", "HEAD_COVER"})
PERSON_CLASS = "person"
APPEARANCE_RUNNER = "face-appearance"
EQUIPMENT_RUNNER = "resnet50-cover"
# Rekognition returns equipment detected with confidence 50 or more; below it, no detection.
EQUIPMENT_FLOOR = 0.5
# A mask runs from the nose bridge to below the chin: RetinaFace's box runs from the brows to the
# chin, and the nose bridge sits about 40 % of the way down it.
MASK_TOP = 0.4
# Where each cover lies on its part, as (top, bottom) shares of the part's height: a mask over the
# lower face; a hat or helmet over the upper half of the HEAD (the crown, down to the brows).
COVER_SPAN = {"FACE_COVER": (MASK_TOP, 1.0), "HEAD_COVER": (0.0, 0.5)}


def detect_protective_equipment(ctx: Context, params: dict[str, Any]) -> DetectProtectiveEquipmentResponseTypeDef:
    """DetectProtectiveEquipment: persons (Id in order of confidence) with their body parts, and
    `Summary` when `SummarizationAttributes` is given."""
    image = load_image(ctx, params["Image"])
    persons = find_persons(ctx, image)
    versions = [ctx.object_detector().version, ctx.pose_estimator().version, _appearance(ctx).version]
    versions.append(_equipment_classifier(ctx).version)
    response: dict[str, Any] = {
        "ProtectiveEquipmentModelVersion": "+".join(versions),
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
    persons = merge_persons(objects[wanted], poses, MAX_PERSONS)
    faces = analyze(image, ctx.face_detector()) if persons else Detections.empty()
    assign_faces(persons, faces)
    # A detected face in a candidate's upper half confirms it as a person: a mask or a helmet can
    # drop the detector's person score below the floor (a painted mask took one from 0.73 to 0.39).
    for person in persons:
        if person.face_row is not None:
            person.confidence = max(person.confidence, float(faces.confidence[person.face_row]))
    persons = sorted((p for p in persons if p.confidence >= FLOOR_CONFIDENCE), key=lambda p: -p.confidence)
    persons = [p for p in persons if _confirmed(p) or p.confidence >= UNCONFIRMED_SCORE]
    covered = _appearance(ctx).annotate(image.pixels, faces)["face_occluded"] if persons else np.zeros(0, np.float32)
    for person in persons:
        person.parts = [part for part in locate_parts(person, faces) if part.confidence >= FLOOR_CONFIDENCE]
        _judge_face_cover(person, covered)
    _judge_head_cover(_equipment_classifier(ctx), image, persons)
    return persons


def _appearance(ctx: Context) -> FaceAttributes:
    return ctx.face_attributes(APPEARANCE_RUNNER)


def _equipment_classifier(ctx: Context) -> EquipmentClassifier:
    return ctx.equipment_classifier(EQUIPMENT_RUNNER)


def _judge_head_cover(classifier: EquipmentClassifier, image: DecodedImage, persons: Sequence[Person]) -> None:
    """P(head covered) onto HEAD parts built from a detected face (the classifier learnt on heads
    around face boxes; a HEAD guessed from keypoints stays unjudged), all in one batch."""
    heads = [part for person in persons if person.face_row is not None for part in person.parts if part.name == "HEAD"]
    if not heads:
        return
    boxes = np.stack([part.xyxy for part in heads]).astype(np.float32)
    covered = classifier.covered(image.pixels, boxes, ["HEAD_COVER"] * len(heads))
    for part, probability in zip(heads, covered, strict=True):
        part.covered["HEAD_COVER"] = float(probability)


def _judge_face_cover(person: Person, occluded: NDArray[Any]) -> None:
    """P(face covered) onto the FACE part, only when it is a detected face (the appearance runner
    measures the aligned face; a FACE guessed from keypoints stays unjudged)."""
    if person.face_row is None:
        return
    for part in person.parts:
        if part.name == "FACE":
            part.covered["FACE_COVER"] = float(occluded[person.face_row])


def _confirmed(person: Person) -> bool:
    return person.keypoints is not None or person.face_row is not None


def _person(row: int, person: Person, image: DecodedImage) -> ProtectiveEquipmentPersonTypeDef:
    return {
        "Id": row,
        "BoundingBox": bounding_box(_clipped(person.xyxy, image), image.width, image.height),
        "Confidence": 100 * person.confidence,
        "BodyParts": [_body_part(part, image) for part in person.parts],
    }


def _clipped(xyxy: NDArray[np.float32], image: DecodedImage) -> NDArray[np.float32]:
    """Persons' boxes stay inside the photo (MoveNet's can reach past the padding)."""
    return np.clip(xyxy, 0, [image.width, image.height, image.width, image.height]).astype(np.float32)


def _body_part(part: BodyPart, image: DecodedImage) -> ProtectiveEquipmentBodyPartTypeDef:
    detections = [
        _equipment(kind, part, probability, image)
        for kind, probability in part.covered.items()
        if kind in JUDGED_TYPES and probability >= EQUIPMENT_FLOOR
    ]
    return {"Name": part.name, "Confidence": 100 * part.confidence, "EquipmentDetections": detections}  # type: ignore[typeddict-item]


def _equipment(kind: str, part: BodyPart, probability: float, image: DecodedImage) -> EquipmentDetectionTypeDef:
    """Equipment of `kind` over its span of the part (COVER_SPAN): a FACE_COVER from the nose
    bridge to the chin of the FACE, a HEAD_COVER over the upper half of the HEAD."""
    left, top, right, bottom = (float(v) for v in part.xyxy)
    upper, lower = COVER_SPAN[kind]
    span = np.array([left, top + upper * (bottom - top), right, top + lower * (bottom - top)], np.float32)
    return {
        "BoundingBox": bounding_box(_clipped(span, image), image.width, image.height),
        "Confidence": 100 * probability,
        "Type": kind,  # type: ignore[typeddict-item]
        "CoversBodyPart": {"Confidence": 100 * probability, "Value": True},
    }


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
    """Which summary list a person belongs in: "without" as soon as one required part is judged
    bare; else "indeterminate" if any required part could not be judged; else "with"."""
    if person.confidence < threshold:
        return "PersonsIndeterminate"
    parts = {part.name: part for part in person.parts if part.confidence >= threshold}
    undecided = False
    for kind in types:
        for name in PARTS_FOR_TYPE[kind]:
            judged = _judgement(parts[name], kind, threshold) if kind in JUDGED_TYPES and name in parts else None
            if judged is False:
                return "PersonsWithoutRequiredEquipment"
            undecided = undecided or judged is None
    return "PersonsIndeterminate" if undecided else "PersonsWithRequiredEquipment"


def _judgement(part: BodyPart, kind: str, threshold: float) -> bool | None:
    """True if equipment of `kind` is seen covering the part at `threshold` (0-1), False if the
    part is seen bare with that confidence, None if not judged or in between."""
    probability = part.covered.get(kind)
    if probability is None:
        return None
    if probability >= threshold:
        return True
    return False if 1 - probability >= threshold else None
