"""Face operations on single images: DetectFaces and CompareFaces."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from opsis.errors import InvalidParameterException
from opsis.ops.context import Context
from opsis.ops.face_attributes import COMPARED_FACE_ATTRIBUTES, describe_faces, requested_attributes
from opsis.ops.images import load_image
from opsis.ops.quality_filter import quality_reasons
from opsis.ops.shapes import compared_face, face_detail
from opsis.vision.faces import analyze, embed_faces
from opsis.vision.types import DecodedImage, Detections

if TYPE_CHECKING:
    from mypy_boto3_rekognition.type_defs import (
        ComparedFaceTypeDef,
        CompareFacesResponseTypeDef,
        DetectFacesResponseTypeDef,
        FaceDetailTypeDef,
    )

DEFAULT_SIMILARITY_THRESHOLD = 80.0


def detect_faces(ctx: Context, params: dict[str, Any]) -> DetectFacesResponseTypeDef:
    """DetectFaces: the 100 largest faces, largest first.

    `Attributes` DEFAULT (or omitted) gives BoundingBox, Confidence, Pose, Quality and five
    Landmarks, as Rekognition's DEFAULT does; ALL or named attributes add those attributes, and
    (when any of them needs the face mesh) the 30 landmark types and a mesh-based Pose.
    EXIF orientation is applied before detection, so boxes refer to the upright image and, as in
    Rekognition, `OrientationCorrection` is not returned.
    """
    image = load_image(ctx, params["Image"])
    return {"FaceDetails": face_details(ctx, image, requested_attributes(params.get("Attributes")))}  # type: ignore[typeddict-item]


def face_details(ctx: Context, image: DecodedImage, attributes: frozenset[str]) -> list[FaceDetailTypeDef]:
    """The image's faces (the 100 largest, largest first) with the requested attributes: the one
    face pipeline of DetectFaces and of video face detection."""
    faces = describe_faces(ctx, image, analyze(image, ctx.face_detector()), attributes)
    return [face_detail(faces, row, image.width, image.height, attributes) for row in range(len(faces))]


def compare_faces(ctx: Context, params: dict[str, Any]) -> CompareFacesResponseTypeDef:
    """CompareFaces: the largest face of the source image against up to 100 target faces.

    Faces below `QualityFilter` (default NONE) are left out of the comparison altogether.
    `FaceMatches` (similarity at least `SimilarityThreshold`, default 80) come most similar first;
    the other target faces are `UnmatchedFaces`.
    """
    level = params.get("QualityFilter", "NONE")
    source_image = load_image(ctx, params["SourceImage"], "SourceImage")
    target_image = load_image(ctx, params["TargetImage"], "TargetImage")
    source = usable_faces(ctx, source_image, level, "source")[:1]
    targets = usable_faces(ctx, target_image, level, "target")
    embedder = ctx.face_embedder()
    source_vector = embed_faces(source_image, source, embedder).data["embedding"][0]
    target_vectors = embed_faces(target_image, targets, embedder).data["embedding"]
    targets = describe_faces(ctx, target_image, targets, COMPARED_FACE_ATTRIBUTES)
    distances = np.linalg.norm(target_vectors - source_vector, axis=1)
    similarities = ctx.similarity(embedder.version).similarity(distances)
    threshold = params.get("SimilarityThreshold", DEFAULT_SIMILARITY_THRESHOLD)
    order = np.argsort(-similarities, kind="stable")
    size = (target_image.width, target_image.height)

    def compared(row: int) -> ComparedFaceTypeDef:
        return compared_face(targets, row, *size, COMPARED_FACE_ATTRIBUTES)

    return {
        "SourceImageFace": {
            "BoundingBox": face_detail(source, 0, source_image.width, source_image.height)["BoundingBox"],
            "Confidence": float(source.confidence[0]) * 100.0,
        },
        "FaceMatches": [
            {"Similarity": float(similarities[row]), "Face": compared(row)}
            for row in order
            if similarities[row] >= threshold
        ],
        "UnmatchedFaces": [compared(row) for row in order if similarities[row] < threshold],
    }  # type: ignore[typeddict-item]


def usable_faces(ctx: Context, image: DecodedImage, level: str, which: str = "") -> Detections:
    """The image's faces that pass the quality filter, largest first; at least one, or an error."""
    faces = analyze(image, ctx.face_detector())
    passing = np.array([not reasons for reasons in quality_reasons(faces, level)], dtype=bool)
    if not passing.any():
        qualifier = "" if len(faces) == 0 else f" that passes QualityFilter {level}"
        raise InvalidParameterException(f"There are no faces in the {which + ' ' if which else ''}image{qualifier}")
    return faces[passing]
