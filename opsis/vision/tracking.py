"""People pathing: the persons in each sampled frame of a video, each with a stable index.

Finding persons (`detect_persons`): NanoDet-m's "person" boxes. NanoDet stretches whatever it is
given to 416 x 416; a 16:9 frame stretched so loses people: on the intel clip (768x432) the whole
frame stretched finds none of the persons standing in the middle of it, and a pedestrian 60 px
tall at 1080p is a few pixels wide by the time the network sees it. So every look is square: the
whole frame padded to a square (letterboxed), and square tiles. `Coverage` says how many looks:

  WHOLE_FRAME  the letterboxed frame (1 inference).
  TILED        also square tiles as tall as the frame's short side, overlapping by at least a fifth
               (2 tiles at 16:9: 3 inferences). The default.
  DENSE        also a second row of half-size tiles (8 more at 16:9: 11 inferences).

A box a tile cut (touching an edge of the tile inside the frame) is dropped: the neighbouring tile,
or the whole-frame pass, sees that person whole. The passes are merged by NMS at `MERGE_IOU`.
Measured (benchmarks/track_people.py): on the MOT17 mini (1080p streets) TILED takes recall from
0.19 to 0.43 and MOTA from 0.17 to 0.37 over WHOLE_FRAME, at three times the cost (720p: ~45 vs
~130 ms a frame on 2 idle cores, 90-110 vs 205-255 ms under a load of 2-4); DENSE reaches 0.55 /
0.45 at ~4x TILED's cost. On the intel clip both give the 6 visitors 6 indexes.

Tracking (`PersonTracker`): ByteTrack (`trackers.ByteTrackTracker`) on those boxes, with its
lost-track buffer set in seconds of video (`LOST_TRACK_SECONDS`) whatever the sampling rate. A
ByteTrack track gets an id once it is seen in two consecutive samples; its first sighting is then
added to the frame before, so frames come out one sample late (`update` returns the frames that
are final, `finish` the last). Indexes are Rekognition's `PersonDetail.Index`: 0, 1, 2, ... in order
of first appearance (left to right within a frame), not the tracker's ids. Without appearance
re-identification, a person who leaves for longer than the buffer comes back with a new index.

Faces (optional, they cost a face-detector pass per frame): the frame's faces from THE face
pipeline, each given to at most one person whose upper half holds its centre
(`body_parts.assign_faces`), so the job can report `PersonDetail.Face`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import supervision as sv
from numpy.typing import NDArray
from trackers import ByteTrackTracker
from trackers.core.bytetrack.kalman_box_tracker import ByteTrackKalmanBoxTracker

from opsis.vision.body_parts import Person, assign_faces
from opsis.vision.faces import analyze
from opsis.vision.runners.base import FaceDetector, ObjectDetector
from opsis.vision.types import DecodedImage, Detections
from opsis.vision.video import VideoFrame

PERSON_CLASS = "person"
# Person boxes scoring at least this go to the tracker: ByteTrack uses the weak ones (below
# `HIGH_SCORE`) only to keep existing tracks going through partial occlusion, never to start one.
MIN_SCORE = 0.2
# A track starts from a box scoring at least this; boxes at HIGH_SCORE or more are matched first.
# (ByteTrack's defaults, 0.7 and 0.6, suit detectors with calibrated scores; NanoDet's GFL score
# rarely reaches 0.7 on a pedestrian.)
START_SCORE = 0.5
HIGH_SCORE = 0.45
# A lost track is kept this long, in seconds of video, for its person to be found again.
LOST_TRACK_SECONDS = 2.0
# Tiles overlap their neighbours by at least this fraction of their side.
TILE_OVERLAP = 0.2
# A tile's box within this fraction of the tile side of an inner tile edge is cut by the tile.
CUT_MARGIN = 0.01
MERGE_IOU = 0.5
REFERENCE_FRAME_RATE = 30.0  # ByteTrack's: it scales its lost-track buffer by frame_rate / 30


class Coverage(StrEnum):
    """How thoroughly each frame is searched for persons (the module docstring)."""

    WHOLE_FRAME = "whole-frame"
    TILED = "tiled"
    DENSE = "dense"


DEFAULT_COVERAGE = Coverage.TILED
# Tiles across the frame's short side, per coverage level (the whole frame is always looked at).
TILE_LEVELS: dict[Coverage, tuple[int, ...]] = {
    Coverage.WHOLE_FRAME: (),
    Coverage.TILED: (1,),
    Coverage.DENSE: (1, 2),
}


@dataclass(frozen=True)
class TrackedPerson:
    """One person in one frame: Rekognition's `PersonDetail` before scaling to 0-1."""

    index: int  # 0, 1, ... in order of first appearance in the video
    xyxy: NDArray[np.float32]  # pixels of the upright frame
    confidence: float  # the detector's score, 0-1
    face_row: int | None = None  # row of the person's face in the frame's `faces`


