"""Build-time conversion of TensorFlow.js graph models to ONNX (pure Python: numpy + onnx, no TensorFlow).

A TF.js graph model is `model.json` plus binary weight shards:

- `modelTopology.node`: TensorFlow's GraphDef as JSON; each node has `name`, `op`, `input` ("name" or
  "name:k" for output k, "^name" for a control edge) and `attr` (proto3 JSON: ints as strings,
  strings base64, zero values left out). Every `Const` node's value is in the weights.
- `weightsManifest`: groups of `{paths, weights}`; a group's shards, concatenated, hold its weights
  in order, each `{name, shape, dtype}` and, when quantised, `quantization` {dtype float16} (IEEE
  half floats) or {dtype uint8|uint16, scale, min} (value = q * scale + min).
- `signature`: the model's inputs and outputs, by key, with their tensor names ("input_1:0").

The converter walks the nodes the signature's outputs need, in dependency order, and emits each
through `tfjs_ops.OPS`. A node whose inputs are all constants is evaluated right away with ONNX's
reference evaluator and becomes a constant, so shape arithmetic (onnx-tf's SparseToDense, MoveNet's
Shape/StridedSlice/Range chains) is folded for the input size given. The ONNX graph's inputs and
outputs are named by the signature's keys; weights become float32 initializers.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from opsis.vision.convert.onnx_graph import OPSET, ConversionError, Graph
from opsis.vision.convert.tfjs_ops import OPS, TF_TYPES, Node

WEIGHT_DTYPES: dict[str, type[np.generic]] = {
    "float32": np.float32,
    "int32": np.int32,
    "bool": np.bool_,
    "float16": np.float16,
    "uint8": np.uint8,
    "uint16": np.uint16,
}


def read_weights(manifest: list[dict[str, Any]], shard: Callable[[str], bytes]) -> dict[str, NDArray[Any]]:
    """Every weight of a `weightsManifest`, dequantised, by name; `shard(path)` reads one shard file."""
    weights: dict[str, NDArray[Any]] = {}
    for group in manifest:
        data = b"".join(shard(path) for path in group["paths"])
        offset = 0
        for spec in group["weights"]:
            array, offset = _read_weight(spec, data, offset)
            weights[spec["name"]] = array
        if offset != len(data):
            raise ConversionError(f"weights of {group['paths']} end at byte {offset} of {len(data)}")
    return weights


def _read_weight(spec: dict[str, Any], data: bytes, offset: int) -> tuple[NDArray[Any], int]:
    shape = [int(d) for d in spec["shape"]]
    count = int(np.prod(shape, dtype=np.int64))
    quantization = spec.get("quantization")
    stored = WEIGHT_DTYPES[quantization["dtype"] if quantization else spec["dtype"]]
    raw = np.frombuffer(data, np.dtype(stored).newbyteorder("<"), count, offset)
    offset += count * np.dtype(stored).itemsize
    if quantization and quantization["dtype"] != "float16":
        raw = raw.astype(np.float32) * np.float32(quantization["scale"]) + np.float32(quantization["min"])
    return raw.astype(WEIGHT_DTYPES[spec["dtype"]]).reshape(shape), offset


def read_nodes(model: Mapping[str, Any]) -> dict[str, Node]:
    """The topology's nodes by name, without control edges."""
    return {
        raw["name"]: Node(
            name=raw["name"],
            op=raw["op"],
            inputs=tuple(ref for ref in raw.get("input", []) if not ref.startswith("^")),
            attr=raw.get("attr", {}),
        )
        for raw in model["modelTopology"]["node"]
    }


def _split_ref(ref: str) -> tuple[str, int]:
    """"name:k" -> (name, k); a bare name is output 0."""
    name, _, index = ref.rpartition(":")
    return (name, int(index)) if name and index.isdigit() else (ref, 0)


def _dependency_order(nodes: Mapping[str, Node], outputs: Sequence[str]) -> list[Node]:
    """The nodes the outputs need, each after its inputs (iterative depth-first search)."""
    order: list[Node] = []
    done: set[str] = set()
    stack: list[tuple[str, bool]] = [(_split_ref(ref)[0], False) for ref in reversed(outputs)]
    while stack:
        name, expanded = stack.pop()
        if name in done:
            continue
        if expanded:
            done.add(name)
            order.append(nodes[name])
            continue
        if name not in nodes:
            raise ConversionError(f"the graph has no node {name!r}")
        stack.append((name, True))
        inputs = (_split_ref(ref)[0] for ref in reversed(nodes[name].inputs))
        stack.extend((source, False) for source in inputs if source not in done)
    return order


