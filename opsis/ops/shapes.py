"""Builders for Rekognition's nested response shapes; the one place pixels become ratios."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from opsis.service_model import shape_enum, shape_members
from opsis.store.base import Face
from opsis.vision.runners.emotion import EMOTION_TYPES
from opsis.vision.segments import Segment, SegmentType
from opsis.vision.types import Detections
from opsis.vision.video import VideoMetadata

if TYPE_CHECKING:
    from mypy_boto3_rekognition.type_defs import (
        AgeRangeTypeDef,
        BoundingBoxTypeDef,
        ComparedFaceTypeDef,
        EmotionTypeDef,
        EyeDirectionTypeDef,
        FaceDetailTypeDef,
        FaceTypeDef,
        GenderTypeDef,
        ImageQualityTypeDef,
        LandmarkTypeDef,
        PointTypeDef,
        PoseTypeDef,
        TextDetectionTypeDef,
    )

# The five alignment points, in the detector's order (image left to right).
FIVE_POINT_LANDMARKS = ("eyeLeft", "eyeRight", "nose", "mouthLeft", "mouthRight")
# Rekognition's 30 landmark types in the service model's order: the face mesh's `landmarks30` order.
LANDMARK_TYPES = shape_enum("LandmarkType")


def bounding_box(xyxy: NDArray[np.float32], width: int, height: int) -> BoundingBoxTypeDef:
    """Box as ratios of the image size. Like Rekognition's, it may reach past the image edge."""
    left, top, right, bottom = (float(v) for v in xyxy)
    return {
        "Width": (right - left) / width,
        "Height": (bottom - top) / height,
        "Left": left / width,
        "Top": top / height,
    }


def landmarks(points: NDArray[np.float32], names: tuple[str, ...], width: int, height: int) -> list[LandmarkTypeDef]:
    return [
        {"Type": name, "X": float(x) / width, "Y": float(y) / height}  # type: ignore[typeddict-item]
        for name, (x, y) in zip(names, points, strict=True)
    ]


def pose(roll_yaw_pitch: NDArray[np.float32]) -> PoseTypeDef:
    roll, yaw, pitch = (float(v) for v in roll_yaw_pitch)
    return {"Roll": roll, "Yaw": yaw, "Pitch": pitch}


def quality(brightness_sharpness: NDArray[np.float32]) -> ImageQualityTypeDef:
    brightness, sharpness = (float(v) for v in brightness_sharpness)
    return {"Brightness": brightness, "Sharpness": sharpness}


def face_detail(
    faces: Detections, row: int, width: int, height: int, attributes: frozenset[str] = frozenset()
) -> FaceDetailTypeDef:
    """The `FaceDetail` of one analysed face: the DEFAULT fields, then each of the requested
    `attributes` (Rekognition's names, e.g. SMILE) whose columns the pipeline computed.

    Where the face mesh described the face, Landmarks are its 30 types and Pose its 3D estimate;
    otherwise they come from the detector's five points.
    """
    data = faces.data
    detail: FaceDetailTypeDef = {
        "BoundingBox": bounding_box(faces.xyxy[row], width, height),
        "Confidence": float(faces.confidence[row]) * 100.0,
    }
    if "landmarks30" in data:
        detail["Landmarks"] = landmarks(data["landmarks30"][row], LANDMARK_TYPES, width, height)
    elif faces.landmarks is not None:
        detail["Landmarks"] = landmarks(faces.landmarks[row], FIVE_POINT_LANDMARKS, width, height)
    if "mesh_pose" in data or "pose" in data:
        detail["Pose"] = pose(data["mesh_pose" if "mesh_pose" in data else "pose"][row])
    if "quality" in data:
        detail["Quality"] = quality(data["quality"][row])
    for name in sorted(attributes):
        key, columns, render = ATTRIBUTE_FIELDS[name]
        if all(column in data for column in columns):
            detail[key] = render(*(data[column][row] for column in columns))  # type: ignore[literal-required]
    return detail


def compared_face(
    faces: Detections, row: int, width: int, height: int, attributes: frozenset[str] = frozenset()
) -> ComparedFaceTypeDef:
    """A `ComparedFace` (CompareFaces): the fields of the face's detail that the shape has."""
    members = shape_members("ComparedFace")
    detail = face_detail(faces, row, width, height, attributes)
    return {key: value for key, value in detail.items() if key in members}  # type: ignore[return-value]


def boolean_attribute(probability: NDArray[np.float32]) -> dict[str, Any]:
    """{Value, Confidence} of a yes/no attribute from its calibrated probability of yes."""
    yes = float(probability)
    return {"Value": yes >= 0.5, "Confidence": max(yes, 1.0 - yes) * 100.0}


def gender(male_probability: NDArray[np.float32]) -> GenderTypeDef:
    male = float(male_probability)
    return {"Value": "Male" if male >= 0.5 else "Female", "Confidence": max(male, 1.0 - male) * 100.0}


def age_range(low_high: NDArray[np.float32]) -> AgeRangeTypeDef:
    low, high = (int(v) for v in low_high)
    return {"Low": low, "High": high}


