"""Fitted parameters shipped per model version (`<version>.json`, written by the calibration and
training scripts in benchmarks/), and the helpers the runners read them with."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

import numpy as np
from numpy.typing import NDArray


@cache
def calibration_document(model_version: str) -> dict[str, Any]:
    """The JSON shipped for this model version. A missing file is an error: uncalibrated
    confidences must never pass for calibrated ones."""
    document: dict[str, Any] = json.loads((files(__name__) / f"{model_version}.json").read_text())
    return document


def calibration_path(model_version: str) -> str:
    """Where the scripts write a model version's JSON, relative to the repository."""
    return f"{__name__.replace('.', '/')}/{model_version}.json"


def sigmoid(values: NDArray[np.floating]) -> NDArray[np.float32]:
    """The logistic function, written with tanh so that large margins cannot overflow."""
    result: NDArray[np.float32] = (0.5 + 0.5 * np.tanh(np.asarray(values, np.float64) / 2)).astype(np.float32)
    return result
