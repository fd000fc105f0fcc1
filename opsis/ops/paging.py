"""Keyset pagination tokens: a NextToken is the last id of the page it ends."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TypeVar

from opsis.errors import InvalidPaginationTokenException

T = TypeVar("T")
# Every id that can end a page (collection, face and user ids) is of this alphabet and at most
# 255 characters, so the token needs no encoding and fits PaginationToken's 255.
TOKEN = re.compile(r"[a-zA-Z0-9_.\-:]{1,255}")


def page_start(params: dict[str, object]) -> str | None:
    """The id after which the requested page starts, from its NextToken."""
    token = params.get("NextToken")
    if token is None:
        return None
    if not isinstance(token, str) or not TOKEN.fullmatch(token):
        raise InvalidPaginationTokenException(f"Invalid pagination token: {str(token)[:64]!r}")
    return token


def page(items: Sequence[T], limit: int, key: Callable[[T], str]) -> tuple[Sequence[T], str | None]:
    """The first `limit` items and the token of the next page (items holds up to limit + 1)."""
    if len(items) > limit:
        return items[:limit], key(items[limit - 1])
    return items, None