def emotions(probabilities: NDArray[np.float32]) -> list[EmotionTypeDef]:
    """Every emotion type with its confidence, most likely first (as Rekognition lists them)."""
    order = np.argsort(-probabilities, kind="stable")
    return [
        {"Type": EMOTION_TYPES[i], "Confidence": float(probabilities[i]) * 100.0}  # type: ignore[typeddict-item]
        for i in order
    ]


def eye_direction(yaw_pitch: NDArray[np.float32], confidence: NDArray[np.float32]) -> EyeDirectionTypeDef:
    yaw, pitch = (float(v) for v in yaw_pitch)
    return {"Yaw": yaw, "Pitch": pitch, "Confidence": float(confidence) * 100.0}


# Attribute -> (FaceDetail key, the pipeline columns it is rendered from, renderer).
ATTRIBUTE_FIELDS: dict[str, tuple[str, tuple[str, ...], Callable[..., Any]]] = {
    "AGE_RANGE": ("AgeRange", ("age_range",), age_range),
    "GENDER": ("Gender", ("male_probability",), gender),
    "EMOTIONS": ("Emotions", ("emotions",), emotions),
    "SMILE": ("Smile", ("smile",), boolean_attribute),
    "EYES_OPEN": ("EyesOpen", ("eyes_open",), boolean_attribute),
    "MOUTH_OPEN": ("MouthOpen", ("mouth_open",), boolean_attribute),
    "EYE_DIRECTION": ("EyeDirection", ("eye_direction", "eye_direction_confidence"), eye_direction),
    "EYEGLASSES": ("Eyeglasses", ("eyeglasses",), boolean_attribute),
    "SUNGLASSES": ("Sunglasses", ("sunglasses",), boolean_attribute),
    "BEARD": ("Beard", ("beard",), boolean_attribute),
    "MUSTACHE": ("Mustache", ("mustache",), boolean_attribute),
    "FACE_OCCLUDED": ("FaceOccluded", ("face_occluded",), boolean_attribute),
}


def stored_face(face: Face, model_version: str) -> FaceTypeDef:
    """A `Face` of a collection, as IndexFaces, ListFaces and the searches return it."""
    width, height, left, top = face.bounding_box
    record: FaceTypeDef = {
        "FaceId": face.face_id,
        "BoundingBox": {"Width": width, "Height": height, "Left": left, "Top": top},
        "ImageId": face.image_id,
        "Confidence": face.confidence,
        "IndexFacesModelVersion": model_version,
    }
    if face.external_image_id is not None:
        record["ExternalImageId"] = face.external_image_id
    if face.user_id is not None:
        record["UserId"] = face.user_id
    return record


def polygon(points: NDArray[np.float32], width: int, height: int) -> list[PointTypeDef]:
    """Points as ratios of the image size, in the given order."""
    return [{"X": float(x) / width, "Y": float(y) / height} for x, y in points]


def text_detection(
    texts: Detections, row: int, width: int, height: int, *, kind: str, detection_id: int, parent_id: int | None = None
) -> TextDetectionTypeDef:
    """The `TextDetection` of a LINE or WORD of a `TextReading`: its text, confidence, box and its
    reading-order quad as the four-point Polygon (rotated text keeps a rotated quad)."""
    quads = texts.landmarks
    detection: TextDetectionTypeDef = {
        "DetectedText": str(texts.data["text"][row]),
        "Type": kind,  # type: ignore[typeddict-item]
        "Id": detection_id,
        "Confidence": float(texts.confidence[row]) * 100.0,
        "Geometry": {
            "BoundingBox": bounding_box(texts.xyxy[row], width, height),
            "Polygon": [] if quads is None else polygon(quads[row], width, height),
        },
    }
    if parent_id is not None:
        detection["ParentId"] = parent_id
    return detection


def video_metadata(metadata: VideoMetadata) -> dict[str, object]:
    """Rekognition's `VideoMetadata` of a stored video."""
    return {
        "Codec": metadata.codec,
        "DurationMillis": metadata.duration_millis,
        "Format": metadata.format,
        "FrameRate": metadata.frame_rate,
        "FrameHeight": metadata.frame_height,
        "FrameWidth": metadata.frame_width,
        "ColorRange": metadata.color_range,
    }


def segment_detection(segment: Segment) -> dict[str, object]:
    """A shot or technical cue as Rekognition's `SegmentDetection`."""
    response: dict[str, object] = {
        "Type": segment.type.value,
        "StartTimestampMillis": segment.start_millis,
        "EndTimestampMillis": segment.end_millis,
        "DurationMillis": segment.duration_millis,
        "StartTimecodeSMPTE": segment.start_timecode,
        "EndTimecodeSMPTE": segment.end_timecode,
        "DurationSMPTE": segment.duration_timecode,
        "StartFrameNumber": segment.start_frame,
        "EndFrameNumber": segment.end_frame,
        "DurationFrames": segment.duration_frames,
    }
    confidence = round(segment.confidence, 3)
    if segment.type is SegmentType.SHOT:
        response["ShotSegment"] = {"Index": segment.shot_index, "Confidence": confidence}
    else:
        cue = segment.cue_type.value if segment.cue_type else None
        response["TechnicalCueSegment"] = {"Type": cue, "Confidence": confidence}
    return response
