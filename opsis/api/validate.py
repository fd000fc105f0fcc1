"""Validate requests and responses against botocore's Rekognition service model.

Shaped like botocore's `ParamValidator` (dispatch on `shape.type_name`, collect every problem with
its path) but it also enforces what botocore leaves to the server: min/max, pattern, enum, required
and unknown members. Every constraint is read from the model; nothing is copied by hand.

Paths follow AWS's Coral style: lowerCamelCase member names joined by '.', list elements as
`attributes.1.member` (1-based), map values as `tags.<key>.member`, map keys as `tags.<key>.key`.
"""

from __future__ import annotations

import datetime
import functools
import logging
import math
import re
from collections.abc import Callable
from typing import Any

from botocore.model import Shape, StructureShape

from opsis.errors import ImageTooLargeException, InvalidParameterException, OpsisError

log = logging.getLogger(__name__)

#: Constraint failures AWS reports with a dedicated error instead of a validation message, keyed
#: by (shape name, constraint); the factory gets (actual size, model limit). An override outranks
#: every ordinary validation error of the same request.
ERROR_OVERRIDES: dict[tuple[str, str], Callable[[int, int], OpsisError]] = {
    ("ImageBlob", "max"): lambda size, limit: ImageTooLargeException(
        f"Image size {size} bytes exceeds the {limit}-byte limit for image bytes"
    ),
}

#: Echoed values are cut to this many characters so a huge string cannot bloat an error body.
MAX_ECHO = 128

# Coral deserialises into Java int/long, so out-of-range numbers fail even without a model bound.
_IMPLICIT_BOUNDS = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}

# Model patterns are Java regexes and Python's `re` lacks \p{..}; these are class *bodies*.
# \w is str.isalnum() (Unicode L and N) plus '_', which every model pattern using \p{L}/\p{N}
# allows anyway; \p{Z} is spelled out (Zs, Zl, Zp) because \s would also admit control chars.
_SEPARATORS = r"\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_JAVA_PROPERTIES = {"L": r"\w", "N": r"\w", "Z": _SEPARATORS}
_JAVA_PROPERTY = re.compile(r"\\p\{(\w+)\}")


def member_path(path: str, name: str) -> str:
    """Path of structure member `name` under `path`, lowerCamelCased as Coral reports it."""
    name = name[:1].lower() + name[1:]
    return f"{path}.{name}" if path else name


def element_path(path: str, index: int) -> str:
    """Path of the list element at 0-based `index` (reported 1-based, like Coral)."""
    return f"{path}.{index + 1}.member"


def map_path(path: str, key: str, part: str = "member") -> str:
    """Path of the value (`part="member"`) or of the key itself (`part="key"`) of a map entry."""
    return f"{path}.{key}.{part}"


def validate_input(shape: StructureShape, params: dict[str, Any]) -> None:
    """Check request `params` (blobs already base64-decoded) against an operation's input shape.

    Raises the first override error (e.g. ImageTooLargeException) if any applies, otherwise one
    InvalidParameterException listing every problem in Coral's format.
    """
    walker = _Walker(output=False)
    walker.validate(shape, params, "")
    if walker.overrides:
        raise walker.overrides[0]
    if walker.errors:
        count, errors = len(walker.errors), "; ".join(walker.errors)
        noun = "error" if count == 1 else "errors"
        raise InvalidParameterException(f"{count} validation {noun} detected: {errors}")


def validate_output(shape: StructureShape, value: dict[str, Any]) -> list[str]:
    """Return the problems of a response `value` (bytes/datetime, not yet encoded); [] if valid.

    Checks types, required and unknown members, enums and numeric ranges (Percent, Degree...),
    which are cheap and catch real bugs. String/list/blob lengths and patterns are skipped:
    AWS responses do not promise them.
    """
    walker = _Walker(output=True)
    walker.validate(shape, value, "")
    return walker.errors


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str] | None:
    """Compile a model (Java) pattern once; None, with a warning, if Python cannot express it."""
    try:
        return re.compile(_to_python_regex(pattern))
    except re.error as exc:
        log.warning("skipping uncompilable model pattern %r: %s", pattern, exc)
        return None


def _to_python_regex(pattern: str) -> str:
    """Rewrite Java's \\p{X}, wrapping the class body in [] unless it already sits inside one."""

    def swap(found: re.Match[str]) -> str:
        body = _JAVA_PROPERTIES.get(found[1])
        if body is None:
            return found[0]  # leave it for re.compile to reject
        bare = re.sub(r"\\.", "", pattern[: found.start()])  # escaped brackets do not count
        return body if bare.rfind("[") > bare.rfind("]") else f"[{body}]"

    return _JAVA_PROPERTY.sub(swap, pattern)


def _echo(value: Any) -> str:
    """Render a value as Coral quotes it; blobs are never echoed, only measured."""
    if value is None:
        return "null"
    if isinstance(value, (bytes, bytearray)):
        return f"of length {len(value)}"
    text = _java_str(value)
    return f"'{text[:MAX_ECHO]}...'" if len(text) > MAX_ECHO else f"'{text}'"


