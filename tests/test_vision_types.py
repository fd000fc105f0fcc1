"""Detections: the one value type of the vision pipeline."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np
import pytest

from opsis.vision.types import Detections


def boxes(*rows: list[float]) -> np.ndarray:
    return np.array(rows, dtype=np.float32).reshape(-1, 4)


@pytest.mark.parametrize(
    ("xyxy", "confidence", "landmarks", "outcome"),
    [
        (boxes([0, 0, 1, 1]), np.ones(1, np.float32), None, nullcontext()),
        (boxes([0, 0, 1, 1]), np.ones(2, np.float32), None, pytest.raises(ValueError, match="confidence")),
        (np.zeros((1, 3), np.float32), np.ones(1, np.float32), None, pytest.raises(ValueError, match="xyxy")),
        (
            boxes([0, 0, 1, 1]),
            np.ones(1, np.float32),
            np.zeros((2, 5, 2), np.float32),
            pytest.raises(ValueError, match="landmarks"),
        ),
    ],
)
def test_shapes_are_checked(
    xyxy: np.ndarray, confidence: np.ndarray, landmarks: np.ndarray | None, outcome: AbstractContextManager[Any]
) -> None:
    with outcome:
        Detections(xyxy, confidence, landmarks)


def test_data_columns_must_have_one_row_per_detection() -> None:
    with pytest.raises(ValueError, match="pose"):
        Detections(boxes([0, 0, 1, 1]), np.ones(1, np.float32), data={"pose": np.zeros((2, 3))})


def test_selection_keeps_every_column_aligned() -> None:
    found = Detections(
        boxes([0, 0, 10, 10], [5, 5, 25, 25], [0, 0, 2, 2]),
        np.array([0.9, 0.8, 0.7], np.float32),
        np.arange(30, dtype=np.float32).reshape(3, 5, 2),
        {"tag": np.array([1, 2, 3])},
    )
    picked = found[np.array([False, True, True])]
    assert len(picked) == 2
    assert picked.data["tag"].tolist() == [2, 3]
    assert picked.landmarks is not None
    assert picked.landmarks[0, 0].tolist() == [10, 11]
    assert found.area.tolist() == [100, 400, 4]


@pytest.mark.parametrize(
    ("xyxy", "confidence", "threshold", "kept"),
    [
        (boxes([0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]), [0.9, 0.95, 0.8], 0.4, [1, 2]),
        (boxes([0, 0, 10, 10], [1, 1, 11, 11]), [0.9, 0.95], 0.9, [1, 0]),
        (boxes([0, 0, 10, 10], [0, 0, 10, 10]), [0.5, 0.5], 0.4, [0]),
        (boxes(), [], 0.4, []),
    ],
)
def test_nms_keeps_the_most_confident_of_overlapping_boxes(
    xyxy: np.ndarray, confidence: list[float], threshold: float, kept: list[int]
) -> None:
    found = Detections(xyxy, np.array(confidence, np.float32), data={"index": np.arange(len(xyxy))})
    assert found.nms(threshold).data["index"].tolist() == kept


def test_merge_concatenates_shared_columns() -> None:
    a = Detections(boxes([0, 0, 1, 1]), np.ones(1, np.float32), data={"x": np.array([1]), "only_a": np.array([0])})
    b = Detections(boxes([2, 2, 3, 3]), np.ones(1, np.float32), data={"x": np.array([2])})
    merged = Detections.merge([a, b])
    assert len(merged) == 2
    assert merged.data["x"].tolist() == [1, 2]
    assert "only_a" not in merged.data
    assert len(Detections.merge([])) == 0
