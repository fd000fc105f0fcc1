"""Stored-video jobs through boto3 against a live server: Start*/Get* shapes, paging, sorting and
aggregation, idempotency, bad input, and a job that survives its server being killed."""

from __future__ import annotations

import itertools
import json
import shutil
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import av
import numpy as np
import pytest
from botocore.exceptions import ClientError
from PIL import Image, ImageDraw, ImageFont

from tests.conftest import LiveServer, client, start_server, stop_server

HAMILTON = "faces/identities/face_recognition/video/short_hamilton_clip.mp4"
INTEL = "video/intel/one-by-one-person-detection.mp4"
BUCKET = "videos"
TOPIC = "arn:aws:sns:us-east-1:000000000000:video-jobs"
ROLE = "arn:aws:iam::000000000000:role/opsis-video"


def put_video(data_dir: Path, key: str, content: bytes | Path) -> dict[str, Any]:
    """Place a video in the server's local bucket; returns the request's `Video`."""
    target = data_dir / "buckets" / BUCKET / key
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, Path):
        shutil.copyfile(content, target)
    else:
        target.write_bytes(content)
    return {"S3Object": {"Bucket": BUCKET, "Name": key}}


def wait_for_job(get: Any, job_id: str, timeout: float = 300.0, **params: Any) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response: dict[str, Any] = get(JobId=job_id, **params)
        if response["JobStatus"] != "IN_PROGRESS":
            return response
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} still in progress after {timeout} s")


def all_pages(get: Any, job_id: str, member: str, **params: Any) -> list[dict[str, Any]]:
    items, token = [], None
    while True:
        page = get(JobId=job_id, **params, **({"NextToken": token} if token else {}))
        items += page[member]
        token = page.get("NextToken")
        if not token:
            return items


@pytest.fixture(scope="module")
def hamilton(server: LiveServer, data_root: Path) -> dict[str, Any]:
    return put_video(server.data_dir, "hamilton.mp4", data_root / HAMILTON)


