"""Build-time conversion of dlib's face-recognition ResNet to ONNX (pure Python: numpy + onnx).

Reads `dlib_face_recognition_resnet_model_v1.dat` directly and writes the same network, with the
same weights, as an opset-17 ONNX graph:

- input `chips`: float32 (N, 3, 150, 150), RGB, plain 0..255 pixel values of aligned face chips
  (`dlib.get_face_chip(image, shape, size=150, padding=0.25)`, HWC uint8, transposed to CHW);
- output `descriptors`: float32 (N, 128), what dlib's `compute_face_descriptor` returns (the
  loss_metric layer adds nothing at inference: no normalisation).

dlib's input layer (`input_rgb_image_sized<150>`) computes `(pixel - mean[c]) / 256` with the
per-channel means stored in the file (R 122.782, G 117.001, B 104.298); the graph does the same.

The file is dlib's `serialize` output (dlib/serialize.h, dlib/dnn/{core,tensor,layers,input,loss}.h):

- integer: a control byte (bit 7: negative, low 4 bits: byte count), then the magnitude's bytes,
  little-endian; string: integer length, then bytes; bool: ASCII '0' or '1'; scalar float:
  integer mantissa, then integer exponent (value = mantissa * 2**exponent);
- tensor: integer version 2, n, k, nr, nc, then n*k*nr*nc little-endian float32 values; alias
  tensor (a view into a layer's params): version 1, n, k, nr, nc;
- network: the loss layer writes version 1, its details ("loss_metric_2", margin, threshold), then
  its subnetwork. Every wrapper writes its version before its subnetwork (add_layer 2, the
  add_layer right above the input layer 3, tag and skip layers 1 and nothing else), and each
  add_layer writes its layer's details, three bools and three cached tensors after it. So the
  file holds all wrapper versions, outermost first, then the input layer, then each layer's
  details from the input side up.

Tag and skip layers store no ids, so which output each `add_prev` adds back and where each `skip`
jumps to comes from the network's C++ type (`anet_type` in dlib's dnn_face_recognition_ex.cpp),
written out in `ANET_TOPOLOGY`. The converter checks it against the layer kinds and tag/skip
positions found in the file and takes every size and weight from the file. As in dlib, `add_prev`
of two tensors of different shapes zero-pads the smaller at the end of each axis (channels,
bottom, right): the 3x3 output of a stride-2 block is added to a 4x4 pooled shortcut.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
INPUT_NAME = "chips"
OUTPUT_NAME = "descriptors"
CHIP_SIZE = 150
FLOAT_SPECIALS = {32000: math.inf, 32001: -math.inf, 32002: math.nan}  # float_details exponents
TAG_OR_SKIP = "tag/skip"


def _anet_topology() -> list[tuple[str, int]]:
    """anet_type from the input side: (dlib layer version string, 0) or ("tag"|"skip"|"add_prev", id)."""
    block = [("con_4", 0), ("affine_", 0), ("relu_", 0), ("con_4", 0), ("affine_", 0)]
    ares = [("tag", 1), *block, ("add_prev", 1), ("relu_", 0)]  # relu<add_prev1<block<tag1<x>>>>
    # relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<tag1<x>>>>>>>: avg_pool(x) + block(x)
    down = [("tag", 1), *block, ("tag", 2), ("skip", 1), ("avg_pool_2", 0), ("add_prev", 2), ("relu_", 0)]
    stem = [("input_rgb_image_sized", 0), ("con_4", 0), ("affine_", 0), ("relu_", 0), ("max_pool_2", 0)]
    levels = [*ares * 3, *down, *ares * 3, *down, *ares * 2, *down, *ares * 2, *down]  # alevel4 .. alevel0
    return [*stem, *levels, ("avg_pool_2", 0), ("fc_2", 0)]  # avg_pool_everything, fc_no_bias<128>


ANET_TOPOLOGY = _anet_topology()


@dataclass
class Layer:
    """One serialised layer: its dlib version string, integer fields and float32 arrays."""

    kind: str
    ints: dict[str, int] = field(default_factory=dict)
    arrays: dict[str, NDArray[np.float32]] = field(default_factory=dict)


class _Reader:
    """Sequential reader of dlib's serialisation primitives."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def integer(self) -> int:
        control = self.data[self.pos]
        size = control & 0x0F
        value = int.from_bytes(self.data[self.pos + 1 : self.pos + 1 + size], "little")
        self.pos += 1 + size
        return -value if control & 0x80 else value

    def integers(self, layer: Layer, *names: str) -> None:
        layer.ints.update((name, self.integer()) for name in names)

    def real(self) -> float:
        mantissa, exponent = self.integer(), self.integer()
        return FLOAT_SPECIALS[exponent] if exponent in FLOAT_SPECIALS else math.ldexp(mantissa, exponent)

    def string(self) -> str:
        size = self.integer()
        self.pos += size
        return self.data[self.pos - size : self.pos].decode("ascii")

    def bools(self, count: int) -> None:
        self.expect(set(self.data[self.pos : self.pos + count]) <= set(b"01"), True, f"{count} bools")
        self.pos += count

    def tensor(self) -> NDArray[np.float32]:
        self.expect(self.integer(), 2, "tensor version")
        shape = tuple(self.integer() for _ in range(4))
        count = math.prod(shape)
        array = np.frombuffer(self.data, "<f4", count, self.pos).reshape(shape).astype(np.float32)
        self.pos += 4 * count
        return array

    def alias(self) -> tuple[int, ...]:
        self.expect(self.integer(), 1, "alias_tensor version")
        return tuple(self.integer() for _ in range(4))

    def expect(self, found: object, wanted: object, what: str) -> None:
        if found != wanted:
            raise ValueError(f"{what}: expected {wanted!r}, found {found!r} (byte {self.pos})")


