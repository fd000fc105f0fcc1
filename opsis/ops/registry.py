"""Operation name -> handler: the one table every transport dispatches through."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from opsis.errors import UnsupportedOperationException
from opsis.ops import faces
from opsis.ops.context import Context

Handler = Callable[[Context, dict[str, Any]], Mapping[str, Any]]

# Keys are the operation names of botocore's Rekognition model; handlers are named by
# `botocore.xform_name` of them (a test checks both).
HANDLERS: dict[str, Handler] = {
    "CompareFaces": faces.compare_faces,
    "DetectFaces": faces.detect_faces,
}


def handler_for(operation: str) -> Handler:
    """The handler of a modelled operation, or UnsupportedOperationException naming it."""
    try:
        return HANDLERS[operation]
    except KeyError:
        raise UnsupportedOperationException(
            f"Opsis does not implement {operation} yet; implemented: {', '.join(sorted(HANDLERS))}"
        ) from None