def _java_str(value: Any) -> str:
    """Java toString() look (true, [a, b], {k=v}) since Coral's messages print Java values."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_java_str(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_java_str(v)}" for k, v in value.items()) + "}"
    return str(value)


# type_name -> accepted Python types; model timestamps arrive as datetime or epoch seconds.
_PY_TYPES: dict[str, tuple[type, ...]] = {
    **dict.fromkeys(("structure", "map"), (dict,)),
    **dict.fromkeys(("integer", "long"), (int,)),
    **dict.fromkeys(("float", "double"), (int, float)),
    "list": (list, tuple),
    "string": (str,),
    "blob": (bytes, bytearray),
    "boolean": (bool,),
    "timestamp": (datetime.datetime, int, float),
}


def _has_type(type_name: str, value: Any) -> bool:
    """isinstance against _PY_TYPES, except that bool (an int subclass) is only a boolean."""
    if not isinstance(value, _PY_TYPES[type_name]) or isinstance(value, bool) != (type_name == "boolean"):
        return False
    # JSON has no NaN/Infinity, though Python's json parses them; a huge int stays exact.
    return isinstance(value, int) or not isinstance(value, float) or math.isfinite(value)


class _Walker:
    """One validation pass; `output` drops the checks AWS does not promise for responses."""

    def __init__(self, *, output: bool) -> None:
        self.output = output
        self.errors: list[str] = []
        self.overrides: list[OpsisError] = []

    def error(self, path: str, value: Any, constraint: str) -> None:
        where = path or "<root>"
        self.errors.append(f"Value {_echo(value)} at '{where}' failed to satisfy constraint: {constraint}")

    def validate(self, shape: Shape, value: Any, path: str) -> None:
        type_name: str = shape.type_name
        if value is None:  # only collections get here with null: members skip absent values
            self.error(path, None, "Member must not be null")
        elif type_name not in _PY_TYPES:
            log.warning("no validator for shape %s of type %s", shape.name, type_name)
        elif not _has_type(type_name, value):
            self.error(path, value, f"Member must be of type {type_name}")
        elif handler := getattr(self, f"_validate_{type_name}", None):  # boolean/timestamp: none
            handler(shape, value, path)

    def _validate_structure(self, shape: StructureShape, value: dict[str, Any], path: str) -> None:
        required = set(shape.required_members)
        for name, member in shape.members.items():
            child = member_path(path, name)
            if value.get(name) is not None:  # JSON null means absent, as in AWS
                self.validate(member, value[name], child)
            elif name in required:
                self.error(child, None, "Member must not be null")
        unknown = f"Member must be a known member of {shape.name}"
        for name in [n for n in value if n not in shape.members]:  # keep the caller's order
            self.error(member_path(path, str(name)), value[name], unknown)

    def _validate_list(self, shape: Any, value: list[Any], path: str) -> None:
        self._check_length(shape, value, path)
        for index, item in enumerate(value):
            self.validate(shape.member, item, element_path(path, index))

    def _validate_map(self, shape: Any, value: dict[Any, Any], path: str) -> None:
        self._check_length(shape, value, path)
        for key, item in value.items():
            self.validate(shape.key, key, map_path(path, str(key), "key"))
            self.validate(shape.value, item, map_path(path, str(key)))

    def _validate_string(self, shape: Shape, value: str, path: str) -> None:
        self._check_length(shape, value, path)
        enum: list[str] | None = shape.metadata.get("enum")
        if enum and value not in enum:
            self.error(path, value, f"Member must satisfy enum value set: [{', '.join(enum)}]")
        pattern: str | None = shape.metadata.get("pattern")
        regex = _compiled(pattern) if pattern and not self.output else None
        if regex is not None and regex.fullmatch(value) is None:
            self.error(path, value, f"Member must satisfy regular expression pattern: {pattern}")

    def _validate_number(self, shape: Shape, value: float, path: str) -> None:
        low, high = _IMPLICIT_BOUNDS.get(shape.type_name, (None, None))
        low, high = shape.metadata.get("min", low), shape.metadata.get("max", high)
        if low is not None and value < low:
            self.error(path, value, f"Member must have value greater than or equal to {low}")
        if high is not None and value > high:
            self.error(path, value, f"Member must have value less than or equal to {high}")

    _validate_integer = _validate_long = _validate_float = _validate_double = _validate_number

    def _check_length(self, shape: Shape, value: Any, path: str) -> None:
        if self.output:
            return
        low: int | None = shape.metadata.get("min")
        high: int | None = shape.metadata.get("max")
        length = len(value)  # strings count code points, per Smithy's @length
        if low is not None and length < low:
            self.error(path, value, f"Member must have length greater than or equal to {low}")
        if high is not None and length > high:
            override = ERROR_OVERRIDES.get((shape.name, "max"))
            if override is not None:
                self.overrides.append(override(length, high))
            else:
                self.error(path, value, f"Member must have length less than or equal to {high}")

    _validate_blob = _check_length
