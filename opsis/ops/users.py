"""Users of a collection: Create/Delete/ListUsers, Associate/DisassociateFaces, SearchUsers(ByImage)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from opsis.errors import InvalidParameterException, ServiceQuotaExceededException
from opsis.ops.context import Context
from opsis.ops.faces import usable_faces
from opsis.ops.idempotency import idempotent
from opsis.ops.images import load_image
from opsis.ops.paging import page, page_start
from opsis.ops.quality_filter import quality_reasons
from opsis.ops.shapes import face_detail
from opsis.store.base import Collection, User
from opsis.vision.faces import analyze, embed_faces

# Rekognition: "You can associate up to 100 faces with a user."
MAX_FACES_PER_USER = 100
DEFAULT_ASSOCIATION_THRESHOLD = 75.0
DEFAULT_USER_MATCH_THRESHOLD = 80.0
DEFAULT_MAX_USERS = 10
DEFAULT_PAGE = 100
# How many nearest faces are read per user asked for: a user holds up to 100 faces, and near
# neighbours of the same user crowd the list.
NEIGHBOURS_PER_USER = 20


def create_user(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    def act() -> dict[str, Any]:
        ctx.store.create_user(params["CollectionId"], params["UserId"])
        return {}

    return idempotent(ctx, "CreateUser", params, act)


def delete_user(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """DeleteUser: its faces stay in the collection, associated with no one."""

    def act() -> dict[str, Any]:
        ctx.store.delete_user(params["CollectionId"], params["UserId"])
        return {}

    return idempotent(ctx, "DeleteUser", params, act)


def list_users(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    collection_id = ctx.store.get_collection(params["CollectionId"]).collection_id
    limit = params.get("MaxResults", DEFAULT_PAGE)
    users, token = page(ctx.store.list_users(collection_id, page_start(params), limit + 1), limit, lambda u: u.user_id)
    response: dict[str, Any] = {"Users": [{"UserId": u.user_id, "UserStatus": _status(u)} for u in users]}
    if token:
        response["NextToken"] = token
    return response


def associate_faces(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """AssociateFaces: each face must exist, be free, and look like the user's faces so far."""
    return idempotent(ctx, "AssociateFaces", params, lambda: _associate(ctx, params))


