"""Builders for Rekognition's nested response shapes; the one place pixels become ratios."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from opsis.service_model import shape_members
from opsis.store.base import Face
from opsis.vision.types import Detections

if TYPE_CHECKING:
    from mypy_boto3_rekognition.type_defs import (
        BoundingBoxTypeDef,
        ComparedFaceTypeDef,
        FaceDetailTypeDef,
        FaceTypeDef,
        ImageQualityTypeDef,
        LandmarkTypeDef,
        PoseTypeDef,
    )

# The five alignment points, in the detector's order (image left to right).
FIVE_POINT_LANDMARKS = ("eyeLeft", "eyeRight", "nose", "mouthLeft", "mouthRight")


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


def face_detail(faces: Detections, row: int, width: int, height: int) -> FaceDetailTypeDef:
    """The `FaceDetail` of one analysed face: every field the pipeline computed for it."""
    detail: FaceDetailTypeDef = {
        "BoundingBox": bounding_box(faces.xyxy[row], width, height),
        "Confidence": float(faces.confidence[row]) * 100.0,
    }
    if faces.landmarks is not None:
        detail["Landmarks"] = landmarks(faces.landmarks[row], FIVE_POINT_LANDMARKS, width, height)
    if "pose" in faces.data:
        detail["Pose"] = pose(faces.data["pose"][row])
    if "quality" in faces.data:
        detail["Quality"] = quality(faces.data["quality"][row])
    return detail


def compared_face(faces: Detections, row: int, width: int, height: int) -> ComparedFaceTypeDef:
    """A `ComparedFace` (CompareFaces): the fields of the face's detail that the shape has."""
    members = shape_members("ComparedFace")
    detail = face_detail(faces, row, width, height)
    return {key: value for key, value in detail.items() if key in members}  # type: ignore[return-value]


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
