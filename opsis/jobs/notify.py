"""Completion notices: what Rekognition publishes to a job's SNS topic, posted to a webhook instead.

When a job with a `NotificationChannel` ends, its completion message (Rekognition's own fields:
JobId, Status, API, JobTag, Timestamp, Video) is wrapped in an SNS HTTP "Notification" envelope
(Type, MessageId, TopicArn, Subject, Message as a JSON string, Timestamp) and POSTed as JSON to
`Settings.notification_webhook`, retried a few times. Every message, delivered or not, is recorded
with the job (`JobStore.notifications`), so nothing is lost when no webhook is configured.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import requests

from opsis.ops.context import Context
from opsis.store.base import Job

log = logging.getLogger(__name__)

ATTEMPTS = 3
TIMEOUT_SECONDS = 10


def completion_message(job: Job, status: str) -> dict[str, Any]:
    """Rekognition's completion message for a job that ended with `status`."""
    s3_object = job.params["Video"]["S3Object"]
    message: dict[str, Any] = {
        "JobId": job.job_id,
        "Status": status,
        "API": job.operation,
        "Timestamp": int(time.time() * 1000),
        "Video": {"S3ObjectName": s3_object["Name"], "S3Bucket": s3_object["Bucket"]},
    }
    if "JobTag" in job.params:
        message["JobTag"] = job.params["JobTag"]
    return message


def notify(ctx: Context, job: Job, status: str) -> None:
    """Send (and record) the completion message, if the job asked for one."""
    channel = job.params.get("NotificationChannel")
    if not channel:
        return
    message = json.dumps(completion_message(job, status))
    url = ctx.settings.notification_webhook
    outcome = "not sent: no notification webhook configured" if url is None else _post(url, channel, message)
    ctx.jobs.record_notification(job.job_id, url or channel["SNSTopicArn"], message, outcome)


def _post(url: str, channel: dict[str, str], message: str) -> str:
    envelope = {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": channel["SNSTopicArn"],
        "Subject": "Amazon Rekognition video job completed",
        "Message": message,
        "Timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    outcome = ""
    for attempt in range(ATTEMPTS):
        try:
            response = requests.post(url, json=envelope, timeout=TIMEOUT_SECONDS)
            if response.ok:
                return f"delivered: HTTP {response.status_code}"
            outcome = f"failed: HTTP {response.status_code}"
        except requests.RequestException as error:
            outcome = f"failed: {type(error).__name__}"
        log.warning("notification to %s, attempt %d: %s", url, attempt + 1, outcome)
        time.sleep(2**attempt)
    return outcome