def _read_details(reader: _Reader) -> Layer:
    """One layer's details: what `serialize(item.details)` of an add_layer (or the input layer) wrote."""
    layer = Layer(reader.string())
    pooling = ("nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x")
    if layer.kind == "input_rgb_image_sized":
        layer.arrays["mean"] = np.array([reader.real() for _ in range(3)], np.float32)
        reader.integers(layer, "nr", "nc")
    elif layer.kind == "con_4":
        params = reader.tensor().ravel()
        reader.integers(layer, "filters", *pooling)
        filters, _biases = reader.alias(), reader.alias()
        layer.arrays["weight"] = params[: math.prod(filters)].reshape(filters)  # OIHW, as ONNX
        layer.arrays["bias"] = params[math.prod(filters) :]
        for _ in range(4):  # learning-rate and weight-decay multipliers
            reader.real()
    elif layer.kind == "affine_":
        params = reader.tensor().ravel()
        gamma, _beta = reader.alias(), reader.alias()
        reader.expect(reader.integer(), 0, "affine_ mode (CONV_MODE)")
        layer.arrays["scale"], layer.arrays["shift"] = np.split(params, [math.prod(gamma)])
    elif layer.kind in ("max_pool_2", "avg_pool_2"):
        reader.integers(layer, *pooling)
    elif layer.kind == "fc_2":
        reader.integers(layer, "outputs", "inputs")
        params = reader.tensor().ravel()
        weights, _biases = reader.alias(), reader.alias()
        reader.expect(reader.integer(), 1, "fc_ bias mode (FC_NO_BIAS)")
        for _ in range(4):
            reader.real()
        reader.expect(weights, (layer.ints["inputs"], layer.ints["outputs"], 1, 1), "fc_ weights shape")
        layer.arrays["weight"] = params.reshape(weights[:2])  # (inputs, outputs): output = input @ weight
    elif layer.kind not in ("relu_", "add_prev_"):
        raise ValueError(f"unsupported dlib layer {layer.kind!r}")
    return layer


def read_dat(data: bytes) -> list[Layer | None]:
    """The network's layers from the input side to the output, `None` for each tag or skip layer."""
    reader = _Reader(data)
    reader.expect(reader.integer(), 1, "add_loss_layer version")
    reader.expect(reader.string(), "loss_metric_2", "loss layer")
    for _ in range(2):  # margin and distance threshold: training only
        reader.real()
    wrappers = []
    while (version := reader.integer()) != 3:
        reader.expect(version in (1, 2), True, f"layer wrapper version {version}")
        wrappers.append(version)
    layers: list[Layer | None] = [_read_details(reader)]  # the input layer
    for version in [3, *reversed(wrappers)]:
        if version == 1:
            layers.append(None)
            continue
        layers.append(_read_details(reader))
        reader.bools(3)  # setup called, gradient stale, output disabled by an in-place layer
        for _ in range(3):  # x_grad, cached output, params_grad (grad_final for version 3): empty
            reader.tensor()
        if version == 3:
            reader.integer()  # sample expansion factor
    reader.expect(reader.pos, len(data), "end of file")
    return layers


Shape = tuple[int, ...]  # (C, H, W); the batch axis is dynamic


def _pooled(size: int, window: int, stride: int, pad: int = 0) -> int:
    return (size + 2 * pad - window) // stride + 1


