"""Shots and technical cues (opsis.vision.segments) on small videos built with PyAV at test time."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import botocore.session
import numpy as np
import pytest
from numpy.typing import NDArray

from opsis.ops.shapes import segment_detection
from opsis.vision.segments import (
    BlackFrameFilter,
    Segment,
    SegmentType,
    TechnicalCueType,
    detect_segments,
    keep_confident,
    smpte_timecode,
)
from opsis.vision.video import VideoError
from tests.conftest import DATA_ROOT

NTSC = Fraction(30000, 1001)
WIDTH, HEIGHT = 320, 180
HAMILTON = DATA_ROOT / "faces/identities/face_recognition/video/short_hamilton_clip.mp4"

Frame = NDArray[np.uint8]


def scene(seed: int, count: int) -> list[Frame]:
    """A tinted random texture under a steady pan: motion inside the shot, but no cut."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 256, (HEIGHT // 4, WIDTH // 2, 3), dtype=np.uint8).repeat(4, 0).repeat(4, 1)
    texture = (texture * 0.6 + rng.integers(0, 256, 3) * 0.4).astype(np.uint8)
    return [np.ascontiguousarray(texture[:, index : index + WIDTH]) for index in range(count)]


def flat(value: int, count: int) -> list[Frame]:
    return [np.full((HEIGHT, WIDTH, 3), value, np.uint8)] * count


