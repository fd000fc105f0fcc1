"""The threshold guard: how loose an identification may be on this server.

Identification (SearchFaces, SearchFacesByImage, SearchUsers, SearchUsersByImage, StartFaceSearch)
at Rekognition's default 80 admits a false match for about 1 in 100 strangers compared (README,
Similarity). An operator sets a floor (`identification_threshold_floor`): a request asking for
less is refused with InvalidParameterException, and one that names no threshold gets the floor
instead of the default (with a warning). In high-stakes mode (`high_stakes`) the floor is at least 99 (FMR 1e-5),
and a lower threshold is raised to it rather than refused, with a warning the HTTP server returns
in the `x-opsis-warning` header.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from opsis.errors import InvalidParameterException
from opsis.ops.caller import current_caller
from opsis.ops.context import Context

Handler = Callable[[Context, dict[str, Any]], Mapping[str, Any]]

HIGH_STAKES_FLOOR = 99.0
# Rekognition's defaults when a request names no threshold.
IDENTIFICATION: dict[str, tuple[str, float]] = {
    "SearchFaces": ("FaceMatchThreshold", 80.0),
    "SearchFacesByImage": ("FaceMatchThreshold", 80.0),
    "StartFaceSearch": ("FaceMatchThreshold", 80.0),
    "SearchUsers": ("UserMatchThreshold", 80.0),
    "SearchUsersByImage": ("UserMatchThreshold", 80.0),
}


def guarded(operation: str, handler: Handler) -> Handler:
    """`handler` with the server's identification floor applied to its threshold."""
    if operation not in IDENTIFICATION:
        return handler
    name, default = IDENTIFICATION[operation]

    @functools.wraps(handler)
    def run(ctx: Context, params: dict[str, Any]) -> Mapping[str, Any]:
        settings = ctx.settings
        floor = max(settings.identification_threshold_floor, HIGH_STAKES_FLOOR if settings.high_stakes else 0.0)
        asked = params.get(name)
        if asked is None and floor > default:
            params = {**params, name: floor}
            current_caller().warnings.append(f"{name} not given: this server's floor {floor:g} applies")
        elif asked is not None and asked < floor:
            if not settings.high_stakes:
                raise InvalidParameterException(
                    f"{name} {asked:g} is below this server's floor of {floor:g} for identification"
                )
            params = {**params, name: floor}
            current_caller().warnings.append(f"{name} {asked:g} raised to {floor:g} (high-stakes mode)")
        return handler(ctx, params)

    return run