@pytest.fixture(scope="module")
def face_job(rekognition: Any, hamilton: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    job_id = rekognition.start_face_detection(Video=hamilton, JobTag="hamilton-faces")["JobId"]
    return job_id, wait_for_job(rekognition.get_face_detection, job_id)


def test_face_detection_finds_faces_through_the_clip(face_job: tuple[str, dict[str, Any]]) -> None:
    _job_id, response = face_job
    assert response["JobStatus"] == "SUCCEEDED", response.get("StatusMessage")
    assert response["JobTag"] == "hamilton-faces"
    assert response["Video"] == {"S3Object": {"Bucket": BUCKET, "Name": "hamilton.mp4"}}
    metadata = response["VideoMetadata"]
    assert (metadata["FrameWidth"], metadata["FrameHeight"], round(metadata["FrameRate"], 2)) == (640, 360, 29.97)
    assert metadata["Codec"] == "h264"
    assert 9000 <= metadata["DurationMillis"] <= 9300
    faces = response["Faces"]
    timestamps = [face["Timestamp"] for face in faces]
    assert timestamps == sorted(timestamps)
    assert timestamps[0] >= 0
    assert timestamps[-1] <= metadata["DurationMillis"]
    # Lin-Manuel Miranda's face is on screen most of the 9 s: faces at 5 frames/s in most samples.
    assert len(set(timestamps)) >= 25
    assert all(face["Face"]["Confidence"] >= 50 and "Landmarks" in face["Face"] for face in faces)


def test_results_page_without_loss_or_overlap(rekognition: Any, face_job: tuple[str, dict[str, Any]]) -> None:
    job_id, response = face_job
    paged = all_pages(rekognition.get_face_detection, job_id, "Faces", MaxResults=7)
    assert paged == response["Faces"]
    with pytest.raises(ClientError) as error:
        rekognition.get_face_detection(JobId=job_id, NextToken="not-a-token")
    assert error.value.response["Error"]["Code"] == "InvalidPaginationTokenException"


def test_get_of_another_kind_or_an_unknown_job_is_not_found(
    rekognition: Any, face_job: tuple[str, dict[str, Any]]
) -> None:
    for call, job_id in ((rekognition.get_label_detection, face_job[0]), (rekognition.get_face_detection, "a" * 64)):
        with pytest.raises(ClientError) as error:
            call(JobId=job_id)
        assert error.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_label_detection_sorts_and_aggregates_into_segments(rekognition: Any, hamilton: dict[str, Any]) -> None:
    job_id = rekognition.start_label_detection(Video=hamilton, MinConfidence=50)["JobId"]
    by_time = wait_for_job(rekognition.get_label_detection, job_id)
    assert by_time["JobStatus"] == "SUCCEEDED", by_time.get("StatusMessage")
    assert by_time["LabelModelVersion"]
    assert by_time["GetRequestMetadata"]["AggregateBy"] == "TIMESTAMPS"
    people = [label for label in by_time["Labels"] if label["Label"]["Name"] == "Person"]
    assert len(people) >= 20
    assert all(label["Label"]["Instances"] for label in people)
    by_name = all_pages(rekognition.get_label_detection, job_id, "Labels", SortBy="NAME")
    names = [label["Label"]["Name"] for label in by_name]
    assert names == sorted(names)
    assert len(by_name) == len(by_time["Labels"])
    segments = all_pages(rekognition.get_label_detection, job_id, "Labels", AggregateBy="SEGMENTS")
    person_segments = [s for s in segments if s["Label"]["Name"] == "Person"]
    # Segments merge consecutive samples: far fewer than the per-frame rows, covering them all.
    assert 1 <= len(person_segments) < len(people) / 3
    covered = sum(
        1
        for p in people
        for s in person_segments
        if s["StartTimestampMillis"] <= p["Timestamp"] <= s["EndTimestampMillis"]
    )
    assert covered == len(people)
    assert all(s["DurationMillis"] == s["EndTimestampMillis"] - s["StartTimestampMillis"] for s in segments)


def test_text_detection_reads_a_caption(rekognition: Any, server: LiveServer, tmp_path: Path) -> None:
    video = put_video(server.data_dir, "caption.mp4", captioned_clip(tmp_path / "caption.mp4", "OPSIS VIDEO"))
    job_id = rekognition.start_text_detection(Video=video)["JobId"]
    response = wait_for_job(rekognition.get_text_detection, job_id)
    assert response["JobStatus"] == "SUCCEEDED", response.get("StatusMessage")
    words = {
        d["TextDetection"]["DetectedText"] for d in response["TextDetections"] if d["TextDetection"]["Type"] == "WORD"
    }
    assert {"OPSIS", "VIDEO"} <= words
    # The caption appears at 1 s: nothing is read before it.
    assert min(d["Timestamp"] for d in response["TextDetections"]) >= 1000


def captioned_clip(path: Path, caption: str, seconds: int = 3, rate: int = 10) -> Path:
    """A grey H.264 clip whose caption appears after its first second."""
    font = ImageFont.load_default(size=64)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        for index in range(seconds * rate):
            image = Image.new("RGB", (640, 360), (90, 90, 90))
            if index >= rate:
                ImageDraw.Draw(image).text((60, 140), caption, fill=(255, 255, 255), font=font)
            frame = av.VideoFrame.from_ndarray(np.asarray(image), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def test_client_request_token_returns_the_same_job(rekognition: Any, hamilton: dict[str, Any]) -> None:
    first = rekognition.start_content_moderation(Video=hamilton, ClientRequestToken="moderate-once")["JobId"]
    again = rekognition.start_content_moderation(Video=hamilton, ClientRequestToken="moderate-once")["JobId"]
    assert first == again
    with pytest.raises(ClientError) as error:
        rekognition.start_content_moderation(Video=hamilton, ClientRequestToken="moderate-once", MinConfidence=90)
    assert error.value.response["Error"]["Code"] == "IdempotentParameterMismatchException"
    assert wait_for_job(rekognition.get_content_moderation, first)["JobStatus"] == "SUCCEEDED"


def test_missing_video_is_refused_at_once(rekognition: Any) -> None:
    with pytest.raises(ClientError) as error:
        rekognition.start_face_detection(Video={"S3Object": {"Bucket": BUCKET, "Name": "nothing-here.mp4"}})
    assert error.value.response["Error"]["Code"] == "InvalidS3ObjectException"


def test_face_search_needs_an_existing_collection(rekognition: Any, hamilton: dict[str, Any]) -> None:
    with pytest.raises(ClientError) as error:
        rekognition.start_face_search(Video=hamilton, CollectionId="no-such-collection")
    assert error.value.response["Error"]["Code"] == "ResourceNotFoundException"


@pytest.mark.parametrize("name", ["truncated.mp4", "photo.mp4"])
def test_unreadable_video_fails_the_job_with_a_reason(
    rekognition: Any, server: LiveServer, data_root: Path, name: str
) -> None:
    data = (data_root / HAMILTON).read_bytes()
    # The clip's index (moov) is at its end: without it no frame can be found.
    content = data[: len(data) // 3] if name == "truncated.mp4" else (data_root / "misc/astronaut.png").read_bytes()
    job_id = rekognition.start_label_detection(Video=put_video(server.data_dir, name, content))["JobId"]
    response = wait_for_job(rekognition.get_label_detection, job_id)
    assert response["JobStatus"] == "FAILED"
    assert "video" in response["StatusMessage"].lower()
    assert response["Labels"] == []


class Webhook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Webhook.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    http = HTTPServer(("127.0.0.1", 0), Webhook)
    Webhook.received = []
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{http.server_address[1]}/rekognition"
    http.shutdown()


def test_job_survives_its_server_being_killed_and_notifies(tmp_path: Path, data_root: Path, webhook: str) -> None:
    """kill -9 the server mid-job: the next server runs the job again to the end, and the webhook
    gets Rekognition's completion message."""
    data_dir, log_path = tmp_path / "data", tmp_path / "server.log"
    env = {
        "OPSIS_VIDEO_JOB_LEASE_SECONDS": "4",
        "OPSIS_VIDEO_FRAMES_PER_SECOND": "2",
        "OPSIS_NOTIFICATION_WEBHOOK": webhook,
    }
    process, live = start_server(data_dir, log_path, env)
    try:
        rekognition = client(live)
        video = put_video(data_dir, "intel.mp4", data_root / INTEL)
        channel = {"SNSTopicArn": TOPIC, "RoleArn": ROLE}
        job_id = rekognition.start_face_detection(Video=video, NotificationChannel=channel, JobTag="survivor")["JobId"]
        store = sqlite_jobs(data_dir)
        deadline = time.monotonic() + 120
        while progress(store, job_id) < 5 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert 5 <= progress(store, job_id) < 100, "the job should be part way through"
        process.kill()
        process.wait()
        process, live = start_server(data_dir, log_path, env)
        response = wait_for_job(client(live).get_face_detection, job_id)
        assert response["JobStatus"] == "SUCCEEDED", response.get("StatusMessage")
        assert store.execute("SELECT attempts FROM jobs WHERE job_id = ?", (job_id,)).fetchone()[0] == 2
    finally:
        stop_server(process, log_path)
    [notice] = Webhook.received
    assert notice["Type"] == "Notification"
    assert notice["TopicArn"] == TOPIC
    message = json.loads(notice["Message"])
    assert message["JobId"] == job_id
    assert message["Status"] == "SUCCEEDED"
    assert message["API"] == "StartFaceDetection"
    assert message["JobTag"] == "survivor"
    assert message["Video"] == {"S3ObjectName": "intel.mp4", "S3Bucket": BUCKET}


def sqlite_jobs(data_dir: Path) -> Any:
    import sqlite3

    return sqlite3.connect(data_dir / "jobs.db")


def progress(store: Any, job_id: str) -> float:
    return float(store.execute("SELECT progress FROM jobs WHERE job_id = ?", (job_id,)).fetchone()[0])


# The clip's shots, found by eye (frames at 29.97/s): 0-19 a wide shot of Lin-Manuel Miranda singing
# and Alex Lacamoire at the piano, 20-81 Lacamoire in profile, 82-210 Miranda at the microphone,
# 211-274 the audience.
HAMILTON_CUTS = (20, 82, 211)
WIDE, PIANIST, SINGER, AUDIENCE = (0, 667), (667, 2736), (2736, 7040), (7040, 9200)


def test_segment_detection_finds_the_clips_cuts(rekognition: Any, hamilton: dict[str, Any]) -> None:
    job_id = rekognition.start_segment_detection(Video=hamilton, SegmentTypes=["SHOT", "TECHNICAL_CUE"])["JobId"]
    response = wait_for_job(rekognition.get_segment_detection, job_id)
    assert response["JobStatus"] == "SUCCEEDED", response.get("StatusMessage")
    assert {t["Type"] for t in response["SelectedSegmentTypes"]} == {"SHOT", "TECHNICAL_CUE"}
    assert response["AudioMetadata"][0]["Codec"] == "aac"
    assert response["VideoMetadata"][0]["FrameWidth"] == 640
    shots = [s for s in response["Segments"] if s["Type"] == "SHOT"]
    starts = [s["StartFrameNumber"] for s in shots]
    assert starts[0] == 0
    assert len(starts) == len(HAMILTON_CUTS) + 1
    assert all(abs(found - cut) <= 2 for found, cut in zip(starts[1:], HAMILTON_CUTS, strict=True))
    assert [s["ShotSegment"]["Index"] for s in shots] == list(range(len(shots)))
    # Consecutive shots tile the clip; timecodes are drop-frame at 29.97.
    assert all(a["EndFrameNumber"] + 1 == b["StartFrameNumber"] for a, b in itertools.pairwise(shots))
    assert all(";" in s["StartTimecodeSMPTE"] for s in shots)


def test_person_tracking_keeps_the_singer_on_one_index(rekognition: Any, hamilton: dict[str, Any]) -> None:
    job_id = rekognition.start_person_tracking(Video=hamilton)["JobId"]
    response = wait_for_job(rekognition.get_person_tracking, job_id)
    assert response["JobStatus"] == "SUCCEEDED", response.get("StatusMessage")
    persons = response["Persons"]
    indexes = sorted({p["Person"]["Index"] for p in persons})
    assert indexes == list(range(len(indexes)))
    # The singer fills the shot from 2.7 s to 7 s: one index holds (nearly) all of it.
    in_shot = [p for p in persons if SINGER[0] + 300 <= p["Timestamp"] <= SINGER[1] - 300]
    samples = {p["Timestamp"] for p in in_shot}
    main = max(indexes, key=lambda i: sum(p["Person"]["Index"] == i for p in in_shot))
    assert sum(p["Person"]["Index"] == main for p in in_shot) >= 0.9 * len(samples)
    assert any("Face" in p["Person"] for p in in_shot)
    by_index = all_pages(rekognition.get_person_tracking, job_id, "Persons", SortBy="INDEX")
    assert [p["Person"]["Index"] for p in by_index] == sorted(p["Person"]["Index"] for p in persons)


def test_face_search_finds_the_singer_and_the_pianist(
    rekognition: Any, hamilton: dict[str, Any], data_root: Path
) -> None:
    rekognition.create_collection(CollectionId="hamilton")
    for name in ("lin_manuel_miranda", "alex_lacamoire"):
        still = data_root / f"faces/identities/face_recognition/images/{name}/{name.replace('_', '-')}.png"
        rekognition.index_faces(
            CollectionId="hamilton", Image={"Bytes": still.read_bytes()}, ExternalImageId=name, MaxFaces=1
        )
    job_id = rekognition.start_face_search(Video=hamilton, CollectionId="hamilton", FaceMatchThreshold=85)["JobId"]
    response = wait_for_job(rekognition.get_face_search, job_id)
    assert response["JobStatus"] == "SUCCEEDED", response.get("StatusMessage")
    found = [(p["Timestamp"], m["Face"]["ExternalImageId"]) for p in response["Persons"] for m in p["FaceMatches"]]
    singer = [t for t, who in found if who == "lin_manuel_miranda" and SINGER[0] <= t < SINGER[1]]
    pianist = [t for t, who in found if who == "alex_lacamoire" and PIANIST[0] <= t < PIANIST[1]]
    assert len(singer) >= 15  # of the shot's 21 samples
    assert len(pianist) >= 3
    # Nobody in the audience is taken for either of them, and neither for the other.
    assert not [t for t, _ in found if t >= AUDIENCE[0]]
    assert not [t for t, who in found if who == "alex_lacamoire" and SINGER[0] <= t < SINGER[1]]
    assert all(m["Similarity"] >= 85 for p in response["Persons"] for m in p["FaceMatches"])


def test_too_many_open_jobs_are_refused(tmp_path: Path, data_root: Path) -> None:
    from opsis import Opsis, Settings
    from opsis.errors import LimitExceededException

    with Opsis(Settings.load(data_dir=tmp_path, video_max_open_jobs=2)) as opsis:
        clip = data_root / HAMILTON
        first = opsis.start_video_job("StartSegmentDetection", clip, SegmentTypes=["SHOT"])
        opsis.start_video_job("StartSegmentDetection", clip, SegmentTypes=["TECHNICAL_CUE"])
        with pytest.raises(LimitExceededException):
            opsis.start_video_job("StartFaceDetection", clip)
        assert opsis.wait_for_video_job(first) == "SUCCEEDED"
        opsis.start_video_job("StartFaceDetection", clip)  # one of the two has ended: room again
