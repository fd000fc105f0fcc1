"""Stored-video jobs: processing speed per job type as a multiple of real time, and face-search hits.

Speed: each job type runs in-process (the worker's code, 2 ONNX Runtime threads) at the default
sampling rate (5 frames/s; text 1 frame/s) on the Hamilton clip (640x360, 9 s), the first 30 s of
the Intel clip (768x432) and the same 30 s scaled to 1280x720 (the issue's aim: face detection and
person tracking at >= 1x real time for 720p). "x real time" = video seconds / processing seconds.

Face search: the two reference stills of the clip indexed, StartFaceSearch over the clip; every
sampled frame of a shot (benchmarks/labels/hamilton_face_search.csv, labelled by eye) that shows
a person counts as a hit when that person is matched, and any match of a person the shot does not
show is a false match. One run at FaceMatchThreshold 80, read at higher thresholds.
"""

from __future__ import annotations

import csv
import functools
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from common import argument_parser, client, percentiles, server, timed, uptime

from opsis import Opsis
from opsis.config import Settings
from opsis.vision.video import sample_frames

HAMILTON = "faces/identities/face_recognition/video/short_hamilton_clip.mp4"
INTEL = "video/intel/one-by-one-person-detection.mp4"
STILLS = "faces/identities/face_recognition/images"
PORTRAIT = "faces/identities/face_recognition/images/obama/obama-240p.jpg"
LATENCY_CALLS = 40
WORKER_WARM_UP_SECONDS = 15
SHOTS = Path(__file__).parent / "labels" / "hamilton_face_search.csv"
EXCERPT_SECONDS = 30
THRESHOLDS = (80, 85, 90, 99)
ALL_JOBS = (
    "StartFaceDetection",
    "StartPersonTracking",
    "StartFaceSearch",
    "StartLabelDetection",
    "StartContentModeration",
    "StartTextDetection",
    "StartSegmentDetection",
    "StartCelebrityRecognition",
)
AIM_JOBS = ("StartFaceDetection", "StartPersonTracking", "StartFaceSearch", "StartLabelDetection")
PARAMS: dict[str, dict[str, Any]] = {
    "StartFaceSearch": {"CollectionId": "hamilton"},
    "StartSegmentDetection": {"SegmentTypes": ["SHOT", "TECHNICAL_CUE"]},
}


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--quick", action="store_true", help="the Hamilton clip only")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="opsis-video-bench-") as tmp,
        Opsis(Settings.load(data_dir=Path(tmp) / "data")) as opsis,
    ):
        enrol(opsis, args.data)
        videos: dict[str, tuple[Path, tuple[str, ...]]] = {"Hamilton 640x360": (args.data / HAMILTON, ALL_JOBS)}
        if not args.quick:
            excerpt = reencode(args.data / INTEL, Path(tmp) / "intel-30s.mp4", None)
            videos["Intel 768x432, 30 s"] = (excerpt, AIM_JOBS)
            videos["Intel 1280x720, 30 s"] = (reencode(args.data / INTEL, Path(tmp) / "intel-720p.mp4", 720), AIM_JOBS)
        print(f"# uptime: {uptime()}")
        print("| Video | Job | Frames analysed | Processing s | x real time |")
        print("|---|---|---|---|---|")
        for name, (path, jobs) in videos.items():
            for operation in jobs:
                seconds, count, duration = run(opsis, operation, path)
                print(f"| {name} | {operation} | {count} | {seconds:.1f} | {duration / seconds:.2f} |")
        print(f"# uptime: {uptime()}")
        face_search_hits(opsis, args.data)
    image_latency_beside_video(args.data)


def enrol(opsis: Opsis, data: Path) -> None:
    opsis.call("CreateCollection", {"CollectionId": "hamilton"})
    for name in ("lin_manuel_miranda", "alex_lacamoire"):
        still = data / STILLS / name / f"{name.replace('_', '-')}.png"
        image = {"Bytes": still.read_bytes()}
        opsis.call("IndexFaces", {"CollectionId": "hamilton", "Image": image, "ExternalImageId": name, "MaxFaces": 1})


