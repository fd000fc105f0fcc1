"""Build-time conversion of dlib's face-recognition ResNet to ONNX (pure Python: numpy + onnx).

Reads `dlib_face_recognition_resnet_model_v1.dat` directly and writes the same network, with the
same weights, as an opset-17 ONNX graph:

- input `chips`: float32 (N, 3, 150, 150), RGB, plain 0..255 pixel values of aligned 150x150 face
  chips (`dlib.get_face_chip(..., size=150, padding=0.25)`, HWC uint8 transposed to CHW);
- output `descriptors`: float32 (N, 128), exactly what dlib's `compute_face_descriptor` returns
  (loss_metric adds nothing at inference: no normalisation).

The input normalisation of dlib's `input_rgb_image_sized` layer, `(pixel - mean[c]) / 256` with the
per-channel means stored in the file (122.782, 117.001, 104.298), is done inside the graph.

File format (dlib's `serialize`), as decoded from dlib/serialize.h and dlib/dnn/*.h:

- integers: a control byte (bit 7 = negative, low 4 bits = byte count) then that many
  little-endian magnitude bytes; strings: an integer length then the bytes; bools: ASCII '0'/'1';
  scalar floats: integer mantissa then integer exponent (value = mantissa * 2**exponent);
- tensors: version 2, then n, k, nr, nc, then n*k*nr*nc little-endian IEEE float32 values;
  alias tensors (views into a layer's params): version 1, then n, k, nr, nc;
- the network is nested: loss layer (version 1, loss details, subnetwork), then every wrapper
  writes its version *before* its subnetwork (add_layer 2, the add_layer over the input layer 3,
  tag/skip layers 1 and nothing else), and each add_layer writes its layer details, three bools and
  its cached tensors *after* its subnetwork. So the file is: all wrapper versions outermost first,
  then the input layer, then every layer's details innermost (input side) first.

Tag and skip layers serialise no ids, so the residual topology (which output each `add_prev` adds,
where a `skip` jumps back to) comes from the network's C++ type, `anet_type` in dlib's
dnn_face_recognition_ex.cpp, encoded in `_anet_topology`; the converter checks that it lines up
with the wrappers and layer kinds found in the file, and takes every size and weight from the file.
`add_prev` of tensors of different shapes follows dlib: the smaller one is zero-padded at the end of
each axis (channels, bottom, right).
"""

from __future__ import annotations

import math
import sys
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
FLOAT_SPECIALS = {32000: math.inf, 32001: -math.inf, 32002: math.nan}


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

    def int(self) -> int:
        control = self.data[self.pos]
        size = control & 0x0F
        value = int.from_bytes(self.data[self.pos + 1 : self.pos + 1 + size], "little")
        self.pos += 1 + size
        return -value if control & 0x80 else value

    def float(self) -> float:
        mantissa, exponent = self.int(), self.int()
        return FLOAT_SPECIALS.get(exponent) or math.ldexp(mantissa, exponent)

    def str(self) -> str:
        size = self.int()
        self.pos += size
        return self.data[self.pos - size : self.pos].decode("ascii")

    def bools(self, count: int) -> None:
        if any(byte not in b"01" for byte in self.data[self.pos : self.pos + count]):
            raise ValueError(f"expected {count} bools at byte {self.pos}")
        self.pos += count

    def tensor(self) -> NDArray[np.float32]:
        self.expect(self.int(), 2, "tensor version")
        shape = tuple(self.int() for _ in range(4))
        count = math.prod(shape)
        array = np.frombuffer(self.data, "<f4", count, self.pos).reshape(shape).astype(np.float32)
        self.pos += 4 * count
        return array

    def alias(self) -> tuple[int, ...]:
        self.expect(self.int(), 1, "alias_tensor version")
        return tuple(self.int() for _ in range(4))

    def expect(self, found: object, wanted: object, what: str) -> None:
        if found != wanted:
            raise ValueError(f"{what}: expected {wanted!r}, found {found!r} (byte {self.pos})")