class _Converter:
    """Emits the nodes of one model into a `Graph`, folding constant subgraphs as it goes."""

    def __init__(self, weights: Mapping[str, NDArray[Any]]) -> None:
        self.graph = Graph()
        self.weights = weights
        self.tensors: dict[str, list[str]] = {}  # TF node -> ONNX names of its outputs

    def ref(self, ref: str) -> str:
        name, index = _split_ref(ref)
        return self.tensors[name][index]

    def placeholder(self, node: Node, onnx_name: str, shape: Sequence[int] | None) -> None:
        dims = shape or [int(d.get("size", -1)) for d in node.attr["shape"]["shape"].get("dim", [])]
        elem_type = TF_TYPES[node.dtype("dtype")][0]
        symbolic = [d if d >= 0 else f"{onnx_name}_{i}" for i, d in enumerate(dims)]
        self.graph.inputs.append(helper.make_tensor_value_info(onnx_name, elem_type, symbolic))
        self.tensors[node.name] = [onnx_name]

    def emit(self, node: Node) -> None:
        if node.op == "Const":
            if node.name not in self.weights:
                raise ConversionError(f"constant {node.name!r} is not in the weights manifest")
            self.tensors[node.name] = [self.graph.const(self.weights[node.name])]
            return
        if node.op not in OPS:
            raise ConversionError(f"{node.name}: TensorFlow op {node.op!r} is not supported")
        inputs = [self.ref(ref) for ref in node.inputs]
        start = len(self.graph.nodes)
        outputs = OPS[node.op](self.graph, node, inputs)
        if inputs and all(self.graph.is_const(name) for name in inputs):
            self._fold(start, outputs)
        self.tensors[node.name] = outputs

    def _fold(self, start: int, outputs: list[str]) -> None:
        """Evaluate the nodes emitted since `start` (their inputs are all constants) and drop them."""
        nodes = self.graph.nodes[start:]
        if not nodes:
            return
        del self.graph.nodes[start:]
        consts = self.graph.consts
        used = {name for node in nodes for name in node.input if name in consts}
        initializers = [numpy_helper.from_array(consts[name], name) for name in sorted(used)]
        results = [helper.make_empty_tensor_value_info(name) for name in outputs]
        graph = helper.make_graph(nodes, "fold", [], results, initializers)
        values = ReferenceEvaluator(helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])).run(
            None, {}
        )
        for name, value in zip(outputs, values, strict=True):
            consts[name] = np.asarray(value)


def convert_graph_model(
    model: Mapping[str, Any],
    shard: Callable[[str], bytes],
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    name: str = "tfjs",
) -> onnx.ModelProto:
    """The ONNX model of a TF.js graph model (`model` is its parsed JSON).

    `input_shapes` fixes input shapes by signature key (e.g. MoveNet's -1 x -1 image to 256 x 256),
    which lets every shape computation fold into a constant.
    """
    nodes = read_nodes(model)
    signature = model["signature"]
    inputs = {_split_ref(spec["name"])[0]: key for key, spec in signature["inputs"].items()}
    outputs = {key: spec["name"] for key, spec in signature["outputs"].items()}
    converter = _Converter(read_weights(model["weightsManifest"], shard))
    for node in _dependency_order(nodes, list(outputs.values())):
        if node.op == "Placeholder":
            key = inputs.get(node.name)
            if key is None:
                raise ConversionError(f"placeholder {node.name!r} is not a signature input")
            converter.placeholder(node, key, (input_shapes or {}).get(key))
        else:
            converter.emit(node)
    results = [_signature_value_info(key, spec) for key, spec in signature["outputs"].items()]
    return _finish(converter.graph, {key: converter.ref(ref) for key, ref in outputs.items()}, results, name)


def _signature_value_info(key: str, spec: Mapping[str, Any]) -> onnx.ValueInfoProto:
    """An output's type from the signature; unknown (-1) dimensions become symbols."""
    dims = [int(d.get("size", -1)) for d in spec.get("tensorShape", {}).get("dim", [])]
    shape = [d if d >= 0 else f"{key}_{i}" for i, d in enumerate(dims)]
    return helper.make_tensor_value_info(key, TF_TYPES[spec.get("dtype", "DT_FLOAT")][0], shape)


def _finish(
    graph: Graph, outputs: Mapping[str, str], results: list[onnx.ValueInfoProto], name: str
) -> onnx.ModelProto:
    """Name the outputs by their signature keys, keep the constants the nodes use, and check."""
    for key, tensor in outputs.items():
        graph.nodes.append(helper.make_node("Identity", [tensor], [key], name=f"output_{key}"))
    used = {i for node in graph.nodes for i in node.input} & graph.consts.keys()
    initializers = [numpy_helper.from_array(_stored(graph.consts[n]), n) for n in sorted(used)]
    onnx_graph = helper.make_graph(graph.nodes, name, graph.inputs, results, initializers)
    model = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="opsis")
    model.ir_version = 8  # opset 18's IR, readable by older runtimes too
    onnx.checker.check_model(model)
    return onnx.shape_inference.infer_shapes(model)


def _stored(array: NDArray[Any]) -> NDArray[Any]:
    """Constants as ONNX stores them: numpy scalars become 0-d arrays; float64 never appears in TF.js."""
    return np.ascontiguousarray(array)


def convert_file(json_path: Path, onnx_path: Path, input_shapes: Mapping[str, Sequence[int]] | None = None) -> None:
    """Convert `model.json` (shards beside it) to an ONNX file."""
    import json

    model = json.loads(json_path.read_text())
    onnx_model = convert_graph_model(model, lambda path: (json_path.parent / path).read_bytes(), input_shapes)
    onnx_path.write_bytes(onnx_model.SerializeToString())


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m opsis.vision.convert.tfjs_graph MODEL.json OUTPUT.onnx")
    convert_file(Path(sys.argv[1]), Path(sys.argv[2]))