class _Graph:
    """ONNX nodes and initializers, with each value's static (C, H, W) to size add_prev padding."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.shapes: dict[str, Shape] = {INPUT_NAME: (3, CHIP_SIZE, CHIP_SIZE)}

    def const(self, array: NDArray[Any]) -> str:
        name = f"c{len(self.initializers)}"
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: list[str], shape: Shape, **attrs: Any) -> str:
        name = f"{op.lower()}{len(self.nodes)}"
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        self.shapes[name] = shape
        return name

    def input(self, layer: Layer, x: str) -> str:
        if (layer.ints["nr"], layer.ints["nc"]) != (CHIP_SIZE, CHIP_SIZE):
            raise ValueError(f"input size {layer.ints['nr']}x{layer.ints['nc']}, expected {CHIP_SIZE}")
        centred = self.node("Sub", [x, self.const(layer.arrays["mean"].reshape(1, 3, 1, 1))], self.shapes[x])
        return self.node("Mul", [centred, self.const(np.array(1 / 256, np.float32))], self.shapes[x])

    def con(self, layer: Layer, x: str) -> str:
        (channels, height, width), weight, ints = self.shapes[x], layer.arrays["weight"], layer.ints
        if weight.shape[1] != channels:
            raise ValueError(f"convolution over {weight.shape[1]} channels applied to {channels}")
        pads, strides = [ints["padding_y"], ints["padding_x"]], [ints["stride_y"], ints["stride_x"]]
        size = (_pooled(height, ints["nr"], strides[0], pads[0]), _pooled(width, ints["nc"], strides[1], pads[1]))
        inputs = [x, self.const(weight), self.const(layer.arrays["bias"])]
        kernel = [ints["nr"], ints["nc"]]
        return self.node("Conv", inputs, (ints["filters"], *size), kernel_shape=kernel, strides=strides, pads=pads * 2)

    def affine(self, layer: Layer, x: str) -> str:
        scaled = self.node("Mul", [x, self.const(layer.arrays["scale"].reshape(1, -1, 1, 1))], self.shapes[x])
        return self.node("Add", [scaled, self.const(layer.arrays["shift"].reshape(1, -1, 1, 1))], self.shapes[x])

    def relu(self, _layer: Layer, x: str) -> str:
        return self.node("Relu", [x], self.shapes[x])

    def pool(self, layer: Layer, x: str) -> str:
        (channels, height, width), ints = self.shapes[x], layer.ints
        if ints["padding_y"] or ints["padding_x"]:
            raise ValueError("padded pooling is not supported")
        window = [ints["nr"] or height, ints["nc"] or width]  # 0: the whole plane (avg_pool_everything)
        strides = [ints["stride_y"], ints["stride_x"]]
        shape = (channels, _pooled(height, window[0], strides[0]), _pooled(width, window[1], strides[1]))
        op = "MaxPool" if layer.kind == "max_pool_2" else "AveragePool"
        return self.node(op, [x], shape, kernel_shape=window, strides=strides)

    def add(self, x: str, y: str) -> str:
        shape = tuple(max(a, b) for a, b in zip(self.shapes[x], self.shapes[y], strict=True))
        return self.node("Add", [self._pad_to(x, shape), self._pad_to(y, shape)], shape)

    def fc(self, layer: Layer, x: str) -> str:
        flat = self.node("Flatten", [x], (math.prod(self.shapes[x]), 1, 1), axis=1)
        return self.node("MatMul", [flat, self.const(layer.arrays["weight"])], (layer.ints["outputs"], 1, 1))

    def _pad_to(self, x: str, shape: Shape) -> str:
        extra = [want - have for want, have in zip(shape, self.shapes[x], strict=True)]
        if not any(extra):
            return x
        pads = self.const(np.array([0, 0, 0, 0, 0, *extra], np.int64))  # N C H W begins, then ends
        return self.node("Pad", [x, pads], shape)


def build_model(layers: list[Layer | None]) -> onnx.ModelProto:
    """The ONNX model of the layers `read_dat` found, wired as `ANET_TOPOLOGY`."""
    if len(layers) != len(ANET_TOPOLOGY):
        raise ValueError(f"anet_type has {len(ANET_TOPOLOGY)} layers, the file {len(layers)}")
    graph = _Graph()
    emit: dict[str, Callable[[Layer, str], str]] = {
        "input_rgb_image_sized": graph.input,
        "con_4": graph.con,
        "affine_": graph.affine,
        "relu_": graph.relu,
        "max_pool_2": graph.pool,
        "avg_pool_2": graph.pool,
        "fc_2": graph.fc,
    }
    current, tags = INPUT_NAME, dict[int, str]()
    for index, ((kind, tag), layer) in enumerate(zip(ANET_TOPOLOGY, layers, strict=True)):
        wanted = {"tag": TAG_OR_SKIP, "skip": TAG_OR_SKIP, "add_prev": "add_prev_"}.get(kind, kind)
        if (found := layer.kind if layer else TAG_OR_SKIP) != wanted:
            raise ValueError(f"layer {index}: the file has {found!r} where anet_type has {wanted!r}")
        if kind == "tag":
            tags[tag] = current
        elif kind == "skip":
            current = tags[tag]
        elif kind == "add_prev":
            current = graph.add(current, tags[tag])
        elif layer:
            current = emit[kind](layer, current)
    graph.nodes[-1].output[0] = OUTPUT_NAME
    onnx_graph = helper.make_graph(
        graph.nodes,
        "dlib_face_recognition_resnet_model_v1",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", 3, CHIP_SIZE, CHIP_SIZE])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", graph.shapes[current][0]])],
        graph.initializers,
    )
    model = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="opsis")
    model.ir_version = 8  # the IR of opset 17, readable by older runtimes too
    onnx.checker.check_model(model)
    return model


def convert(dat_path: Path, onnx_path: Path) -> None:
    """Convert dlib's `dlib_face_recognition_resnet_model_v1.dat` to an equivalent ONNX model."""
    model = build_model(read_dat(Path(dat_path).read_bytes()))
    Path(onnx_path).write_bytes(model.SerializeToString())


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m opsis.vision.convert.dlib_resnet MODEL.dat OUTPUT.onnx")
    convert(Path(sys.argv[1]), Path(sys.argv[2]))
