"""Operation name -> handler: the one table every transport dispatches through."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from opsis.errors import UnsupportedOperationException
from opsis.ops import celebrities, collection_faces, collections, faces, labels, moderation, ppe, text, users, video
from opsis.ops.audit import audited
from opsis.ops.context import Context
from opsis.ops.thresholds import guarded

Handler = Callable[[Context, dict[str, Any]], Mapping[str, Any]]

# Keys are the operation names of botocore's Rekognition model; handlers are named by
# `botocore.xform_name` of them (a test checks both).
_HANDLERS: dict[str, Handler] = {
    "AssociateFaces": users.associate_faces,
    "CompareFaces": faces.compare_faces,
    "CreateCollection": collections.create_collection,
    "CreateUser": users.create_user,
    "DeleteCollection": collections.delete_collection,
    "DeleteFaces": collection_faces.delete_faces,
    "DeleteUser": users.delete_user,
    "DescribeCollection": collections.describe_collection,
    "DetectFaces": faces.detect_faces,
    "DetectLabels": labels.detect_labels,
    "DetectModerationLabels": moderation.detect_moderation_labels,
    "DetectProtectiveEquipment": ppe.detect_protective_equipment,
    "DetectText": text.detect_text,
    "DisassociateFaces": users.disassociate_faces,
    "GetCelebrityInfo": celebrities.get_celebrity_info,
    "GetCelebrityRecognition": video.get_celebrity_recognition,
    "GetContentModeration": video.get_content_moderation,
    "GetFaceDetection": video.get_face_detection,
    "GetFaceSearch": video.get_face_search,
    "GetLabelDetection": video.get_label_detection,
    "GetPersonTracking": video.get_person_tracking,
    "GetSegmentDetection": video.get_segment_detection,
    "GetTextDetection": video.get_text_detection,
    "IndexFaces": collection_faces.index_faces,
    "ListCollections": collections.list_collections,
    "ListFaces": collection_faces.list_faces,
    "ListTagsForResource": collections.list_tags_for_resource,
    "ListUsers": users.list_users,
    "RecognizeCelebrities": celebrities.recognize_celebrities,
    "SearchFaces": collection_faces.search_faces,
    "SearchFacesByImage": collection_faces.search_faces_by_image,
    "SearchUsers": users.search_users,
    "SearchUsersByImage": users.search_users_by_image,
    "StartCelebrityRecognition": video.start_celebrity_recognition,
    "StartContentModeration": video.start_content_moderation,
    "StartFaceDetection": video.start_face_detection,
    "StartFaceSearch": video.start_face_search,
    "StartLabelDetection": video.start_label_detection,
    "StartPersonTracking": video.start_person_tracking,
    "StartSegmentDetection": video.start_segment_detection,
    "StartTextDetection": video.start_text_detection,
    "TagResource": collections.tag_resource,
    "UntagResource": collections.untag_resource,
}


def governed(operation: str, handler: Handler) -> Handler:
    """`handler` under the server's rules for `operation`: biometric operations are recorded in the
    audit trail (`opsis.ops.audit`), and identification thresholds held to the server's floor
    (`opsis.ops.thresholds`) inside the audit, so a refused attempt is recorded too."""
    return audited(operation, guarded(operation, handler))


HANDLERS: dict[str, Handler] = {operation: governed(operation, handler) for operation, handler in _HANDLERS.items()}


def handler_for(operation: str) -> Handler:
    """The handler of a modelled operation, or UnsupportedOperationException naming it."""
    try:
        return HANDLERS[operation]
    except KeyError:
        raise UnsupportedOperationException(
            f"Opsis does not implement {operation} yet; implemented: {', '.join(sorted(HANDLERS))}"
        ) from None
