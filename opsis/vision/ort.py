"""The one place that builds ONNX Runtime sessions (providers and thread counts)."""

from __future__ import annotations

import onnxruntime as ort


def create_session(model: bytes | str, threads: int) -> ort.InferenceSession:
    """A CPU session for a model given as bytes or a file path.

    `threads` is ONNX Runtime's intra-op thread count; requests are also spread over a pool of
    workers, so the total stays near the core count instead of oversubscribing it.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    # Idle workers sleep instead of spinning: with several requests in flight, spinning threads
    # steal the cores that the other requests' threads need.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