@dataclass(frozen=True)
class TrackedFrame:
    timestamp_millis: int
    persons: list[TrackedPerson]  # by index
    faces: Detections = field(default_factory=Detections.empty)  # analysed faces, when asked for


def detect_persons(
    pixels: NDArray[np.uint8], detector: ObjectDetector, coverage: Coverage = DEFAULT_COVERAGE
) -> Detections:
    """Person boxes scoring at least MIN_SCORE in an RGB frame, in its pixels, best first."""
    height, width = pixels.shape[:2]
    person = detector.classes.index(PERSON_CLASS)
    parts = [_persons(detector.detect(_letterboxed(pixels)), person)]
    for level in TILE_LEVELS[coverage]:
        for left, top, right, bottom in tiles(width, height, level):
            found = _persons(detector.detect(np.ascontiguousarray(pixels[top:bottom, left:right])), person)
            found = found[~_cut(found.xyxy, (left, top, right, bottom), (width, height))]
            offset = np.array([left, top, left, top], np.float32)
            parts.append(Detections(found.xyxy + offset, found.confidence))
    merged = Detections.merge(parts).nms(MERGE_IOU)
    limits = np.array([width, height, width, height], np.float32)
    return Detections(np.clip(merged.xyxy, 0, limits), merged.confidence)


