"""Load-time conversion of TensorFlow Lite graphs to ONNX, so one runtime (ONNX Runtime) runs them all.

tflite2onnx translates the operators and turns NHWC tensors into NCHW ones (an image input becomes
`(N, 3, H, W)`). Two things it leaves for us:
* weights of dynamic-range-quantised graphs (the FER network) arrive as the raw int8 tensors; each
  is dequantised here with its per-channel scales and zero points, which leaves a plain float graph.
  Float graphs (MediaPipe's face mesh and iris) have no int8 tensor and pass unchanged.
* the batch dimension is fixed at 1. It is freed on inputs and outputs, the intermediate shapes
  tflite2onnx recorded are dropped (ONNX Runtime infers them again), and Reshape targets that pin the
  batch at 1 (the iris graph's `[1, -1]`) copy it from their input instead (`0` in ONNX's Reshape).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    import onnx
    import tflite as tflite_schema

BATCH_DIM = "N"
# Per-channel (scale, zero point) of each int8 tensor, by tensor name.
Quantisation = dict[str, tuple[NDArray[np.float32], NDArray[np.int64]]]


def tflite_to_onnx(tflite: bytes) -> bytes:
    """`tflite` (a .tflite file's bytes) as a float ONNX graph with a free batch dimension."""
    import onnx
    import tflite as tflite_schema
    from tflite2onnx.model import Model

    schema = tflite_schema.Model.GetRootAsModel(tflite, 0)
    # tflite2onnx warns about every int8 tensor; _dequantise_weights() handles them.
    logging.getLogger("tflite2onnx").setLevel(logging.ERROR)
    converter = Model(schema)
    converter.convert({})
    graph: onnx.ModelProto = converter.onnx
    quantisation = _weight_quantisation(schema)
    if quantisation:
        _dequantise_weights(graph, quantisation)
    _free_batch_dimension(graph)
    onnx.checker.check_model(graph)
    return bytes(graph.SerializeToString())


def _weight_quantisation(schema: tflite_schema.Model) -> Quantisation:
    """Per-channel (scale, zero point) of every int8 tensor, by name; empty for float graphs."""
    import tflite as tflite_schema

    subgraph = schema.Subgraphs(0)
    found = {}
    for index in range(subgraph.TensorsLength()):
        tensor = subgraph.Tensors(index)
        if tensor.Type() == tflite_schema.TensorType.INT8:
            quantisation = tensor.Quantization()
            scales = quantisation.ScaleAsNumpy().astype(np.float32)
            found[tensor.Name().decode()] = (scales, quantisation.ZeroPointAsNumpy().astype(np.int64))
    return found


def _dequantise_weights(graph: onnx.ModelProto, quantisation: Quantisation) -> None:
    """Replace each int8 initializer by its float value; channels are the first ONNX axis."""
    from onnx import numpy_helper

    for initializer in graph.graph.initializer:
        if initializer.name not in quantisation:
            continue
        scales, zero_points = quantisation[initializer.name]
        weights = numpy_helper.to_array(initializer).astype(np.float32)
        if len(scales) != weights.shape[0]:
            raise ValueError(f"{initializer.name}: {len(scales)} scales for {weights.shape[0]} channels")
        shape = (-1,) + (1,) * (weights.ndim - 1)
        values = (weights - zero_points.reshape(shape)) * scales.reshape(shape)
        initializer.CopyFrom(numpy_helper.from_array(values.astype(np.float32), initializer.name))


def _free_batch_dimension(graph: onnx.ModelProto) -> None:
    """Let the graph run on batches: see the module docstring."""
    from onnx import numpy_helper

    for value in (*graph.graph.input, *graph.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = BATCH_DIM
    del graph.graph.value_info[:]
    targets = {node.input[1] for node in graph.graph.node if node.op_type == "Reshape"}
    for initializer in graph.graph.initializer:
        if initializer.name in targets:
            shape = numpy_helper.to_array(initializer).copy()
            if shape.ndim == 1 and len(shape) > 1 and shape[0] == 1:
                shape[0] = 0  # ONNX Reshape: 0 copies the input's size on that axis, the batch
                initializer.CopyFrom(numpy_helper.from_array(shape, initializer.name))