def _read_details(reader: _Reader) -> Layer:
    """One layer's details (`serialize(item.details)` of an add_layer, or the input layer)."""
    kind = reader.str()
    layer = Layer(kind)
    if kind == "input_rgb_image_sized":
        layer.arrays["mean"] = np.array([reader.float() for _ in range(3)], np.float32)
        layer.ints.update(nr=reader.int(), nc=reader.int())
    elif kind == "con_4":
        params = reader.tensor().ravel()
        names = ("filters", "nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x")
        layer.ints.update(zip(names, (reader.int() for _ in names), strict=True))
        filters, biases = reader.alias(), reader.alias()
        split = math.prod(filters)
        layer.arrays.update(weight=params[:split].reshape(filters), bias=params[split:].reshape(math.prod(biases)))
        for _ in range(4):  # learning-rate and weight-decay multipliers
            reader.float()
    elif kind == "affine_":
        params = reader.tensor().ravel()
        gamma, _beta = reader.alias(), reader.alias()
        reader.expect(reader.int(), 0, "affine_ mode (CONV_MODE)")
        split = math.prod(gamma)
        layer.arrays.update(scale=params[:split], shift=params[split:])
    elif kind in ("max_pool_2", "avg_pool_2"):
        names = ("nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x")
        layer.ints.update(zip(names, (reader.int() for _ in names), strict=True))
    elif kind == "fc_2":
        outputs, inputs = reader.int(), reader.int()
        params = reader.tensor().ravel()
        weights, _biases = reader.alias(), reader.alias()
        reader.expect(reader.int(), 1, "fc_ bias mode (FC_NO_BIAS)")
        for _ in range(4):
            reader.float()
        reader.expect(weights, (inputs, outputs, 1, 1), "fc_ weights shape")
        layer.arrays["weight"] = params[: inputs * outputs].reshape(inputs, outputs)
    elif kind not in ("relu_", "add_prev_"):
        raise ValueError(f"unsupported dlib layer {kind!r}")
    return layer


def read_dat(data: bytes) -> list[Layer | None]:
    """The network's layers from the input side to the output, `None` for each tag/skip layer."""
    reader = _Reader(data)
    reader.expect(reader.int(), 1, "add_loss_layer version")
    reader.expect(reader.str(), "loss_metric_2", "loss layer")
    reader.float(), reader.float()  # margin, distance threshold: training only
    wrappers = []
    while (version := reader.int()) != 3:
        reader.expect(version in (1, 2), True, f"wrapper version {version}")
        wrappers.append(version)
    layers: list[Layer | None] = [_read_details(reader)]  # the input layer
    for version in [3, *reversed(wrappers)]:
        if version == 1:
            layers.append(None)
            continue
        layers.append(_read_details(reader))
        reader.bools(3)  # setup called, gradient stale, in-place output disabled
        for _ in range(3):  # x_grad, cached output, params_grad (grad_final under version 3)
            reader.tensor()
        if version == 3:
            reader.int()  # sample expansion factor
    reader.expect(reader.pos, len(data), "end of file")
    return layers


def _anet_topology() -> list[tuple[str, int]]:
    """dlib's anet_type, input side first: (layer version string, 0) or ("tag"/"skip"/"add_prev", id)."""
    block = [("con_4", 0), ("affine_", 0), ("relu_", 0), ("con_4", 0), ("affine_", 0)]
    ares = [("tag", 1), *block, ("add_prev", 1), ("relu_", 0)]  # relu<add_prev1<block<tag1<x>>>>
    # relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<tag1<x>>>>>>>: avg_pool(x) + block(x)
    ares_down = [("tag", 1), *block, ("tag", 2), ("skip", 1), ("avg_pool_2", 0), ("add_prev", 2), ("relu_", 0)]
    levels = [*ares * 3, *ares_down, *ares * 3, *ares_down, *ares * 2, *ares_down, *ares * 2, *ares_down]
    stem = [("input_rgb_image_sized", 0), ("con_4", 0), ("affine_", 0), ("relu_", 0), ("max_pool_2", 0)]
    return [*stem, *levels, ("avg_pool_2", 0), ("fc_2", 0)]


class _Graph:
    """Accumulates ONNX nodes and initializers while tracking each value's static (C, H, W)."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.shapes: dict[str, tuple[int, int, int]] = {}

    def const(self, name: str, array: NDArray[Any]) -> str:
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: list[str], shape: tuple[int, int, int], **attrs: Any) -> str:
        name = f"{op.lower()}_{len(self.nodes)}"
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        self.shapes[name] = shape
        return name

    def pad_to(self, value: str, shape: tuple[int, int, int]) -> str:
        """dlib's implicit zero padding of a smaller add_prev operand (at the end of each axis)."""
        extra = [target - have for target, have in zip(shape, self.shapes[value], strict=True)]
        if not any(extra):
            return value
        pads = self.const(f"{value}_pads", np.array([0, 0, 0, 0, 0, *extra], np.int64))
        return self.node("Pad", [value, pads], shape)


def _pooled(size: int, window: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - window) // stride + 1


