"""`ClientRequestToken`: a retried request returns its first answer instead of acting twice."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from opsis.errors import IdempotentParameterMismatchException
from opsis.ops.context import Context


def idempotent(
    ctx: Context, operation: str, params: dict[str, Any], act: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """Run `act` once per ClientRequestToken; a reuse with other parameters is refused."""
    token = params.get("ClientRequestToken")
    if token is None:
        return act()
    fingerprint = hashlib.sha256(
        json.dumps({k: v for k, v in params.items() if k != "ClientRequestToken"}, sort_keys=True).encode()
    ).hexdigest()
    remembered = ctx.store.recall_request(token, operation)
    if remembered is not None:
        if remembered[0] != fingerprint:
            raise IdempotentParameterMismatchException(
                f"ClientRequestToken {token!r} was already used for {operation} with other parameters"
            )
        return remembered[1]
    response = act()
    ctx.store.remember_request(token, operation, fingerprint, response)
    return response