def run(opsis: Opsis, operation: str, path: Path) -> tuple[float, int, float]:
    """Processing seconds, results, and the video's seconds."""
    job_id = opsis.start_video_job(operation, path, **PARAMS.get(operation, {}))
    start = time.perf_counter()
    status = opsis.wait_for_video_job(job_id)
    seconds = time.perf_counter() - start
    response = opsis.video_job_results(job_id)
    if status != "SUCCEEDED":
        raise RuntimeError(f"{operation} on {path}: {status} {response.get('StatusMessage')}")
    metadata = response["VideoMetadata"]
    duration = (metadata[0] if isinstance(metadata, list) else metadata)["DurationMillis"] / 1000
    settings = opsis.ctx.settings
    rate = {"StartTextDetection": settings.video_text_frames_per_second, "StartSegmentDetection": 1000.0}.get(
        operation, settings.video_frames_per_second
    )  # segment detection reads every frame
    frames = sum(1 for _ in sample_frames(path, rate))
    return seconds, frames, duration


def reencode(source: Path, target: Path, height: int | None) -> Path:
    """The first EXCERPT_SECONDS of `source` as H.264, scaled to `height` (16:9) if given."""
    with av.open(str(source)) as reader, av.open(str(target), "w") as writer:
        stream = reader.streams.video[0]
        out = writer.add_stream("libx264", rate=stream.average_rate)
        out.width, out.height = (height * 16 // 9, height) if height else (stream.width, stream.height)
        out.pix_fmt = "yuv420p"
        for frame in reader.decode(stream):
            if frame.time is not None and frame.time >= EXCERPT_SECONDS:
                break
            pixels = np.asarray(cv2.resize(frame.to_ndarray(format="rgb24"), (out.width, out.height)), np.uint8)
            writer.mux(out.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        writer.mux(out.encode())
    return target


def face_search_hits(opsis: Opsis, data: Path) -> None:
    job_id = opsis.start_video_job("StartFaceSearch", data / HAMILTON, CollectionId="hamilton", FaceMatchThreshold=80)
    opsis.wait_for_video_job(job_id)
    matches = [
        (person["Timestamp"], match["Face"]["ExternalImageId"], match["Similarity"])
        for person in opsis.video_job_results(job_id)["Persons"]
        for match in person["FaceMatches"]
    ]
    samples = [
        frame.timestamp_millis for frame in sample_frames(data / HAMILTON, opsis.ctx.settings.video_frames_per_second)
    ]
    print("\n| FaceMatchThreshold | Hits (person shown, matched) | Hit rate | False matches (samples) |")
    print("|---|---|---|---|")
    for threshold in THRESHOLDS:
        kept = {(t, who) for t, who, similarity in matches if similarity >= threshold}
        shown = [(t, who) for t in samples for who in shown_at(t)]
        hits = sum(1 for pair in shown if pair in kept)
        false = sorted({t for t, who in kept if who not in shown_at(t)})
        print(f"| {threshold} | {hits} / {len(shown)} | {hits / len(shown):.2f} | {len(false)} |")


def image_latency_beside_video(data: Path) -> None:
    """DetectFaces over HTTP with the server's video worker idle, then busy with person tracking."""
    photo = {"Bytes": (data / PORTRAIT).read_bytes()}
    with server(Settings.load()) as (url, credentials):
        rekognition = client(url, credentials)
        idle = timed(lambda: rekognition.detect_faces(Image=photo), LATENCY_CALLS)
        video = Path(credentials).parent / "buckets" / "videos" / "intel.mp4"
        video.parent.mkdir(parents=True)
        shutil.copyfile(data / INTEL, video)
        s3_video = {"S3Object": {"Bucket": "videos", "Name": "intel.mp4"}}
        job_id = rekognition.start_person_tracking(Video=s3_video)["JobId"]
        time.sleep(WORKER_WARM_UP_SECONDS)  # the worker loads its models when its first job comes
        busy = timed(lambda: rekognition.detect_faces(Image=photo), LATENCY_CALLS)
        if rekognition.get_person_tracking(JobId=job_id, MaxResults=1)["JobStatus"] != "IN_PROGRESS":
            raise RuntimeError("the video job ended before the measurement did")
    print(f"\n# uptime: {uptime()}")
    print("| DetectFaces over HTTP, one face | p50 / p95 ms |")
    print("|---|---|")
    print(f"| video worker idle | {percentiles(idle)} |")
    print(f"| video worker tracking people (nice 10) | {percentiles(busy)} |")


@functools.cache
def labelled_shots() -> list[tuple[int, int, frozenset[str]]]:
    with SHOTS.open() as file:
        return [
            (int(row["start_ms"]), int(row["end_ms"]), frozenset(who for who in row["identities"].split(";") if who))
            for row in csv.DictReader(file)
        ]


def shown_at(timestamp: int) -> frozenset[str]:
    """Who the labelled shot at `timestamp` shows."""
    return next((who for start, end, who in labelled_shots() if start <= timestamp < end), frozenset())


if __name__ == "__main__":
    main()
