"""Which operations are biometric, and what the audit trail keeps of each.

Every call of an operation in `AUDITED` (indexing, searching, comparing, user association,
deletion, celebrity recognition, video face search) appends one entry to the audit trail: when,
the caller's principal and request id, the operation, the collection, its thresholds and limits,
and the face / user / celebrity ids it returned (with similarities), or the error the caller got.
Never an image, never a vector: only what `AUDITED`'s extractors pick. A stored-video face search
is recorded when it starts and again when it ends, with the faces it found.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from opsis.ops.caller import Caller, current_caller
from opsis.ops.context import Context
from opsis.store.base import AuditRecord, Job

Details = dict[str, Any]
Extract = Callable[[Mapping[str, Any], Mapping[str, Any]], Details]
Handler = Callable[[Context, dict[str, Any]], Mapping[str, Any]]
SIMILARITY_DIGITS = 2


def _given(params: Mapping[str, Any], *names: str) -> Details:
    """The request parameters among `names` that were given (never Image)."""
    return {name: params[name] for name in names if name in params}


def _face_matches(response: Mapping[str, Any]) -> Details:
    return {
        "Matches": [
            {"FaceId": m["Face"]["FaceId"], "Similarity": round(m["Similarity"], SIMILARITY_DIGITS)}
            for m in response.get("FaceMatches", [])
        ]
    }


def _user_matches(response: Mapping[str, Any]) -> Details:
    return {
        "Matches": [
            {"UserId": m["User"]["UserId"], "Similarity": round(m["Similarity"], SIMILARITY_DIGITS)}
            for m in response.get("UserMatches", [])
        ]
    }


AUDITED: dict[str, Extract] = {
    "IndexFaces": lambda p, r: {
        **_given(p, "ExternalImageId", "MaxFaces", "QualityFilter"),
        "FaceIds": [record["Face"]["FaceId"] for record in r.get("FaceRecords", [])],
        "UnindexedFaces": len(r.get("UnindexedFaces", [])),
    },
    "SearchFaces": lambda p, r: {**_given(p, "FaceId", "FaceMatchThreshold", "MaxFaces"), **_face_matches(r)},
    "SearchFacesByImage": lambda p, r: {
        **_given(p, "FaceMatchThreshold", "MaxFaces", "QualityFilter"),
        **_face_matches(r),
    },
    "SearchUsers": lambda p, r: {**_given(p, "FaceId", "UserId", "UserMatchThreshold", "MaxUsers"), **_user_matches(r)},
    "SearchUsersByImage": lambda p, r: {
        **_given(p, "UserMatchThreshold", "MaxUsers", "QualityFilter"),
        **_user_matches(r),
    },
    "CompareFaces": lambda p, r: {
        **_given(p, "SimilarityThreshold", "QualityFilter"),
        "Similarities": [round(m["Similarity"], SIMILARITY_DIGITS) for m in r.get("FaceMatches", [])],
        "UnmatchedFaces": len(r.get("UnmatchedFaces", [])),
    },
    "AssociateFaces": lambda p, r: {
        **_given(p, "UserId", "UserMatchThreshold"),
        "FaceIds": [face["FaceId"] for face in r.get("AssociatedFaces", [])],
        "UnsuccessfulFaceIds": [face["FaceId"] for face in r.get("UnsuccessfulFaceAssociations", [])],
    },
    "DisassociateFaces": lambda p, r: {
        **_given(p, "UserId"),
        "FaceIds": [face["FaceId"] for face in r.get("DisassociatedFaces", [])],
    },
    "DeleteFaces": lambda p, r: {"FaceIds": list(r.get("DeletedFaces", []))},
    "CreateUser": lambda p, r: _given(p, "UserId"),
    "DeleteUser": lambda p, r: _given(p, "UserId"),
    "DeleteCollection": lambda p, r: {},
    "RecognizeCelebrities": lambda p, r: {
        "CelebrityIds": [celebrity["Id"] for celebrity in r.get("CelebrityFaces", [])],
        "UnrecognizedFaces": len(r.get("UnrecognizedFaces", [])),
    },
    "StartFaceSearch": lambda p, r: {**_given(p, "FaceMatchThreshold", "JobTag"), "JobId": r.get("JobId")},
    "StartCelebrityRecognition": lambda p, r: {**_given(p, "JobTag"), "JobId": r.get("JobId")},
}


def audited(operation: str, handler: Handler) -> Handler:
    """`handler`, recording each call in the audit trail if `operation` is biometric."""
    extract = AUDITED.get(operation)
    if extract is None:
        return handler

    @functools.wraps(handler)
    def run(ctx: Context, params: dict[str, Any]) -> Mapping[str, Any]:
        caller = current_caller()
        try:
            response = handler(ctx, params)
        except Exception as error:
            outcome = getattr(error, "code", "InternalServerError")
            record(ctx, caller, operation, params, outcome=outcome, details=extract(params, {}))
            raise
        record(ctx, caller, operation, params, outcome="ok", details=extract(params, response))
        return response

    return run


def record(
    ctx: Context, caller: Caller, operation: str, params: Mapping[str, Any], *, outcome: str, details: Details
) -> None:
    """Append the entry; the thresholds are those the caller asked for, and `Warnings` say how the
    server changed them (`opsis.ops.thresholds`)."""
    if caller.warnings:
        details = {**details, "Warnings": list(caller.warnings)}
    ctx.audit.append(
        AuditRecord(caller.principal, caller.request_id, operation, params.get("CollectionId"), outcome, details)
    )


def record_video_search(ctx: Context, job: Job, status: str, matched_ids: list[str]) -> None:
    """The end of a stored-video face (or celebrity) search, under the principal who started it."""
    caller = Caller(job.principal, job.job_id)
    details = {"JobId": job.job_id, "Ids": sorted(set(matched_ids)), "Matches": len(matched_ids)}
    record(ctx, caller, job.operation, job.params, outcome=status, details=details)
