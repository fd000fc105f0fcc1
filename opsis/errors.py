"""Typed errors named after Rekognition's error shapes.

Raise them anywhere; only `opsis.api.errors` turns one into a status and a body. Each `code` is the
shape name in botocore's Rekognition model (a test checks this), except the few protocol-level codes
that every AWS JSON service answers with and that the model does not list.
"""

from __future__ import annotations

from typing import ClassVar


class OpsisError(Exception):
    """Base of every error Opsis reports to a caller."""

    code: ClassVar[str] = "InternalServerError"
    status: ClassVar[int] = 400
    #: True for codes that belong to botocore's Rekognition model (as opposed to protocol codes).
    modeled: ClassVar[bool] = True

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- errors in Rekognition's service model -------------------------------------------------------


class AccessDeniedException(OpsisError):
    code = "AccessDeniedException"


class ImageTooLargeException(OpsisError):
    code = "ImageTooLargeException"


class InternalServerError(OpsisError):
    code = "InternalServerError"
    status = 500


class InvalidImageFormatException(OpsisError):
    code = "InvalidImageFormatException"


class InvalidParameterException(OpsisError):
    code = "InvalidParameterException"


class InvalidS3ObjectException(OpsisError):
    code = "InvalidS3ObjectException"


class ResourceNotFoundException(OpsisError):
    code = "ResourceNotFoundException"


class ResourceAlreadyExistsException(OpsisError):
    code = "ResourceAlreadyExistsException"


class LimitExceededException(OpsisError):
    """Too many stored-video jobs queued or in progress."""

    code = "LimitExceededException"


class VideoTooLargeException(OpsisError):
    """A stored video over Rekognition's limits (10 GB, 6 hours)."""

    code = "VideoTooLargeException"


class ThrottlingException(OpsisError):
    """A principal's request rate is past OPSIS_RATE_LIMIT_PER_SECOND (boto3 retries it)."""

    code = "ThrottlingException"


class ProvisionedThroughputExceededException(OpsisError):
    """Past OPSIS_INFERENCE_QUEUE_DEPTH requests already wait for inference (boto3 retries it)."""

    code = "ProvisionedThroughputExceededException"


class ConflictException(OpsisError):
    """The request conflicts with the resource's state (e.g. CreateUser for an existing user)."""

    code = "ConflictException"


class IdempotentParameterMismatchException(OpsisError):
    """A ClientRequestToken was reused with different parameters."""

    code = "IdempotentParameterMismatchException"


class InvalidPaginationTokenException(OpsisError):
    code = "InvalidPaginationTokenException"


class ServiceQuotaExceededException(OpsisError):
    code = "ServiceQuotaExceededException"


# --- protocol-level errors every AWS JSON 1.1 service answers with --------------------------------


class ProtocolError(OpsisError):
    modeled = False


class UnknownOperationException(ProtocolError):
    code = "UnknownOperationException"


class UnsupportedOperationException(ProtocolError):
    """A Rekognition operation that this Opsis build does not implement yet."""

    code = "UnsupportedOperationException"


class SerializationException(ProtocolError):
    code = "SerializationException"


class MissingAuthenticationTokenException(ProtocolError):
    code = "MissingAuthenticationTokenException"
    status = 403


class IncompleteSignatureException(ProtocolError):
    code = "IncompleteSignatureException"


class InvalidSignatureException(ProtocolError):
    code = "InvalidSignatureException"
    status = 403


class UnrecognizedClientException(ProtocolError):
    code = "UnrecognizedClientException"
    status = 403
