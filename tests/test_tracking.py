"""People pathing (opsis.vision.tracking): tile geometry, index rules on synthetic boxes, and real
tracking on the MOT17 mini frames and the intel one-person-at-a-time video."""

from __future__ import annotations

import itertools
from itertools import takewhile
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from opsis.config import Settings
from opsis.ops.context import Context
from opsis.vision.faces import analyze
from opsis.vision.runners.base import ObjectDetector
from opsis.vision.runners.retinaface import RetinaFaceDetector
from opsis.vision.tracking import (
    START_SCORE,
    TILE_OVERLAP,
    Coverage,
    PersonTracker,
    TrackedFrame,
    detect_persons,
    tiles,
    track_persons,
)
from opsis.vision.types import DecodedImage, Detections, box_iou
from opsis.vision.video import sample_frames

MOT = "video/mot17_mini"
INTEL = "video/intel/one-by-one-person-detection.mp4"
TWO_PEOPLE = "faces/identities/face_recognition/images/multi/two_people.jpg"


@pytest.fixture(scope="module")
def object_detector(tmp_path_factory: pytest.TempPathFactory) -> ObjectDetector:
    """NanoDet-m, loaded once for this module (conftest shares only the face detector)."""
    return Context.create(Settings(data_dir=tmp_path_factory.mktemp("tracking"))).object_detector()


def rgb(path: Path) -> NDArray[np.uint8]:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), np.uint8)


def boxes(*rows: tuple[float, float, float, float, float]) -> Detections:
    array = np.array(rows, np.float32).reshape(-1, 5)
    return Detections(array[:, :4], array[:, 4])


def run(tracker: PersonTracker, frames: list[Detections]) -> list[TrackedFrame]:
    done = [frame for number, persons in enumerate(frames) for frame in tracker.update(number * 200, persons)]
    return done + tracker.finish()


# --- tile geometry ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "height", "level", "count"),
    [
        (1280, 720, 1, 2),  # 16:9: two squares as tall as the frame
        (1920, 1080, 1, 2),
        (768, 432, 1, 2),
        (720, 1280, 1, 2),  # portrait: stacked
        (720, 720, 1, 0),  # the one tile would be the whole frame
        (1280, 720, 2, 8),
        (640, 480, 1, 2),
    ],
)
def test_tiles_cover_the_frame_with_overlap(width: int, height: int, level: int, count: int) -> None:
    found = tiles(width, height, level)
    assert len(found) == count
    if not found:
        return
    covered = np.zeros((height, width), bool)
    for left, top, right, bottom in found:
        assert 0 <= left < right <= width
        assert 0 <= top < bottom <= height
        assert abs((right - left) - (bottom - top)) <= 1  # square: NanoDet stretches to a square
        covered[top:bottom, left:right] = True
    assert covered.all()
    lefts = sorted({left for left, _, _, _ in found})
    side = found[0][2] - found[0][0]
    for first, second in itertools.pairwise(lefts):
        assert first + side - second >= TILE_OVERLAP * side - 1


# --- index rules on synthetic boxes ---------------------------------------------------------------


def test_indexes_follow_first_appearance_and_include_the_first_sighting() -> None:
    # Two walkers from the first frame (right one listed first), a third from frame 3.
    frames = [
        boxes(
            (500 + 8 * n, 100, 560 + 8 * n, 260, 0.8),
            (100 + 8 * n, 100, 160 + 8 * n, 260, 0.7),
            *([(300, 300 - 4 * n, 360, 460 - 4 * n, 0.9)] if n >= 3 else []),
        )
        for n in range(8)
    ]
    done = run(PersonTracker(5.0), frames)
    assert [frame.timestamp_millis for frame in done] == [n * 200 for n in range(8)]
    # Left to right within the first frame, the newcomer next; every sighting kept, first one too.
    assert [[p.index for p in frame.persons] for frame in done] == [[0, 1]] * 3 + [[0, 1, 2]] * 5
    for frame in done:
        left_walker = next(p for p in frame.persons if p.index == 0)
        assert left_walker.confidence == pytest.approx(0.7)
        assert left_walker.xyxy[0] < 300


def test_a_one_frame_blip_gets_no_index_and_a_long_absence_a_new_one() -> None:
    person = (100.0, 100.0, 160.0, 260.0, 0.8)
    blip = (600.0, 100.0, 660.0, 260.0, 0.9)
    frames = [boxes(person), boxes(person, blip), boxes(person), *[boxes()] * 12, boxes(person), boxes(person)]
    done = run(PersonTracker(5.0, lost_track_seconds=2.0), frames)
    indexes = [[p.index for p in frame.persons] for frame in done]
    assert indexes[:3] == [[0], [0], [0]]  # the blip was never confirmed
    assert indexes[3:15] == [[]] * 12
    assert indexes[15:] == [[1], [1]]  # 2.4 s away: longer than the 2 s buffer


def test_a_short_absence_keeps_the_index() -> None:
    person = (100.0, 100.0, 160.0, 260.0, 0.8)
    frames = [boxes(person)] * 3 + [boxes()] * 4 + [boxes(person)] * 2
    indexes = [[p.index for p in frame.persons] for frame in run(PersonTracker(5.0), frames)]
    assert indexes == [[0]] * 3 + [[]] * 4 + [[0]] * 2