def _letterboxed(pixels: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """The frame padded with black below or to the right into a square (its pixels keep their
    coordinates, and a detector that stretches to a square keeps its proportions)."""
    height, width = pixels.shape[:2]
    if height == width:
        return pixels
    side = max(height, width)
    square = np.zeros((side, side, 3), np.uint8)
    square[:height, :width] = pixels
    return square


def tiles(width: int, height: int, level: int) -> list[tuple[int, int, int, int]]:
    """Square tiles (left, top, right, bottom), `level` of them across the short side, overlapping by
    at least TILE_OVERLAP and spread evenly over the frame; none when the one tile is the whole frame."""
    side = min(width, height) / (level - (level - 1) * TILE_OVERLAP)
    lefts = _spread(width, side)
    tops = _spread(height, side)
    if len(lefts) == 1 and len(tops) == 1:
        return []
    size = round(side)
    return [(left, top, min(left + size, width), min(top + size, height)) for top in tops for left in lefts]


def _spread(length: int, side: float) -> list[int]:
    count = max(1, math.ceil((length - side * TILE_OVERLAP) / (side * (1 - TILE_OVERLAP)) - 1e-9))
    if count == 1:
        return [0]
    return [round(start) for start in np.linspace(0, length - side, count)]


def _persons(found: Detections, person: int) -> Detections:
    wanted = (found.data["class_id"] == person) & (found.confidence >= MIN_SCORE)
    return Detections(found.xyxy[wanted], found.confidence[wanted])


def _cut(xyxy: NDArray[np.float32], tile: tuple[int, int, int, int], frame: tuple[int, int]) -> NDArray[np.bool_]:
    """Rows touching an edge of the tile (in tile pixels) that lies inside the frame."""
    left, top, right, bottom = tile
    width, height = frame
    margin = CUT_MARGIN * max(right - left, bottom - top)
    cut = np.zeros(len(xyxy), bool)
    if left > 0:
        cut |= xyxy[:, 0] <= margin
    if top > 0:
        cut |= xyxy[:, 1] <= margin
    if right < width:
        cut |= xyxy[:, 2] >= right - left - margin
    if bottom < height:
        cut |= xyxy[:, 3] >= bottom - top - margin
    return cut


class PersonTracker:
    """Stable person indexes over the sampled frames of one video (ByteTrack; module docstring).

    Feed every sampled frame in order, with or without persons, to `update`; call `finish` after
    the last. Not thread-safe: one tracker per video.
    """

    def __init__(
        self,
        sample_rate: float,
        *,
        lost_track_seconds: float = LOST_TRACK_SECONDS,
        start_score: float = START_SCORE,
        high_score: float = HIGH_SCORE,
    ) -> None:
        # ByteTrack keeps a lost track for int(frame_rate / 30 x lost_track_buffer) frames: at its
        # reference rate of 30 the buffer is counted in samples, here `lost_track_seconds` of them.
        self._tracker = ByteTrackTracker(
            lost_track_buffer=max(1, math.ceil(lost_track_seconds * sample_rate)),
            frame_rate=REFERENCE_FRAME_RATE,
            track_activation_threshold=start_score,
            high_conf_det_threshold=high_score,
            minimum_consecutive_frames=2,
        )
        # ByteTrack's ids count across every tracker in the process; ours count from 0 per video.
        self._indexes: dict[int, int] = {}
        self._pending: _Pending | None = None  # the previous frame, open for first sightings

    def update(self, timestamp_millis: int, persons: Detections, faces: Detections | None = None) -> list[TrackedFrame]:
        """Take one sampled frame's person boxes (and, optionally, its analysed faces); return the
        frames that are now final: the previous one, once this one has been seen."""
        detections = sv.Detections(
            xyxy=persons.xyxy.astype(np.float32).reshape(-1, 4),
            confidence=persons.confidence.astype(np.float32),
            class_id=np.zeros(len(persons), np.int64),
            data={"row": np.arange(len(persons), dtype=np.int64)},
        )
        tracked = self._tracker.update(detections)
        if self._pending is not None:
            self._add_first_sightings(self._pending)
        current = _Pending(timestamp_millis, persons, Detections.empty() if faces is None else faces)
        ids = np.asarray(tracked.tracker_id, np.int64).reshape(-1)
        rows = np.asarray(tracked.data.get("row", np.zeros(0, np.int64)), np.int64).reshape(-1)
        for raw_id, row in zip(ids.tolist(), rows.tolist(), strict=True):
            if raw_id >= 0:
                current.found[row] = self._index(raw_id)
        # Tracks born on this frame: they get an id on the next one if they are seen again.
        current.spawned = [
            (track, _row_of(track.get_state_bbox(), persons.xyxy))
            for track in self._tracker.tracks
            if track.tracker_id < 0 and track.number_of_successful_updates == 1 and track.time_since_update == 0
        ]
        done = [] if self._pending is None else [self._pending.final()]
        self._pending = current
        return done

    def finish(self) -> list[TrackedFrame]:
        """The last frame (tracks born on it are never confirmed, so it adds nobody)."""
        done = [] if self._pending is None else [self._pending.final()]
        self._pending = None
        return done

    def _add_first_sightings(self, previous: _Pending) -> None:
        """Persons whose track the tracker confirmed just now were first seen on `previous`."""
        born = [(row, track.tracker_id) for track, row in previous.spawned if track.tracker_id >= 0 and row >= 0]
        born.sort(key=lambda pair: float(previous.persons.xyxy[pair[0], 0]))
        for row, raw_id in born:
            previous.found[row] = self._index(raw_id)

    def _index(self, raw_id: int) -> int:
        """Our index for a ByteTrack id, the next free one on first sight."""
        return self._indexes.setdefault(raw_id, len(self._indexes))


@dataclass
class _Pending:
    """A frame whose persons may still grow by first sightings."""

    timestamp_millis: int
    persons: Detections
    faces: Detections
    found: dict[int, int] = field(default_factory=dict)  # row in `persons` -> index
    spawned: list[tuple[ByteTrackKalmanBoxTracker, int]] = field(default_factory=list)  # (track, row)

    def final(self) -> TrackedFrame:
        people = {
            index: Person(self.persons.xyxy[row], float(self.persons.confidence[row]))
            for row, index in self.found.items()
        }
        if len(self.faces):
            # Most confident first, as DetectProtectiveEquipment gives faces to its persons.
            assign_faces(sorted(people.values(), key=lambda person: -person.confidence), self.faces)
        persons = [
            TrackedPerson(index, person.xyxy.astype(np.float32), person.confidence, person.face_row)
            for index, person in sorted(people.items())
        ]
        return TrackedFrame(self.timestamp_millis, persons, self.faces)


def _row_of(box: NDArray[np.float64], boxes: NDArray[np.float32]) -> int:
    """The row of `boxes` a new track was started from (its state is that box), -1 if none."""
    if len(boxes) == 0:
        return -1
    distance = np.abs(boxes - box.astype(np.float32)).sum(axis=1)
    best = int(np.argmin(distance))
    return best if distance[best] < 1.0 else -1


def track_persons(
    frames: Iterable[VideoFrame],
    detector: ObjectDetector,
    sample_rate: float,
    coverage: Coverage = DEFAULT_COVERAGE,
    face_detector: FaceDetector | None = None,
) -> Iterator[TrackedFrame]:
    """Every sampled frame with its tracked persons (and faces, given a face detector), in order."""
    tracker = PersonTracker(sample_rate)
    for frame in frames:
        persons = detect_persons(frame.image.pixels, detector, coverage)
        faces = _faces(frame.image, face_detector) if face_detector is not None and len(persons) else None
        yield from tracker.update(frame.timestamp_millis, persons, faces)
    yield from tracker.finish()


def _faces(image: DecodedImage, detector: FaceDetector) -> Detections:
    return analyze(image, detector)
