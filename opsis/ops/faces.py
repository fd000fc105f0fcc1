"""Face operations on single images: DetectFaces (CompareFaces joins with the identity issue)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from opsis.ops.context import Context
from opsis.ops.images import load_image
from opsis.ops.shapes import face_detail
from opsis.vision.faces import analyze

if TYPE_CHECKING:
    from mypy_boto3_rekognition.type_defs import DetectFacesResponseTypeDef


def detect_faces(ctx: Context, params: dict[str, Any]) -> DetectFacesResponseTypeDef:
    """DetectFaces: the 100 largest faces, largest first.

    `Attributes` DEFAULT (or omitted) gives BoundingBox, Confidence, Pose, Quality and Landmarks,
    as Rekognition's DEFAULT does; ALL and the named facial attributes add what this build's
    attribute models compute (none yet beyond DEFAULT: see the README).
    EXIF orientation is applied before detection, so boxes refer to the upright image and, as in
    Rekognition, `OrientationCorrection` is not returned.
    """
    image = load_image(ctx, params["Image"])
    faces = analyze(image, ctx.face_detector())
    details = [face_detail(faces, row, image.width, image.height) for row in range(len(faces))]
    return {"FaceDetails": details}  # type: ignore[typeddict-item]
