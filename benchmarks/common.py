"""Helpers the benchmarks share: timing, percentiles, `uptime`, and a live `opsis serve` with a boto3 client."""

from __future__ import annotations

import argparse
import configparser
import hashlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import numpy as np
from botocore.config import Config
from numpy.typing import NDArray

from opsis.config import Settings

# The shared evaluation data: ../shared/data beside the repository, or OPSIS_SHARED_DATA.
SHARED_DATA = Path(os.environ.get("OPSIS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def argument_parser(doc: str | None, latency: bool = False) -> argparse.ArgumentParser:
    """A benchmark's command line, described by its docstring, with --data (and, for latency
    benchmarks, --runs and --threads)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    parser.add_argument("--data", type=Path, default=SHARED_DATA, help="the shared evaluation data")
    if latency:
        parser.add_argument("--runs", type=int, default=20, help="timed runs per latency row")
        parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads per request")
    return parser


def percentiles(ms: list[float]) -> str:
    return f"{np.percentile(ms, 50):.1f} / {np.percentile(ms, 95):.1f}"


def timed(call: Callable[[], Any], count: int, warmup: int = 3) -> list[float]:
    """Milliseconds of `count` calls after `warmup` unmeasured ones."""
    times = []
    for _ in range(warmup + count):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return times[warmup:]


@contextmanager
def server(settings: Settings) -> Iterator[tuple[str, Path]]:
    """`opsis serve` on a free port; yields its URL and credentials file, stops it on exit."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    with tempfile.TemporaryDirectory(prefix="opsis-bench-") as tmp:
        env = {
            **os.environ,
            "OPSIS_LOG_LEVEL": "warning",
            "OPSIS_MODEL_THREADS": str(settings.model_threads),
            "OPSIS_INFERENCE_WORKERS": str(settings.inference_workers),
        }
        with (Path(tmp) / "server.log").open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "opsis", "serve", "--port", str(port), "--data-dir", f"{tmp}/data"],
                env=env,
                stdout=log,
                stderr=log,
            )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(url, process, Path(tmp) / "server.log")
            yield url, Path(tmp) / "data" / "credentials"
        finally:
            process.terminate()
            process.wait(timeout=30)


def wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 120.0) -> None:
    """Poll /health; on failure show the end of the server's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"opsis serve exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("opsis serve did not become healthy")


def client(url: str, credentials: Path) -> Any:
    profile = configparser.ConfigParser()
    profile.read(credentials)
    keys = profile["opsis"]
    return boto3.session.Session().client(
        "rekognition",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=keys["aws_access_key_id"],
        aws_secret_access_key=keys["aws_secret_access_key"],
        config=Config(retries={"max_attempts": 1}),
    )


ECE_BINS = 10


def expected_calibration_error(confidence: NDArray[np.floating], correct: NDArray[Any]) -> float:
    """Top-label ECE: the sample-weighted gap between mean confidence and accuracy (`correct` as
    0/1 or bools) over ECE_BINS equal-width confidence bins."""
    bins = np.minimum((confidence * ECE_BINS).astype(int), ECE_BINS - 1)
    gap = 0.0
    for index in range(ECE_BINS):
        inside = bins == index
        if inside.any():
            gap += inside.mean() * abs(float(confidence[inside].mean()) - float(correct[inside].mean()))
    return gap


def grouped_folds(groups: list[str], target: NDArray[Any], folds: int, salt: str = "") -> NDArray[np.int64]:
    """A fold per row such that a group (a photo, an identity) never spans two folds; groups
    holding a positive are dealt round first so every fold gets its share of them."""
    ordered = sorted(set(groups), key=lambda group: hashlib.sha256((salt + group).encode()).hexdigest())
    positive = {group for group, label in zip(groups, target, strict=True) if label == 1}
    dealt = [group for group in ordered if group in positive] + [group for group in ordered if group not in positive]
    fold = {group: index % folds for index, group in enumerate(dealt)}
    return np.array([fold[group] for group in groups])


def weighted_logistic_fit(
    features: NDArray[np.floating], target: NDArray[np.floating], weights: NDArray[np.floating], l2: float
) -> tuple[NDArray[np.float64], float]:
    """(coefficients, intercept) of an L2-penalised, sample-weighted logistic regression by Newton's
    method; the intercept is not shrunk."""
    design = np.c_[features, np.ones(len(features))]
    penalty = np.full(design.shape[1], l2)
    penalty[-1] = 1e-6
    coefficients = np.zeros(design.shape[1])
    for _ in range(100):
        probability = 1 / (1 + np.exp(-design @ coefficients))
        gradient = design.T @ (weights * (probability - target)) + penalty * coefficients
        hessian = (design * (weights * probability * (1 - probability))[:, None]).T @ design + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        coefficients -= step
        if np.abs(step).max() < 1e-7:
            break
    return coefficients[:-1], float(coefficients[-1])


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
