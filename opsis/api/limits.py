"""Admission control at the HTTP edge: a request-rate limit per principal and a bound on the
requests waiting for model inference.

Both answer with the error shapes Rekognition uses (ThrottlingException, and
ProvisionedThroughputExceededException when the server is saturated), which boto3's standard and
adaptive retry modes retry with backoff. The server calls these; they know nothing of HTTP.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from opsis.errors import ProvisionedThroughputExceededException, ThrottlingException


@dataclass
class TokenBucket:
    """`rate` tokens a second up to `burst`; a request takes one."""

    rate: float
    burst: float
    tokens: float
    updated: float

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True

    def full_at(self, now: float) -> float:
        """When the bucket will be full again (an idle full bucket carries no state worth keeping)."""
        return self.updated + (self.burst - self.tokens) / self.rate


class RateLimiter:
    """A token bucket per principal (access key id). `per_second <= 0` turns the limit off.

    Buckets that have refilled are dropped now and then, so memory follows the active principals.
    """

    def __init__(self, per_second: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second = per_second
        self.burst = float(max(burst, 1))
        self.clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()
        self._next_sweep = 0.0

    def check(self, principal: str) -> None:
        """Take a token for `principal`, or raise ThrottlingException."""
        if self.per_second <= 0:
            return
        now = self.clock()
        with self._lock:
            self._sweep(now)
            bucket = self._buckets.get(principal)
            if bucket is None:
                bucket = self._buckets[principal] = TokenBucket(self.per_second, self.burst, self.burst, now)
            allowed = bucket.take(now)
        if not allowed:
            raise ThrottlingException(
                f"Rate exceeded: this access key is limited to {self.per_second:g} requests per second "
                f"(bursts of {self.burst:g})"
            )

    def _sweep(self, now: float) -> None:
        if now < self._next_sweep:
            return
        self._next_sweep = now + 60.0
        self._buckets = {key: bucket for key, bucket in self._buckets.items() if bucket.full_at(now) > now}


class AdmissionBound:
    """Admits at most `workers + max_waiting` requests to the inference stage at once; the rest are
    refused at once (ProvisionedThroughputExceededException) instead of queueing without end.

    Used from the event loop only (no lock): `admitted()` is entered and left there.
    """

    def __init__(self, workers: int, max_waiting: int) -> None:
        self.capacity = max(workers, 1) + max(max_waiting, 0)
        self.max_waiting = max_waiting
        self.in_flight = 0

    @contextmanager
    def admitted(self) -> Iterator[None]:
        if self.in_flight >= self.capacity:
            raise ProvisionedThroughputExceededException(
                f"The server is saturated ({self.in_flight} requests running or queued, at most "
                f"{self.max_waiting} may wait); retry with backoff"
            )
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1
