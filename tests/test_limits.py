"""The admission rules in opsis.api.limits, on a fake clock: per-principal token buckets and the
bound on requests waiting for inference."""

from __future__ import annotations

from contextlib import AbstractContextManager, ExitStack, nullcontext

import pytest

from opsis.api.limits import AdmissionBound, RateLimiter
from opsis.errors import ProvisionedThroughputExceededException, ThrottlingException


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def allowed(limiter: RateLimiter, principal: str, count: int) -> int:
    passed = 0
    for _ in range(count):
        try:
            limiter.check(principal)
        except ThrottlingException:
            continue
        passed += 1
    return passed


@pytest.mark.parametrize(
    ("per_second", "burst", "elapsed", "expected"),
    [
        (1.0, 5, 0.0, 5),  # a full bucket serves the burst at once
        (1.0, 5, 2.0, 2),  # then refills at the rate
        (10.0, 5, 0.25, 2),  # 2.5 tokens: two whole requests
        (1.0, 5, 100.0, 5),  # never past the burst
        (0.0, 1, 0.0, 50),  # 0 turns the limit off
    ],
)
def test_token_bucket_rate_and_burst(per_second: float, burst: int, elapsed: float, expected: int) -> None:
    clock = Clock()
    limiter = RateLimiter(per_second, burst, clock)
    if elapsed:
        allowed(limiter, "AKIA1", 50)  # empty the bucket
        clock.now += elapsed
    assert allowed(limiter, "AKIA1", 50) == expected


def test_principals_have_their_own_buckets() -> None:
    clock = Clock()
    limiter = RateLimiter(1.0, 2, clock)
    assert allowed(limiter, "AKIA1", 10) == 2
    assert allowed(limiter, "AKIA2", 10) == 2


def test_throttling_names_the_limit() -> None:
    limiter = RateLimiter(3.0, 1, Clock())
    limiter.check("AKIA1")
    with pytest.raises(ThrottlingException, match="3 requests per second"):
        limiter.check("AKIA1")


def test_refilled_buckets_are_dropped() -> None:
    clock = Clock()
    limiter = RateLimiter(1.0, 2, clock)
    for number in range(100):
        limiter.check(f"AKIA{number}")
    clock.now += 61
    limiter.check("AKIA-new")
    assert len(limiter._buckets) == 1


@pytest.mark.parametrize(
    ("workers", "max_waiting", "held", "outcome"),
    [
        (2, 3, 4, nullcontext()),
        (2, 3, 5, pytest.raises(ProvisionedThroughputExceededException, match="at most 3 may wait")),
        (1, 0, 1, pytest.raises(ProvisionedThroughputExceededException)),
        (1, 0, 0, nullcontext()),
    ],
)
def test_admission_bound(workers: int, max_waiting: int, held: int, outcome: AbstractContextManager[object]) -> None:
    bound = AdmissionBound(workers, max_waiting)
    with ExitStack() as stack:
        for _ in range(held):
            stack.enter_context(bound.admitted())
        with outcome, bound.admitted():
            assert bound.in_flight == held + 1
    assert bound.in_flight == 0  # released on exit and on refusal