def build_model(layers: list[Layer | None]) -> onnx.ModelProto:
    """The ONNX model for the parsed layers (see `read_dat`), topology from `_anet_topology`."""
    topology = _anet_topology()
    if len(layers) != len(topology):
        raise ValueError(f"expected {len(topology)} layers for anet_type, found {len(layers)}")
    graph = _Graph()
    current, tags = INPUT_NAME, dict[int, str]()
    graph.shapes[INPUT_NAME] = (3, CHIP_SIZE, CHIP_SIZE)
    for index, ((kind, tag), layer) in enumerate(zip(topology, layers, strict=True)):
        found = "tag/skip" if layer is None else layer.kind
        if found != {"tag": "tag/skip", "skip": "tag/skip", "add_prev": "add_prev_"}.get(kind, kind):
            raise ValueError(f"layer {index}: found {found!r} where anet_type has {kind}")
        if kind == "tag":
            tags[tag] = current
            continue
        if kind == "skip":
            current = tags[tag]
            continue
        assert layer is not None
        channels, height, width = graph.shapes[current]
        ints, arrays = layer.ints, layer.arrays
        if kind == "input_rgb_image_sized":
            if (ints["nr"], ints["nc"]) != (CHIP_SIZE, CHIP_SIZE):
                raise ValueError(f"input size {ints['nr']}x{ints['nc']}, expected {CHIP_SIZE}")
            mean = graph.const("rgb_mean", arrays["mean"].reshape(1, 3, 1, 1))
            centred = graph.node("Sub", [current, mean], graph.shapes[current])
            current = graph.node(
                "Mul", [centred, graph.const("inv_256", np.array(1 / 256, np.float32))], (3, height, width)
            )
        elif kind == "con_4":
            weight = arrays["weight"]
            if weight.shape[1] != channels:
                raise ValueError(f"layer {index}: convolution expects {weight.shape[1]} channels, gets {channels}")
            py, px, sy, sx = ints["padding_y"], ints["padding_x"], ints["stride_y"], ints["stride_x"]
            shape = (ints["filters"], _pooled(height, ints["nr"], sy, py), _pooled(width, ints["nc"], sx, px))
            inputs = [current, graph.const(f"con{index}_w", weight), graph.const(f"con{index}_b", arrays["bias"])]
            current = graph.node(
                "Conv", inputs, shape, kernel_shape=[ints["nr"], ints["nc"]], strides=[sy, sx], pads=[py, px, py, px]
            )
        elif kind == "affine_":
            scale = graph.const(f"affine{index}_scale", arrays["scale"].reshape(1, -1, 1, 1))
            shift = graph.const(f"affine{index}_shift", arrays["shift"].reshape(1, -1, 1, 1))
            current = graph.node(
                "Add",
                [graph.node("Mul", [current, scale], (channels, height, width)), shift],
                (channels, height, width),
            )
        elif kind == "relu_":
            current = graph.node("Relu", [current], (channels, height, width))
        elif kind in ("max_pool_2", "avg_pool_2"):
            window = (ints["nr"] or height, ints["nc"] or width)
            strides, pads = [ints["stride_y"], ints["stride_x"]], [ints["padding_y"], ints["padding_x"]] * 2
            if any(pads):
                raise ValueError(f"layer {index}: padded pooling is not supported")
            shape = (channels, _pooled(height, window[0], strides[0], 0), _pooled(width, window[1], strides[1], 0))
            op = "MaxPool" if kind == "max_pool_2" else "AveragePool"
            current = graph.node(op, [current], shape, kernel_shape=list(window), strides=strides)
        elif kind == "add_prev":
            other = tags[tag]
            shape = tuple(max(a, b) for a, b in zip(graph.shapes[current], graph.shapes[other], strict=True))
            current = graph.node("Add", [graph.pad_to(current, shape), graph.pad_to(other, shape)], shape)
        elif kind == "fc_2":
            flat = graph.node("Flatten", [current], (channels * height * width, 1, 1), axis=1)
            current = graph.node(
                "MatMul", [flat, graph.const("fc_w", arrays["weight"])], (arrays["weight"].shape[1], 1, 1)
            )
    graph.nodes[-1].output[0] = OUTPUT_NAME
    outputs = graph.shapes[current][0]
    onnx_graph = helper.make_graph(
        graph.nodes,
        "dlib_face_recognition_resnet_model_v1",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", 3, CHIP_SIZE, CHIP_SIZE])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", outputs])],
        graph.initializers,
    )
    model = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="opsis")
    model.ir_version = 8
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
