"""Shot boundaries and black-frame cues (opsis.vision.segments) on a video with known cuts.

The video is built from the shared data at 29.97 fps, 640x360, H.264: stretches of the Intel
one-by-one walk (a fixed camera, 10 fps played at 30) and of the Hamilton clip between its own cuts
(frames 20, 82 and 211, checked by eye), and MOT17 stills under a slow pan and zoom (a moving camera).
They are joined by hard cuts, two dissolves (20 and 30 frames), a fade through black, and runs of
black frames. A dissolve's boundary is its middle frame; a black run is a shot of its own.

Prints precision and recall of shot boundaries (within +-2 frames) for Opsis and for PySceneDetect's
ContentDetector and AdaptiveDetector run through its PyAV backend, of BlackFrames cues (start and
end within +-2 frames), and the speed of `detect_segments` on the built video and on the two
shared clips as frames per second and multiples of real time. Then the cuts found in the Hamilton
clip, by timestamp. `uptime` is printed at start and end (the machine is shared).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from common import argument_parser, uptime
from numpy.typing import NDArray
from rich.console import Console
from rich.table import Table

from opsis.vision.segments import SegmentType, TechnicalCueType, detect_segments

console = Console()
INTEL = "video/intel/one-by-one-person-detection.mp4"
HAMILTON = "faces/identities/face_recognition/video/short_hamilton_clip.mp4"
MOT17 = "video/mot17_mini"
RATE = Fraction(30000, 1001)
SIZE = (640, 360)
TOLERANCE = 2  # frames

Frame = NDArray[np.uint8]


@dataclass
class Truth:
    """What the built video holds: transitions as (first, last) frames (a cut's first frame twice).

    A detected boundary matches a transition when it lies within it, give or take TOLERANCE frames.
    """

    transitions: list[tuple[int, int]] = field(default_factory=list)


class Timeline:
    """Frames appended shot by shot, recording every boundary."""

    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self.truth = Truth()

    def cut(self, shot: list[Frame]) -> None:
        if self.frames:
            self.truth.transitions.append((len(self.frames), len(self.frames)))
        self.frames.extend(shot)

    def dissolve(self, shot: list[Frame], length: int) -> None:
        """Blend the last `length` frames into the first `length` of `shot`; the boundary is the middle."""
        start = len(self.frames) - length
        for offset in range(length):
            alpha = (offset + 1) / (length + 1)
            blended = (1 - alpha) * self.frames[start + offset].astype(np.float32) + alpha * shot[offset]
            self.frames[start + offset] = blended.round().astype(np.uint8)
        self.truth.transitions.append((start, start + length - 1))
        self.frames.extend(shot[length:])

    def black(self, count: int) -> None:
        self.cut([np.zeros((SIZE[1], SIZE[0], 3), np.uint8)] * count)

    def fade_through_black(self, shot: list[Frame], length: int, hold: int) -> None:
        """Fade the last `length` frames out, hold black, fade `shot` in: two transitions, each fade
        with the black frame next to it."""
        start = len(self.frames) - length
        for offset in range(length):
            scale = 1 - (offset + 1) / (length + 1)
            self.frames[start + offset] = (self.frames[start + offset] * scale).round().astype(np.uint8)
        self.truth.transitions.append((start, len(self.frames)))
        self.frames.extend([np.zeros((SIZE[1], SIZE[0], 3), np.uint8)] * hold)
        faded = [(frame * (offset + 1) / (length + 1)).round().astype(np.uint8) for offset, frame in enumerate(shot)]
        self.truth.transitions.append((len(self.frames) - 1, len(self.frames) + length - 1))
        self.frames.extend(faded[:length] + shot[length:])


def clip_frames(path: Path, first: int, count: int) -> list[Frame]:
    """`count` frames of a video from `first`, resized to SIZE, as BGR."""
    frames: list[Frame] = []
    with av.open(str(path)) as container:
        for number, frame in enumerate(container.decode(video=0)):
            if number >= first + count:
                break
            if number >= first:
                pixels = cv2.resize(frame.to_ndarray(format="bgr24"), SIZE, interpolation=cv2.INTER_AREA)
                frames.append(np.asarray(pixels, dtype=np.uint8))
    return frames


def panned(still: Path, count: int, zoom: float = 1.25) -> list[Frame]:
    """A slow pan and zoom across a still (a camera move without a cut)."""
    read = cv2.imread(str(still))
    if read is None:
        raise SystemExit(f"cannot read {still}")
    image = np.asarray(read, dtype=np.uint8)
    height, width = image.shape[:2]
    frames: list[Frame] = []
    for index in range(count):
        progress = index / max(1, count - 1)
        scale = 1 / (zoom - (zoom - 1) * progress * 0.5)
        crop_w, crop_h = int(width * scale), int(height * scale)
        left = int((width - crop_w) * progress)
        top = int((height - crop_h) * 0.5)
        crop = cv2.resize(image[top : top + crop_h, left : left + crop_w], SIZE, interpolation=cv2.INTER_AREA)
        frames.append(np.asarray(crop, dtype=np.uint8))
    return frames


def mot_still(data: Path, sequence: str) -> Path:
    return data / MOT17 / sequence / "img1" / "000001.jpg"


def build(data: Path) -> Timeline:
    intel, hamilton = data / INTEL, data / HAMILTON
    timeline = Timeline()
    timeline.cut(clip_frames(intel, 0, 90))
    timeline.cut(panned(mot_still(data, "MOT17-02-FRCNN"), 45))
    timeline.cut(clip_frames(hamilton, 84, 60))
    timeline.black(20)
    timeline.cut(panned(mot_still(data, "MOT17-04-FRCNN"), 45))
    timeline.dissolve(panned(mot_still(data, "MOT17-09-FRCNN"), 60), 20)
    timeline.cut(clip_frames(intel, 600, 90))
    timeline.cut(panned(mot_still(data, "MOT17-10-FRCNN"), 45, zoom=1.4))
    timeline.dissolve(clip_frames(hamilton, 212, 60), 30)
    timeline.cut(panned(mot_still(data, "MOT17-11-FRCNN"), 45))
    timeline.black(10)
    timeline.cut(panned(mot_still(data, "MOT17-13-FRCNN"), 45))
    timeline.fade_through_black(clip_frames(hamilton, 22, 58), 12, 8)
    timeline.cut(panned(mot_still(data, "MOT17-05-FRCNN"), 45))
    timeline.cut(clip_frames(intel, 1000, 60))
    return timeline


def encode(frames: list[Frame], path: Path) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=RATE)
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        stream.options = {"crf": "20", "preset": "veryfast"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def black_runs(frames: list[Frame]) -> list[tuple[int, int]]:
    """Runs of frames black by Rekognition's default filter, judged on the frames before encoding:
    at least 99% of pixels with BT.709 luma <= 0.2 x 255."""
    flags = []
    for frame in frames:
        luma = frame.astype(np.float32) @ np.array([0.0722, 0.7152, 0.2126], np.float32)
        flags.append(np.count_nonzero(luma <= 51.0) >= 0.99 * luma.size)
    runs, start = [], None
    for index, flag in enumerate([*flags, False]):
        if flag and start is None:
            start = index
        elif not flag and start is not None:
            runs.append((start, index - 1))
            start = None
    return runs


def distance(frame: int, transition: tuple[int, int]) -> int:
    return max(transition[0] - frame, frame - transition[1], 0)


def match(found: list[int], truth: list[tuple[int, int]]) -> int:
    """One-to-one matches within TOLERANCE frames of a transition, nearest first."""
    pairs = sorted(
        (distance(f, t), i, j) for i, f in enumerate(found) for j, t in enumerate(truth) if distance(f, t) <= TOLERANCE
    )
    used_found: set[int] = set()
    used_truth: set[int] = set()
    for _, i, j in pairs:
        if i not in used_found and j not in used_truth:
            used_found.add(i)
            used_truth.add(j)
    return len(used_found)


def scores(found: list[int], truth: list[tuple[int, int]]) -> tuple[str, str, str]:
    hits = match(found, truth)
    return f"{hits / max(1, len(found)):.2f}", f"{hits / max(1, len(truth)):.2f}", f"{hits}/{len(found)}/{len(truth)}"


def scenedetect_cuts(path: Path, detector_name: str) -> list[int]:
    from scenedetect import AdaptiveDetector, ContentDetector, SceneManager, open_video

    video = open_video(str(path), backend="pyav")
    manager = SceneManager()
    manager.add_detector(ContentDetector() if detector_name == "content" else AdaptiveDetector())
    manager.detect_scenes(video)
    return [start.frame_num for start, _ in manager.get_scene_list()[1:]]


def timed_segments(path: Path) -> tuple[float, Iterator[tuple[int, int]], list[int]]:
    start = time.perf_counter()
    result = detect_segments(path)
    seconds = time.perf_counter() - start
    cues = ((c.start_frame, c.end_frame) for c in result.technical_cues if c.cue_type is TechnicalCueType.BLACK_FRAMES)
    return result.frame_count / seconds, cues, [shot.start_frame for shot in result.shots[1:]]


def main() -> None:
    args = argument_parser(__doc__).parse_args()
    for needed in (args.data / INTEL, args.data / HAMILTON, args.data / MOT17):
        if not needed.exists():
            raise SystemExit(f"missing shared data: {needed}")
    console.print(uptime())
    timeline = build(args.data)
    truth = timeline.truth
    with tempfile.TemporaryDirectory(prefix="opsis-segments-") as tmp:
        video = Path(tmp) / "known_cuts.mp4"
        encode(timeline.frames, video)
        fps, black_cues, opsis_cuts = timed_segments(video)
        result = detect_segments(video)
        detectors = {
            "opsis (content + dissolve)": opsis_cuts,
            "scenedetect ContentDetector": scenedetect_cuts(video, "content"),
            "scenedetect AdaptiveDetector": scenedetect_cuts(video, "adaptive"),
        }
    true_black = black_runs(timeline.frames)
    console.print(
        f"built {len(timeline.frames)} frames at 29.97 fps: transitions {truth.transitions}, black {true_black}"
    )
    table = Table(title=f"Shot boundaries (+-{TOLERANCE} frames)")
    for column in ("detector", "precision", "recall", "hits/found/true", "found"):
        table.add_column(column)
    for name, cuts in detectors.items():
        table.add_row(name, *scores(cuts, truth.transitions), " ".join(map(str, cuts)))
    console.print(table)

    cues = list(black_cues)
    hits = sum(any(abs(s - ts) <= TOLERANCE and abs(e - te) <= TOLERANCE for ts, te in true_black) for s, e in cues)
    table = Table(title="BlackFrames cues (start and end +-2 frames)")
    for column in ("precision", "recall", "found", "true"):
        table.add_column(column)
    recall = hits / max(1, len(true_black))
    table.add_row(f"{hits / max(1, len(cues)):.2f}", f"{recall:.2f}", str(cues), str(true_black))
    console.print(table)

    confidence = Table(title="Shot confidences (true boundaries vs false)")
    for column in ("boundary", "confidence", "true?"):
        confidence.add_column(column)
    for shot in result.shots[1:]:
        is_true = any(distance(shot.start_frame, t) <= TOLERANCE for t in truth.transitions)
        confidence.add_row(str(shot.start_frame), f"{shot.confidence:.1f}", "yes" if is_true else "NO")
    console.print(confidence)

    speed = Table(title="detect_segments speed (2 cores, shared)")
    for column in ("video", "size", "frames/s", "x real time"):
        speed.add_column(column)
    speed.add_row("built known-cuts video", "640x360 @ 29.97", f"{fps:.0f}", f"{fps / float(RATE):.1f}")
    for name, path in (("intel one-by-one", args.data / INTEL), ("hamilton clip", args.data / HAMILTON)):
        fps_clip, _, _ = timed_segments(path)
        meta = detect_segments(path, types=[SegmentType.TECHNICAL_CUE]).metadata
        size = f"{meta.frame_width}x{meta.frame_height} @ {meta.frame_rate:g}"
        speed.add_row(name, size, f"{fps_clip:.0f}", f"{fps_clip / meta.frame_rate:.1f}")
    console.print(speed)

    hamilton = detect_segments(args.data / HAMILTON)
    found = Table(title="Cuts found in the Hamilton clip")
    for column in ("shot", "start frame", "start ms", "timecode", "confidence"):
        found.add_column(column)
    for shot in hamilton.shots:
        found.add_row(
            str(shot.shot_index),
            str(shot.start_frame),
            str(shot.start_millis),
            shot.start_timecode,
            f"{shot.confidence:.1f}",
        )
    console.print(found)
    console.print(uptime())


if __name__ == "__main__":
    main()
