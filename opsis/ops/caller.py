"""Who is calling: the principal and request id of the operation running now.

The transport sets it (the HTTP server from the verified signature, the CLI and Python API as
`LOCAL`) around each handler call; operations read it for the audit trail. A context variable,
so it follows the call into worker threads (anyio copies the context) without threading through
every signature.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

LOCAL = "local"  # the in-process CLI and Python API, which act with the data directory's owner rights


@dataclass(frozen=True)
class Caller:
    principal: str  # the access key id that signed the request, or LOCAL
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    # What the operation wants the caller told besides its response (the HTTP server sends them
    # in the x-opsis-warning header).
    warnings: list[str] = field(default_factory=list)


_CALLER: ContextVar[Caller | None] = ContextVar("opsis_caller", default=None)


def current_caller() -> Caller:
    """The caller of the operation running now (an in-process caller when no transport set one)."""
    return _CALLER.get() or Caller(LOCAL)


@contextmanager
def calling_as(caller: Caller) -> Iterator[Caller]:
    token = _CALLER.set(caller)
    try:
        yield caller
    finally:
        _CALLER.reset(token)
