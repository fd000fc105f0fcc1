"""The one place an exception becomes an HTTP status and a Rekognition error body."""

from __future__ import annotations

import json
import logging
import uuid

from starlette.responses import Response

from opsis.errors import InternalServerError, OpsisError

log = logging.getLogger(__name__)

JSON_11 = "application/x-amz-json-1.1"


def error_response(error: BaseException, request_id: str) -> Response:
    """Rekognition's error body (`__type`, `Code`, `Message`, `Logref`) with the error's status.

    Anything that is not an OpsisError is a bug: its traceback goes to the log under a Logref,
    and the caller sees only InternalServerError with that Logref.
    """
    logref = str(uuid.uuid4())
    if not isinstance(error, OpsisError):
        log.error("request %s failed (Logref %s)", request_id, logref, exc_info=error)
        error = InternalServerError("Amazon Rekognition experienced a service issue. Try your call again.")
    body = {"__type": error.code, "Code": error.code, "Message": error.message, "Logref": logref}
    return Response(
        json.dumps(body),
        status_code=error.status,
        media_type=JSON_11,
        headers={"x-amzn-RequestId": request_id, "x-amzn-ErrorType": error.code},
    )