# --- real frames ----------------------------------------------------------------------------------


def mot_sequence(data_root: Path, name: str) -> tuple[list[Path], NDArray[np.float64]]:
    sequence = data_root / MOT / name
    truth = np.loadtxt(sequence / "gt" / "gt.txt", delimiter=",", ndmin=2)
    return sorted((sequence / "img1").glob("*.jpg")), truth


def test_a_clearly_visible_pedestrian_keeps_one_index(data_root: Path, object_detector: ObjectDetector) -> None:
    images, truth = mot_sequence(data_root, "MOT17-11-FRCNN")
    pedestrians = truth[(truth[:, 6] == 1) & (truth[:, 7] == 1)]
    # The sequence's tallest pedestrian (about 630 px of a 1080 px frame), in every frame.
    tallest = int(pedestrians[np.argmax(pedestrians[:, 5]), 1])
    tracker = PersonTracker(30.0)
    done = [
        frame
        for image in images
        for frame in tracker.update(int(image.stem), detect_persons(rgb(image), object_detector))
    ]
    done += tracker.finish()
    assert len(done) == len(images) >= 5
    seen = []
    for frame in done:
        row = pedestrians[(pedestrians[:, 0] == frame.timestamp_millis) & (pedestrians[:, 1] == tallest)][0]
        box = np.array([row[2], row[3], row[2] + row[4], row[3] + row[5]], np.float32)
        found = np.array([p.xyxy for p in frame.persons], np.float32).reshape(-1, 4)
        overlap = box_iou(box, found)
        assert overlap.max() >= 0.5, f"frame {frame.timestamp_millis}: the pedestrian was not tracked"
        seen.append(frame.persons[int(np.argmax(overlap))].index)
    assert len(set(seen)) == 1
    everyone = sorted({p.index for frame in done for p in frame.persons})
    assert everyone == list(range(len(everyone)))
    assert len(everyone) >= 3  # the sequence has many more; tiles find the small ones too


def test_tiles_find_small_pedestrians_the_whole_frame_misses(data_root: Path, object_detector: ObjectDetector) -> None:
    images, truth = mot_sequence(data_root, "MOT17-04-FRCNN")
    image = images[0]
    rows = truth[(truth[:, 0] == int(image.stem)) & (truth[:, 6] == 1) & (truth[:, 7] == 1)]
    gt = np.concatenate([rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]], axis=1).astype(np.float32)
    pixels = rgb(image)

    def hits(found: Detections) -> int:
        strong = found.xyxy[found.confidence >= START_SCORE]  # boxes that can start a track
        return sum(int(len(strong) > 0 and box_iou(box, strong).max() >= 0.5) for box in gt)

    whole = hits(detect_persons(pixels, object_detector, Coverage.WHOLE_FRAME))
    tiled = hits(detect_persons(pixels, object_detector, Coverage.TILED))
    assert tiled >= 1.5 * whole + 5, (whole, tiled, len(gt))


def test_one_person_standing_keeps_index_zero(data_root: Path, object_detector: ObjectDetector) -> None:
    path = data_root / INTEL
    frames = takewhile(lambda frame: frame.timestamp_millis < 15000, sample_frames(path, 5.0, 9000))
    done = list(track_persons(frames, object_detector, 5.0))
    assert len(done) == 30
    assert [[p.index for p in frame.persons] for frame in done] == [[0]] * 30


def test_the_next_visitor_gets_the_next_index(data_root: Path, object_detector: ObjectDetector) -> None:
    # The second visitor stands at the table until ~44 s and leaves; the third walks in at ~51 s.
    path = data_root / INTEL
    frames = takewhile(lambda frame: frame.timestamp_millis < 58000, sample_frames(path, 5.0, 38000))
    done = list(track_persons(frames, object_detector, 5.0))
    indexes = [[p.index for p in frame.persons] for frame in done]
    before = [i for frame, found in zip(done, indexes, strict=True) if frame.timestamp_millis < 43000 for i in found]
    after = [i for frame, found in zip(done, indexes, strict=True) if frame.timestamp_millis > 54000 for i in found]
    assert set(before) == {0}
    assert len(before) >= 0.9 * 25
    assert set(after) == {1}
    assert len(after) >= 0.9 * 20
    assert all(len(found) <= 1 for found in indexes)


def test_faces_go_to_their_own_persons(
    data_root: Path, object_detector: ObjectDetector, detector: RetinaFaceDetector
) -> None:
    pixels = rgb(data_root / TWO_PEOPLE)
    persons = detect_persons(pixels, object_detector)
    faces = analyze(DecodedImage(pixels, "JPEG"), detector)
    assert len(faces) >= 2
    tracker = PersonTracker(5.0)
    done = [f for n in range(3) for f in tracker.update(n * 200, persons, faces)] + tracker.finish()
    last = done[-1]
    assert len(last.persons) == 2
    rows = [p.face_row for p in last.persons]
    assert None not in rows
    assert len(set(rows)) == 2
    for person in last.persons:
        assert person.face_row is not None
        face = last.faces.xyxy[person.face_row]
        left, top, right, bottom = person.xyxy
        centre_x, centre_y = (face[0] + face[2]) / 2, (face[1] + face[3]) / 2
        assert left <= centre_x <= right
        assert top <= centre_y <= (top + bottom) / 2