def disassociate_faces(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    return idempotent(ctx, "DisassociateFaces", params, lambda: _disassociate(ctx, params))


def search_users(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """SearchUsers by a stored face (FaceId) or by a user's faces (UserId)."""
    collection = ctx.store.get_collection(params["CollectionId"])
    face_id, user_id = params.get("FaceId"), params.get("UserId")
    if (face_id is None) == (user_id is None):
        raise InvalidParameterException("SearchUsers needs exactly one of FaceId or UserId")
    response: dict[str, Any] = {"FaceModelVersion": collection.face_model_version}
    if face_id is not None:
        vectors = ctx.store.face_vector(collection.collection_id, face_id)[None]
        response["SearchedFace"] = {"FaceId": face_id}
    else:
        user = ctx.store.get_user(collection.collection_id, params["UserId"])
        vectors = _user_vectors(ctx, collection.collection_id, user.user_id)
        response["SearchedUser"] = {"UserId": user.user_id}
    response["UserMatches"] = _user_matches(ctx, collection, vectors, params, exclude=user_id)
    return response


def search_users_by_image(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """SearchUsersByImage: the largest face that passes QualityFilter; the others are listed unsearched."""
    collection = ctx.store.get_collection(params["CollectionId"])
    image = load_image(ctx, params["Image"])
    level = params.get("QualityFilter", "NONE")
    searched = usable_faces(ctx, image, level)[:1]
    vector = embed_faces(image, searched, ctx.face_embedder()).data["embedding"]
    faces = analyze(image, ctx.face_detector())
    size = (image.width, image.height)
    unsearched = [
        {"FaceDetails": face_detail(faces, row, *size), "Reasons": reasons or ["FACE_NOT_LARGEST"]}
        for row, reasons in enumerate(quality_reasons(faces, level))
        if not np.array_equal(faces.xyxy[row], searched.xyxy[0])
    ]
    return {
        "UserMatches": _user_matches(ctx, collection, vector, params),
        "FaceModelVersion": collection.face_model_version,
        "SearchedFace": {"FaceDetail": face_detail(searched, 0, *size)},
        "UnsearchedFaces": unsearched,
    }


def _associate(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    collection_id, user_id = params["CollectionId"], params["UserId"]
    user = ctx.store.get_user(collection_id, user_id)
    face_ids = list(dict.fromkeys(params["FaceIds"]))
    found = {face.face_id: face for face in ctx.store.get_faces(collection_id, face_ids)}
    new_ids = [f for f in face_ids if f in found and found[f].user_id is None]
    if user.face_count + len(new_ids) > MAX_FACES_PER_USER:
        raise ServiceQuotaExceededException(
            f"User {user_id} has {user.face_count} faces; at most {MAX_FACES_PER_USER} can be associated"
        )
    failures: list[dict[str, Any]] = []
    for face_id in face_ids:
        face = found.get(face_id)
        if face is None:
            failures.append({"FaceId": face_id, "Reasons": ["FACE_NOT_FOUND"]})
        elif face.user_id not in (None, user_id):
            failures.append({"FaceId": face_id, "UserId": face.user_id, "Reasons": ["ASSOCIATED_TO_A_DIFFERENT_USER"]})
    weak = _weak_matches(
        ctx, collection_id, user, new_ids, params.get("UserMatchThreshold", DEFAULT_ASSOCIATION_THRESHOLD)
    )
    failures += [
        {"FaceId": f, "UserId": user_id, "Confidence": similarity, "Reasons": ["LOW_MATCH_CONFIDENCE"]}
        for f, similarity in weak.items()
    ]
    ctx.store.associate_faces(collection_id, user_id, [f for f in new_ids if f not in weak])
    associated = [f for f in face_ids if f in found and found[f].user_id in (None, user_id) and f not in weak]
    return {
        "AssociatedFaces": [{"FaceId": f} for f in associated],
        "UnsuccessfulFaceAssociations": failures,
        "UserStatus": _status(ctx.store.get_user(collection_id, user_id)),
    }


def _weak_matches(
    ctx: Context, collection_id: str, user: User, face_ids: list[str], threshold: float
) -> dict[str, float]:
    """Faces whose similarity to the user's existing faces is below `threshold` (none for a new user)."""
    if user.face_count == 0 or not face_ids:
        return {}
    scale = ctx.similarity(ctx.store.get_collection(collection_id).face_model_version)
    user_vectors = _user_vectors(ctx, collection_id, user.user_id)
    weak = {}
    for face_id in face_ids:
        distance = np.linalg.norm(user_vectors - ctx.store.face_vector(collection_id, face_id), axis=1).min()
        similarity = float(scale.similarity(distance))
        if similarity < threshold:
            weak[face_id] = similarity
    return weak


def _disassociate(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    collection_id, user_id = params["CollectionId"], params["UserId"]
    ctx.store.get_user(collection_id, user_id)
    face_ids = list(dict.fromkeys(params["FaceIds"]))
    found = {face.face_id: face for face in ctx.store.get_faces(collection_id, face_ids)}
    done = set(ctx.store.disassociate_faces(collection_id, user_id, [f for f in face_ids if f in found]))
    failures = []
    for face_id in face_ids:
        if face_id in done:
            continue
        face = found.get(face_id)
        if face is None:
            failures.append({"FaceId": face_id, "Reasons": ["FACE_NOT_FOUND"]})
        else:
            failure: dict[str, Any] = {"FaceId": face_id, "Reasons": ["ASSOCIATED_TO_A_DIFFERENT_USER"]}
            if face.user_id is not None:
                failure["UserId"] = face.user_id
            failures.append(failure)
    return {
        "DisassociatedFaces": [{"FaceId": f} for f in face_ids if f in done],
        "UnsuccessfulFaceDisassociations": failures,
        "UserStatus": _status(ctx.store.get_user(collection_id, user_id)),
    }


def _user_vectors(ctx: Context, collection_id: str, user_id: str) -> NDArray[np.float32]:
    faces = ctx.store.list_faces(collection_id, None, MAX_FACES_PER_USER, user_id=user_id)
    if not faces:
        return np.zeros((0, ctx.face_embedder().dimension), np.float32)
    return np.stack([ctx.store.face_vector(collection_id, face.face_id) for face in faces])


def _user_matches(
    ctx: Context,
    collection: Collection,
    vectors: NDArray[np.float32],
    params: dict[str, Any],
    exclude: str | None = None,
) -> list[dict[str, Any]]:
    """Users ranked by their best face's similarity to any of `vectors`."""
    scale = ctx.similarity(collection.face_model_version)
    threshold = params.get("UserMatchThreshold", DEFAULT_USER_MATCH_THRESHOLD)
    limit = params.get("MaxUsers", DEFAULT_MAX_USERS)
    best: dict[str, float] = {}
    for vector in vectors:
        neighbours = ctx.store.search(
            collection.collection_id, vector, limit * NEIGHBOURS_PER_USER, scale.max_distance(threshold)
        )
        for neighbour in neighbours:
            user_id = neighbour.face.user_id
            if user_id is None or user_id == exclude:
                continue
            best[user_id] = max(best.get(user_id, 0.0), float(scale.similarity(neighbour.distance)))
    ranked = sorted(best.items(), key=lambda item: -item[1])[:limit]
    return [
        {"Similarity": similarity, "User": {"UserId": user_id, "UserStatus": "ACTIVE"}}
        for user_id, similarity in ranked
        if similarity >= threshold
    ]


def _status(user: User) -> str:
    """ACTIVE once a user has faces; CREATED before (Rekognition's UserStatus)."""
    return "ACTIVE" if user.face_count else "CREATED"