def colour_bars(count: int) -> list[Frame]:
    """SMPTE 75% bars over the top two thirds, a dark strip below."""
    rgb = [(191, 191, 191), (191, 191, 0), (0, 191, 191), (0, 191, 0), (191, 0, 191), (191, 0, 0), (0, 0, 191)]
    frame = np.full((HEIGHT, WIDTH, 3), 20, np.uint8)
    edges = np.linspace(0, WIDTH, 8).astype(int)
    for index, (red, green, blue) in enumerate(rgb):
        frame[: HEIGHT * 2 // 3, edges[index] : edges[index + 1]] = (blue, green, red)
    return [frame] * count


def write_video(path: Path, frames: list[Frame], rate: Fraction = NTSC) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"crf": "16", "preset": "veryfast"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


# Shots start at 0, 60, 105 (black), 120, 170 (bars), 200.
SCENES: list[Callable[[], list[Frame]]] = [
    lambda: scene(1, 60),
    lambda: scene(2, 45),
    lambda: flat(0, 15),
    lambda: scene(3, 50),
    lambda: colour_bars(30),
    lambda: scene(4, 40),
]
SHOT_STARTS = [0, 60, 105, 120, 170, 200]
FRAME_COUNT = 240


@pytest.fixture(scope="module")
def cut_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frames = [frame for make in SCENES for frame in make()]
    return write_video(tmp_path_factory.mktemp("segments") / "cuts.mp4", frames)


@pytest.mark.parametrize(
    ("frames", "rate", "expected"),
    [
        (0, Fraction(25), "00:00:00:00"),
        (25 * 3600 + 24, Fraction(25), "01:00:00:24"),
        (24, Fraction(24000, 1001), "00:00:01:00"),  # 23.976 is not a drop-frame rate
        (29, NTSC, "00:00:00;29"),
        (1799, NTSC, "00:00:59;29"),
        (1800, NTSC, "00:01:00;02"),  # frames 00 and 01 of minute 1 are skipped
        (17982, NTSC, "00:10:00;00"),  # ... but not those of minute 10
        (17982 * 6, NTSC, "01:00:00;00"),
        (3600, Fraction(60000, 1001), "00:01:00;04"),
        (3600, Fraction(60), "00:01:00:00"),
    ],
)
def test_smpte_timecode(frames: int, rate: Fraction, expected: str) -> None:
    assert smpte_timecode(frames, rate) == expected


def test_shots_start_at_the_cuts(cut_video: Path) -> None:
    result = detect_segments(cut_video)
    assert result.frame_count == FRAME_COUNT
    assert [shot.start_frame for shot in result.shots] == SHOT_STARTS
    assert [shot.shot_index for shot in result.shots] == list(range(len(SHOT_STARTS)))
    ends = [shot.end_frame for shot in result.shots]
    assert ends == [*(start - 1 for start in SHOT_STARTS[1:]), FRAME_COUNT - 1]
    assert all(50.0 <= shot.confidence <= 100.0 for shot in result.shots)


def test_black_frames_and_colour_bars_are_cues(cut_video: Path) -> None:
    cues = detect_segments(cut_video, types=[SegmentType.TECHNICAL_CUE]).technical_cues
    found = [(cue.cue_type, cue.start_frame, cue.end_frame) for cue in cues]
    assert found == [(TechnicalCueType.BLACK_FRAMES, 105, 119), (TechnicalCueType.COLOR_BARS, 170, 199)]
    black = cues[0]
    assert black.confidence == pytest.approx(100.0)  # pure black: every pixel below the threshold
    assert black.start_millis == 3503  # 105 x 1001/30 = 3503.5, rounded down
    assert black.end_millis == 4004  # the end of frame 119 is the start of frame 120
    assert black.duration_millis == 501
    assert (black.start_timecode, black.end_timecode, black.duration_timecode) == (
        "00:00:03;15",
        "00:00:04;00",
        "00:00:00;15",
    )


def test_only_requested_types_are_detected(cut_video: Path) -> None:
    result = detect_segments(cut_video, types=[SegmentType.SHOT])
    assert result.shots
    assert result.technical_cues == []


def test_response_has_the_model_shape(cut_video: Path) -> None:
    shape = botocore.session.get_session().get_service_model("rekognition").shape_for("SegmentDetection")
    result = detect_segments(cut_video)
    shot, cue = result.shots[2], result.technical_cues[0]
    for segment in (shot, cue):
        response = segment_detection(segment)
        assert set(response) <= set(shape.members)
        assert response["DurationFrames"] == segment.end_frame - segment.start_frame + 1
        assert response["DurationMillis"] == response["EndTimestampMillis"] - response["StartTimestampMillis"]  # type: ignore[operator]
    assert segment_detection(shot)["ShotSegment"] == {"Index": 2, "Confidence": round(shot.confidence, 3)}
    assert segment_detection(shot)["Type"] == "SHOT"
    assert segment_detection(cue)["TechnicalCueSegment"] == {"Type": "BlackFrames", "Confidence": 100.0}
    assert segment_detection(cue)["Type"] == "TECHNICAL_CUE"


def test_keep_confident_applies_min_segment_confidence(cut_video: Path) -> None:
    shots = detect_segments(cut_video, types=[SegmentType.SHOT]).shots
    weak = Segment(**{**shots[1].__dict__, "confidence": 60.0})
    assert keep_confident([shots[0], weak], 80.0) == [shots[0]]
    assert keep_confident([shots[0], weak]) == [shots[0], weak]  # the default keeps everything >= 50


@pytest.mark.parametrize(
    ("frame", "black_frame", "is_black"),
    [
        (flat(40, 1)[0], BlackFrameFilter(), True),  # 40 <= 0.2 x 255
        (flat(40, 1)[0], BlackFrameFilter(max_pixel_threshold=0.1), False),  # 40 > 25.5
        (flat(70, 1)[0], BlackFrameFilter(), False),
        ("speckled", BlackFrameFilter(), False),  # 3% of the pixels are white
        ("speckled", BlackFrameFilter(min_coverage_percentage=95.0), True),
    ],
)
def test_black_frame_filter(tmp_path: Path, frame: Frame | str, black_frame: BlackFrameFilter, is_black: bool) -> None:
    if isinstance(frame, str):
        frame = flat(0, 1)[0].copy()
        frame[: HEIGHT * 3 // 100 + 1, :] = 255  # a white band over the top 3% of rows
    video = write_video(tmp_path / "black.mp4", scene(5, 20) + [frame] * 20 + scene(6, 20))
    cues = detect_segments(video, types=[SegmentType.TECHNICAL_CUE], black_frame=black_frame).technical_cues
    black = [(cue.start_frame, cue.end_frame) for cue in cues if cue.cue_type is TechnicalCueType.BLACK_FRAMES]
    assert black == ([(20, 39)] if is_black else [])


def test_black_frame_filter_checks_its_ranges() -> None:
    with pytest.raises(ValueError, match="max_pixel_threshold"):
        BlackFrameFilter(max_pixel_threshold=1.5)
    with pytest.raises(ValueError, match="min_coverage_percentage"):
        BlackFrameFilter(min_coverage_percentage=-1.0)


def test_progress_reaches_the_frame_count(tmp_path: Path) -> None:
    video = write_video(tmp_path / "progress.mp4", scene(7, 120), rate=Fraction(25))
    calls: list[tuple[int, int]] = []
    result = detect_segments(video, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (120, 120)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert len(calls) >= 2
    assert [shot.start_timecode for shot in result.shots] == ["00:00:00:00"]  # 25 fps: non-drop ':'


def test_a_file_that_is_not_a_video_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "not_a_video.mp4"
    path.write_bytes(b"this is not a video" * 100)
    with pytest.raises(VideoError):
        detect_segments(path)


@pytest.mark.skipif(not HAMILTON.exists(), reason=f"shared data missing: {HAMILTON}")
def test_hamilton_clip_cuts() -> None:
    """The clip's three cuts, checked by eye: a wide shot to a close-up, to the singer, to the audience."""
    result = detect_segments(HAMILTON)
    assert result.frame_rate == pytest.approx(NTSC, abs=0.001)
    starts = [shot.start_frame for shot in result.shots]
    assert len(starts) == 4
    for found, expected in zip(starts, [0, 20, 82, 211], strict=True):
        assert abs(found - expected) <= 2
    assert result.technical_cues == []
