"""Faces in collections: IndexFaces, ListFaces, DeleteFaces, SearchFaces, SearchFacesByImage."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from typing import Any

import numpy as np

from opsis.errors import InvalidParameterException
from opsis.ops.context import Context
from opsis.ops.face_attributes import describe_faces, requested_attributes
from opsis.ops.faces import usable_faces
from opsis.ops.images import decode_checked, image_bytes, load_image
from opsis.ops.paging import page, page_start
from opsis.ops.quality_filter import quality_reasons
from opsis.ops.shapes import face_detail, stored_face
from opsis.store.base import Collection, Face, NewFace
from opsis.vision.faces import analyze, embed_faces
from opsis.vision.types import DecodedImage, Detections

DEFAULT_PAGE = 1000
DEFAULT_MATCH_THRESHOLD = 80.0
DEFAULT_MAX_MATCHES = 80


def index_faces(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """IndexFaces: store the vectors (never the image) of the faces that pass the quality bar.

    The same image indexed again with the same ExternalImageId returns the faces it already has.
    """
    collection = collection_for_embedder(ctx, params["CollectionId"])
    data = image_bytes(ctx, params["Image"])
    image = decode_checked(data)
    image_id = str(uuid.UUID(bytes=hashlib.sha256(data).digest()[:16], version=4))
    attributes = requested_attributes(params.get("DetectionAttributes"))
    faces = describe_faces(ctx, image, analyze(image, ctx.face_detector()), attributes)
    reasons = quality_reasons(faces, params.get("QualityFilter", "AUTO"))
    passing = [row for row, why in enumerate(reasons) if not why]
    for row in passing[params.get("MaxFaces", len(passing)) :]:
        reasons[row].append("EXCEEDS_MAX_FACES")
    chosen = [row for row, why in enumerate(reasons) if not why]

    def detail(row: int) -> Mapping[str, Any]:
        return face_detail(faces, row, image.width, image.height, attributes)

    chosen_faces = faces[np.array(chosen, dtype=np.int64)]
    stored = _store_faces(
        ctx, collection, image, chosen_faces, image_id=image_id, external_id=params.get("ExternalImageId")
    )
    return {
        "FaceRecords": [
            {"Face": stored_face(face, collection.face_model_version), "FaceDetail": detail(row)}
            for face, row in zip(stored, chosen, strict=True)
        ],
        "UnindexedFaces": [
            {"Reasons": why, "FaceDetail": detail(row)} for row, why in enumerate(reasons) if why
        ],
        "FaceModelVersion": collection.face_model_version,
    }


def list_faces(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    collection = ctx.store.get_collection(params["CollectionId"])
    limit = params.get("MaxResults", DEFAULT_PAGE)
    found = ctx.store.list_faces(
        collection.collection_id, page_start(params), limit + 1, params.get("UserId"), params.get("FaceIds")
    )
    faces, token = page(found, limit, lambda face: face.face_id)
    response: dict[str, Any] = {
        "Faces": [stored_face(face, collection.face_model_version) for face in faces],
        "FaceModelVersion": collection.face_model_version,
    }
    if token:
        response["NextToken"] = token
    return response


def delete_faces(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """DeleteFaces: a face that belongs to a user must be disassociated first, as in Rekognition."""
    collection_id, face_ids = params["CollectionId"], list(dict.fromkeys(params["FaceIds"]))
    existing = {face.face_id: face for face in ctx.store.get_faces(collection_id, face_ids)}
    deletable = [face_id for face_id in face_ids if face_id in existing and existing[face_id].user_id is None]
    deleted = set(ctx.store.delete_faces(collection_id, deletable))
    failures = []
    for face_id in face_ids:
        if face_id in deleted:
            continue
        face = existing.get(face_id)
        if face is not None and face.user_id is not None:
            failures.append({"FaceId": face_id, "UserId": face.user_id, "Reasons": ["ASSOCIATED_TO_AN_EXISTING_USER"]})
        else:
            failures.append({"FaceId": face_id, "Reasons": ["FACE_NOT_FOUND"]})
    return {"DeletedFaces": [f for f in face_ids if f in deleted], "UnsuccessfulFaceDeletions": failures}


def search_faces(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """SearchFaces: faces like a stored face, the face itself left out."""
    collection = ctx.store.get_collection(params["CollectionId"])
    face_id = params["FaceId"]
    vector = ctx.store.face_vector(collection.collection_id, face_id)
    matches = face_matches(ctx, collection, vector, params, exclude=face_id)
    return {"SearchedFaceId": face_id, "FaceMatches": matches, "FaceModelVersion": collection.face_model_version}


def search_faces_by_image(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """SearchFacesByImage: the largest face of the image (that passes QualityFilter) against the collection."""
    collection = collection_for_embedder(ctx, params["CollectionId"])
    image = load_image(ctx, params["Image"])
    face = usable_faces(ctx, image, params.get("QualityFilter", "NONE"))[:1]
    vector = embed_faces(image, face, ctx.face_embedder()).data["embedding"][0]
    box = face_detail(face, 0, image.width, image.height)["BoundingBox"]
    return {
        "SearchedFaceBoundingBox": box,
        "SearchedFaceConfidence": float(face.confidence[0]) * 100.0,
        "FaceMatches": face_matches(ctx, collection, vector, params),
        "FaceModelVersion": collection.face_model_version,
    }


def face_matches(
    ctx: Context, collection: Collection, vector: np.ndarray, params: Mapping[str, Any], exclude: str | None = None
) -> list[dict[str, Any]]:
    """Stored faces at least FaceMatchThreshold similar to `vector`, most similar first, at most MaxFaces."""
    scale = ctx.similarity(collection.face_model_version)
    threshold = params.get("FaceMatchThreshold", DEFAULT_MATCH_THRESHOLD)
    limit = params.get("MaxFaces", DEFAULT_MAX_MATCHES)
    neighbours = ctx.store.search(collection.collection_id, vector, limit + 1, scale.max_distance(threshold))
    matches = [
        {"Similarity": float(scale.similarity(n.distance)), "Face": stored_face(n.face, collection.face_model_version)}
        for n in neighbours
        if n.face.face_id != exclude
    ]
    return [match for match in matches if match["Similarity"] >= threshold][:limit]


def collection_for_embedder(ctx: Context, collection_id: str) -> Collection:
    """The collection, if its vectors come from the embedder this server runs."""
    collection = ctx.store.get_collection(collection_id)
    version = ctx.face_embedder().version
    if collection.face_model_version != version:
        raise InvalidParameterException(
            f"Collection {collection_id} holds {collection.face_model_version} vectors; "
            f"this server embeds with {version}"
        )
    return collection


def _store_faces(
    ctx: Context,
    collection: Collection,
    image: DecodedImage,
    faces: Detections,
    *,
    image_id: str,
    external_id: str | None,
) -> list[Face]:
    """The chosen faces' records: the ones already indexed from this image, else new ones."""
    existing = ctx.store.faces_of_image(collection.collection_id, image_id, external_id)
    if existing:
        return [
            _closest(existing, face_detail(faces, row, image.width, image.height)["BoundingBox"])
            for row in range(len(faces))
        ]
    vectors = embed_faces(image, faces, ctx.face_embedder()).data["embedding"]
    new_faces = []
    for row in range(len(faces)):
        box = face_detail(faces, row, image.width, image.height)["BoundingBox"]
        new_faces.append(
            NewFace(
                image_id=image_id,
                external_image_id=external_id,
                bounding_box=(box["Width"], box["Height"], box["Left"], box["Top"]),
                confidence=float(faces.confidence[row]) * 100.0,
                vector=vectors[row],
            )
        )
    return ctx.store.add_faces(collection.collection_id, new_faces)


def _closest(stored: list[Face], box: Any) -> Face:
    """The stored face whose box is nearest to `box` (re-indexing finds the same boxes)."""
    target = np.array([box["Width"], box["Height"], box["Left"], box["Top"]])
    return min(stored, key=lambda face: float(np.abs(np.array(face.bounding_box) - target).sum()))
