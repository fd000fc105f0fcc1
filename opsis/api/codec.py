"""AWS JSON 1.1 wire (de)serialisation of Rekognition payloads, driven by botocore's shapes.

JSON carries blobs as base64 strings and timestamps as epoch seconds. `decode_input` turns blob
strings into bytes and leaves everything else alone, including values of the wrong type, which
`opsis.api.validate` then reports with proper paths. `encode_output` does the reverse for
responses. Neither mutates its argument: containers along the walk are rebuilt, and anything
passed through untouched is copied if it is a container.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime
import logging
from collections.abc import Callable
from typing import Any

from botocore.model import Shape

from opsis.api.validate import element_path, map_path, member_path
from opsis.errors import SerializationException

log = logging.getLogger(__name__)

# type_name -> (Python types the conversion applies to, converter(value, path)).
_Leaves = dict[str, tuple[tuple[type, ...], Callable[[Any, str], Any]]]


def decode_input(shape: Shape, json_value: Any) -> Any:
    """Convert a parsed JSON request body to Python values: base64 blob strings become bytes.

    Timestamps stay numbers. Raises SerializationException, naming the member path, when a blob
    string is not strict base64.
    """
    return _walk(shape, json_value, "", _DECODE)


def encode_output(shape: Shape, value: Any) -> Any:
    """Convert a response to JSON-ready values: bytes become base64, datetimes epoch seconds."""
    return _walk(shape, value, "", _ENCODE)


def _walk(shape: Shape | None, value: Any, path: str, leaves: _Leaves) -> Any:
    """Rebuild `value` along `shape`, converting the scalars that `leaves` names."""
    if shape is None:  # an unknown member: left for the validator to reject
        return _detach(value)
    type_name: str = shape.type_name
    if type_name == "structure" and isinstance(value, dict):
        members = shape.members
        return {k: _walk(members.get(k), v, member_path(path, str(k)), leaves) for k, v in value.items()}
    if type_name == "list" and isinstance(value, (list, tuple)):
        return [_walk(shape.member, v, element_path(path, i), leaves) for i, v in enumerate(value)]
    if type_name == "map" and isinstance(value, dict):
        return {k: _walk(shape.value, v, map_path(path, str(k)), leaves) for k, v in value.items()}
    if type_name in leaves and isinstance(value, leaves[type_name][0]):
        return leaves[type_name][1](value, path)
    return _detach(value)


def _detach(value: Any) -> Any:
    """Copy a passed-through container so the result never shares state with the argument."""
    return copy.deepcopy(value) if isinstance(value, (dict, list, tuple)) else value


def _decode_blob(value: str, path: str) -> bytes:
    try:
        # validate=True rejects characters outside the alphabet instead of silently dropping them.
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:  # ValueError: non-ASCII characters
        log.debug("rejecting blob at %s: %s", path, exc)
        raise SerializationException(f"Value at '{path}' is not valid base64: {exc}") from exc


def _encode_blob(value: bytes, path: str) -> str:
    return base64.b64encode(value).decode("ascii")


def _encode_timestamp(value: datetime.datetime, path: str) -> float:
    if value.tzinfo is None:  # Opsis keeps UTC; a naive datetime must not pick up local time
        value = value.replace(tzinfo=datetime.UTC)
    return value.timestamp()


_DECODE: _Leaves = {"blob": ((str,), _decode_blob)}
_ENCODE: _Leaves = {
    "blob": ((bytes, bytearray), _encode_blob),
    "timestamp": ((datetime.datetime,), _encode_timestamp),
}
