"""Loads each model runner once per Context (one per process in the server), on first use, under a lock."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class ModelCache:
    """Runners keyed by (task, name); the Context owns one, so nothing is a module global."""

    def __init__(self) -> None:
        self._runners: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def get(self, task: str, name: str, factory: Callable[[], T]) -> T:
        key = (task, name)
        with self._lock:
            if key not in self._runners:
                self._runners[key] = factory()
            runner: T = self._runners[key]
            return runner

    def loaded(self) -> list[str]:
        with self._lock:
            return [f"{task}:{name}" for task, name in self._runners]
