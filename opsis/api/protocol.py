"""Rekognition's JSON 1.1 protocol: X-Amz-Target -> operation model, JSON body in and out."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.model import OperationModel

from opsis.api.codec import decode_input, encode_output
from opsis.api.validate import validate_input, validate_output
from opsis.errors import InternalServerError, SerializationException, UnknownOperationException
from opsis.service_model import operation_model, service_model


def operation_for(target: str | None) -> OperationModel:
    """The operation an `X-Amz-Target: RekognitionService.<Operation>` header names."""
    model = service_model()
    prefix = f"{model.metadata['targetPrefix']}."
    if not target or not target.startswith(prefix):
        raise UnknownOperationException(f"Expected an X-Amz-Target header of the form {prefix}<Operation>")
    return operation_model(target[len(prefix) :])


def parse_request(operation: OperationModel, body: bytes) -> dict[str, Any]:
    """The validated input of `operation`, with blobs decoded to bytes."""
    try:
        document = json.loads(body) if body.strip() else {}
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SerializationException(f"Request body is not valid JSON: {error}") from None
    except RecursionError:  # found by benchmarks/fuzz.py: a few KB of "[[[[" would be a 500
        raise SerializationException("Request body nests JSON too deeply") from None
    if not isinstance(document, dict):
        raise SerializationException("Request body must be a JSON object")
    params: dict[str, Any] = decode_input(operation.input_shape, document)
    validate_input(operation.input_shape, params)
    return params


def render_response(operation: OperationModel, result: Mapping[str, Any], check: bool) -> bytes:
    """The JSON body of a handler's result; with `check`, first prove it fits the output shape."""
    if check:
        problems = validate_output(operation.output_shape, dict(result))
        if problems:
            raise InternalServerError(f"{operation.name} response does not fit its shape: {'; '.join(problems)}")
    return json.dumps(encode_output(operation.output_shape, dict(result))).encode()
