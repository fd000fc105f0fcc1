"""Facial attributes a request asks for (`Attributes`, `DetectionAttributes`) and the models that compute them."""

from __future__ import annotations

from collections.abc import Iterable

from opsis.ops.context import Context
from opsis.vision.faces import describe
from opsis.vision.types import DecodedImage, Detections

# Each attribute Rekognition names, and the attribute runner (opsis.vision.registry) computing it.
# A runner runs once per request however many of its attributes are asked for; the face mesh also
# gives every face it describes the 30 landmark types and its mesh-based pose.
ATTRIBUTE_RUNNERS = {
    "AGE_RANGE": "dlib-age-gender",
    "GENDER": "dlib-age-gender",
    "EMOTIONS": "fer-mini-xception",
    "SMILE": "mediapipe-face-mesh",
    "EYES_OPEN": "mediapipe-face-mesh",
    "MOUTH_OPEN": "mediapipe-face-mesh",
    "EYE_DIRECTION": "mediapipe-face-mesh",
    "EYEGLASSES": "face-appearance",
    "SUNGLASSES": "face-appearance",
    "BEARD": "face-appearance",
    "MUSTACHE": "face-appearance",
    "FACE_OCCLUDED": "face-appearance",
}
ALL_ATTRIBUTES = frozenset(ATTRIBUTE_RUNNERS)
# What CompareFaces describes each compared face with (the attributes ComparedFace has).
COMPARED_FACE_ATTRIBUTES = frozenset({"EMOTIONS", "SMILE"})


def requested_attributes(names: Iterable[str] | None) -> frozenset[str]:
    """The attributes beyond DEFAULT that `Attributes` asks for: ALL wins over anything with it
    (Rekognition ANDs ["ALL", "DEFAULT"] into ALL); DEFAULT, an empty list or none ask for none."""
    chosen = set(names or ())
    if "ALL" in chosen:
        return ALL_ATTRIBUTES
    return frozenset(chosen & ALL_ATTRIBUTES)


def describe_faces(ctx: Context, image: DecodedImage, faces: Detections, attributes: frozenset[str]) -> Detections:
    """`faces` with the columns of every runner that the requested `attributes` need."""
    runners = dict.fromkeys(ATTRIBUTE_RUNNERS[name] for name in sorted(attributes))
    return describe(image, faces, [ctx.face_attributes(name) for name in runners])
