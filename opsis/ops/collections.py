"""Face collections and their tags: Create/Describe/List/DeleteCollection, Tag/Untag/ListTags."""

from __future__ import annotations

import re
from typing import Any

from opsis.errors import InvalidParameterException, ResourceNotFoundException
from opsis.ops.context import Context
from opsis.ops.paging import page, page_start

# Rekognition pages collections 1,000 at a time unless asked otherwise (PageSize allows 0-4096).
DEFAULT_PAGE = 1000
COLLECTION_ARN = re.compile(r"arn:aws:rekognition:[a-z0-9-]+:\d{12}:collection/(?P<id>[a-zA-Z0-9_.\-]{1,255})")


def create_collection(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """CreateCollection, pinned to the model version of the embedder that will fill it."""
    collection_id = params["CollectionId"]
    version = ctx.face_embedder().version
    ctx.store.create_collection(collection_id, version, params.get("Tags", {}))
    return {"StatusCode": 200, "CollectionArn": ctx.collection_arn(collection_id), "FaceModelVersion": version}


def describe_collection(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    collection = ctx.store.get_collection(params["CollectionId"])
    return {
        "FaceCount": collection.face_count,
        "UserCount": collection.user_count,
        "FaceModelVersion": collection.face_model_version,
        "CollectionARN": ctx.collection_arn(collection.collection_id),
        "CreationTimestamp": collection.created_at,
    }


def list_collections(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    limit = params.get("MaxResults", DEFAULT_PAGE)
    collections, token = page(
        ctx.store.list_collections(page_start(params), limit + 1), limit, lambda c: c.collection_id
    )
    response: dict[str, Any] = {
        "CollectionIds": [c.collection_id for c in collections],
        "FaceModelVersions": [c.face_model_version for c in collections],
    }
    if token:
        response["NextToken"] = token
    return response


def delete_collection(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """DeleteCollection: every face, vector, user and tag in it goes with it."""
    ctx.store.delete_collection(params["CollectionId"])
    return {"StatusCode": 200}


def tag_resource(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    ctx.store.tag_collection(_collection_of(params["ResourceArn"]), params["Tags"])
    return {}


def untag_resource(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    ctx.store.untag_collection(_collection_of(params["ResourceArn"]), params["TagKeys"])
    return {}


def list_tags_for_resource(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    return {"Tags": dict(ctx.store.get_collection(_collection_of(params["ResourceArn"])).tags)}


def _collection_of(arn: str) -> str:
    """The collection id an ARN names; collections are the only taggable resource here."""
    match = COLLECTION_ARN.fullmatch(arn)
    if match is None:
        if ":project/" in arn or ":streamprocessor/" in arn:
            raise ResourceNotFoundException(f"Resource {arn} does not exist")
        raise InvalidParameterException(
            f"ResourceArn {arn!r} is not a collection ARN (arn:aws:rekognition:<region>:<account>:collection/<id>)"
        )
    return match["id"]
