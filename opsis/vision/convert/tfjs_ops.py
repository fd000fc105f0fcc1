"""TensorFlow operations, as TF.js graph models write them, expressed as ONNX nodes.

`OPS` maps a TensorFlow op name to a function that receives the ONNX graph being built, the node and
the ONNX names of its data inputs, and returns the ONNX names of the node's outputs in TensorFlow's
output order. Tensors keep TensorFlow's layout (NHWC images) and dtypes (int32 shape arithmetic);
only operations whose ONNX form differs are wrapped: convolutions and pooling run in NCHW between
two Transposes (ONNX Runtime's transpose optimiser cancels the pairs between consecutive layers),
and index or shape inputs are cast to the int64 that ONNX wants, and results back to int32.

Inputs that must be known at conversion time (weights, axes, permutations, sizes) are read from
`Graph.value`, which raises `ConversionError` when one is computed at run time. Operations whose
inputs are all constants are folded by the converter, so shape arithmetic on the fixed input size
never reaches the ONNX graph.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from onnx import TensorProto

from opsis.vision.convert.onnx_graph import ConversionError, Graph

# TensorFlow dtypes (the `type` of an attr) -> ONNX element types and numpy dtypes.
TF_TYPES: dict[str, tuple[int, type[np.generic]]] = {
    "DT_FLOAT": (TensorProto.FLOAT, np.float32),
    "DT_INT32": (TensorProto.INT32, np.int32),
    "DT_INT64": (TensorProto.INT64, np.int64),
    "DT_BOOL": (TensorProto.BOOL, np.bool_),
}
NCHW, NHWC = [0, 3, 1, 2], [0, 2, 3, 1]
INT64_MAX = np.iinfo(np.int64).max


@dataclass(frozen=True)
class Node:
    """One `modelTopology.node` entry: data inputs as "name" or "name:k", attrs as TF.js wrote them."""

    name: str
    op: str
    inputs: tuple[str, ...]
    attr: dict[str, Any] = field(default_factory=dict)

    def _field(self, key: str, kind: str, default: Any) -> Any:
        value = self.attr.get(key)
        if value is None:
            return default
        # proto3 JSON leaves out zero values: `{}` is 0, false or "".
        return value.get(kind, default if kind != "list" else {})

    def integer(self, key: str, default: int = 0) -> int:
        return int(self._field(key, "i", default))

    def number(self, key: str, default: float = 0.0) -> float:
        return float(self._field(key, "f", default))

    def flag(self, key: str, default: bool = False) -> bool:
        return bool(self._field(key, "b", default))

    def text(self, key: str, default: str = "") -> str:
        raw = self._field(key, "s", None)
        return default if raw is None else base64.b64decode(raw).decode()

    def integers(self, key: str) -> list[int]:
        return [int(v) for v in self._field(key, "list", {}).get("i", [])]

    def texts(self, key: str) -> list[str]:
        return [base64.b64decode(v).decode() for v in self._field(key, "list", {}).get("s", [])]

    def dtype(self, key: str = "T") -> str:
        return str(self._field(key, "type", "DT_FLOAT"))


Op = Callable[[Graph, Node, list[str]], list[str]]


def _cast(g: Graph, name: str, tf_type: str) -> str:
    return g.cast(name, TF_TYPES[tf_type][0])


# --- convolution and pooling (NHWC outside, NCHW inside) -------------------------------------------


def _padding(node: Node) -> dict[str, Any]:
    """ONNX padding attributes for TF's SAME / VALID / EXPLICIT (SAME puts the odd pixel last, as SAME_UPPER)."""
    padding = node.text("padding")
    if padding == "SAME":
        return {"auto_pad": "SAME_UPPER"}
    if padding == "VALID":
        return {"pads": [0, 0, 0, 0]}
    if padding == "EXPLICIT":
        # NHWC (before, after) pairs; ONNX wants H and W befores, then afters.
        pairs: NDArray[np.int64] = np.array(node.integers("explicit_paddings"), np.int64).reshape(4, 2)[1:3]
        return {"pads": [*pairs[:, 0], *pairs[:, 1]]}
    raise ConversionError(f"{node.name}: padding {padding!r}")


def _nhwc(node: Node) -> None:
    if node.text("data_format", "NHWC") != "NHWC":
        raise ConversionError(f"{node.name}: data_format {node.text('data_format')!r}")


def _convolution(g: Graph, node: Node, x: list[str], depthwise: bool) -> list[str]:
    _nhwc(node)
    kernel = g.value(x[1], "filter")  # HWIO, or HW C M for depthwise
    height, width, channels, outputs = kernel.shape
    if depthwise:  # output channel c*M + m, as ONNX's groups lay them out
        weight, groups = kernel.transpose(2, 3, 0, 1).reshape(channels * outputs, 1, height, width), channels
    else:
        weight, groups = kernel.transpose(3, 2, 0, 1), 1
    attrs = {
        "strides": node.integers("strides")[1:3] or [1, 1],
        "dilations": node.integers("dilations")[1:3] or [1, 1],
        "group": groups,
        **_padding(node),
    }
    activation, bias = _fused(node, x[2:])
    inputs = [g.one("Transpose", [x[0]], perm=NCHW), g.const(weight.astype(np.float32))]
    if bias is not None:
        inputs.append(bias)
    y = g.one("Conv", inputs, **attrs)
    for op, extra in activation:
        y = g.one(op, [y, *[g.const(np.float32(v)) for v in extra.get("inputs", [])]], **extra.get("attrs", {}))
    return [g.one("Transpose", [y], perm=NHWC)]


def _fused(node: Node, args: list[str]) -> tuple[list[tuple[str, dict[str, Any]]], str | None]:
    """(activations to apply, bias input) of a fused convolution's `fused_ops`."""
    fused = node.texts("fused_ops")
    if not fused:
        return [], None
    if fused[0] != "BiasAdd" or len(args) != 1:
        raise ConversionError(f"{node.name}: fused ops {fused} with {len(args)} args")
    activations: list[tuple[str, dict[str, Any]]] = []
    for name in fused[1:]:
        if name == "Relu":
            activations.append(("Relu", {}))
        elif name == "Relu6":
            activations.append(("Clip", {"inputs": [0.0, 6.0]}))
        elif name == "LeakyRelu":
            activations.append(("LeakyRelu", {"attrs": {"alpha": node.number("leakyrelu_alpha", 0.2)}}))
        else:
            raise ConversionError(f"{node.name}: fused activation {name!r}")
    return activations, args[0]


def _conv2d(g: Graph, node: Node, x: list[str]) -> list[str]:
    return _convolution(g, node, x, depthwise=False)


def _depthwise(g: Graph, node: Node, x: list[str]) -> list[str]:
    return _convolution(g, node, x, depthwise=True)


def _max_pool(g: Graph, node: Node, x: list[str]) -> list[str]:
    _nhwc(node)
    window = node.integers("ksize")[1:3]
    attrs = {"kernel_shape": window, "strides": node.integers("strides")[1:3], **_padding(node)}
    pooled = g.one("MaxPool", [g.one("Transpose", [x[0]], perm=NCHW)], **attrs)
    return [g.one("Transpose", [pooled], perm=NHWC)]


def _resize_bilinear(g: Graph, node: Node, x: list[str]) -> list[str]:
    if node.flag("align_corners"):
        mode = "align_corners"
    elif node.flag("half_pixel_centers"):
        mode = "half_pixel"
    else:
        mode = "asymmetric"
    # Sizes of all four NHWC axes (N and C unchanged): ONNX Runtime's layout optimiser breaks Resize
    # nodes that name `axes`. TF never antialiases, and neither does ONNX's Resize by default.
    shape = g.shape(x[0])
    if shape is not None and g.is_const(x[1]):
        sizes = g.const(np.array([shape[0], *g.value(x[1]), shape[3]], np.int64))
    else:
        full = g.one("Shape", [x[0]])
        batch, channels = (g.one("Slice", [full, g.const(np.array([i])), g.const(np.array([i + 1]))]) for i in (0, 3))
        sizes = g.one("Concat", [batch, g.int64(x[1]), channels], axis=0)
    return [g.one("Resize", [x[0], "", "", sizes], mode="linear", coordinate_transformation_mode=mode)]


# --- shape and layout --------------------------------------------------------------------------


def _pad(g: Graph, node: Node, x: list[str]) -> list[str]:
    pairs = g.value(x[1], "paddings").astype(np.int64)
    inputs = [x[0], g.const(np.concatenate([pairs[:, 0], pairs[:, 1]]))]
    if len(x) > 2:  # PadV2: the constant to pad with
        inputs.append(x[2])
    return [g.one("Pad", inputs, mode="constant")]


def _reshape(g: Graph, node: Node, x: list[str]) -> list[str]:
    # TF's 0 is an empty dimension, ONNX's "copy the input's": allowzero keeps TF's meaning.
    return [g.one("Reshape", [x[0], g.int64(x[1])], allowzero=1)]


def _transpose(g: Graph, node: Node, x: list[str]) -> list[str]:
    return [g.one("Transpose", [x[0]], perm=[int(v) for v in g.value(x[1], "perm")])]


def _concat(g: Graph, node: Node, x: list[str]) -> list[str]:
    return [g.one("Concat", x[:-1], axis=int(g.value(x[-1], "axis")))]


def _split_v(g: Graph, node: Node, x: list[str]) -> list[str]:
    sizes, axis = g.value(x[1], "size_splits").astype(np.int64), int(g.value(x[2], "axis"))
    if (sizes < 0).any():  # one -1: whatever the others leave
        shape = g.shape(x[0])
        if shape is None:
            raise ConversionError(f"{node.name}: SplitV with -1 needs a static shape")
        sizes[sizes < 0] = shape[axis] - sizes[sizes >= 0].sum()
    return g.add("Split", [x[0], g.const(sizes)], len(sizes), axis=axis)


def _split(g: Graph, node: Node, x: list[str]) -> list[str]:
    count = node.integer("num_split")
    return g.add("Split", [x[1]], count, axis=int(g.value(x[0], "split_dim")), num_outputs=count)


def _unpack(g: Graph, node: Node, x: list[str]) -> list[str]:
    count, axis = node.integer("num"), node.integer("axis")
    parts = g.add("Split", [x[0]], count, axis=axis, num_outputs=count)
    return [g.one("Squeeze", [part, g.const(np.array([axis], np.int64))]) for part in parts]


def _pack(g: Graph, node: Node, x: list[str]) -> list[str]:
    axis = g.const(np.array([node.integer("axis")], np.int64))
    return [g.one("Concat", [g.one("Unsqueeze", [part, axis]) for part in x], axis=node.integer("axis"))]


def _squeeze(g: Graph, node: Node, x: list[str]) -> list[str]:
    axes = node.integers("squeeze_dims")
    return [g.one("Squeeze", [x[0], g.const(np.array(axes, np.int64))] if axes else [x[0]])]


def _expand_dims(g: Graph, node: Node, x: list[str]) -> list[str]:
    return [g.one("Unsqueeze", [x[0], g.const(g.value(x[1], "dim").astype(np.int64).reshape(-1))])]


def _shape(g: Graph, node: Node, x: list[str]) -> list[str]:
    static = g.shape(x[0])
    tf_type = node.dtype("out_type")
    if static is not None:
        return [g.const(np.array(static, TF_TYPES[tf_type][1]))]
    return [_cast(g, g.one("Shape", [x[0]]), tf_type)]


def _size(g: Graph, node: Node, x: list[str]) -> list[str]:
    return [_cast(g, g.one("Size", [x[0]]), node.dtype("out_type"))]


def _strided_slice(g: Graph, node: Node, x: list[str]) -> list[str]:
    """Slice the real axes, squeeze the shrunk ones, then insert the new ones (numpy's indexing rules)."""
    begin, end, strides = (g.value(name, "StridedSlice bound").astype(np.int64) for name in x[1:4])
    if node.integer("ellipsis_mask"):
        raise ConversionError(f"{node.name}: StridedSlice with an ellipsis")
    starts, ends, axes, steps, shrink, new = [], [], [], [], [], []
    axis = out = 0
    for i in range(len(begin)):
        bit = 1 << i
        if node.integer("new_axis_mask") & bit:
            new.append(out)
            out += 1
            continue
        if node.integer("shrink_axis_mask") & bit:
            starts.append(begin[i])
            ends.append(begin[i] + 1 if begin[i] != -1 else INT64_MAX)
            steps.append(1)
            shrink.append(axis)
        else:
            default_start, default_end = (0, INT64_MAX) if strides[i] > 0 else (INT64_MAX, -INT64_MAX)
            starts.append(default_start if node.integer("begin_mask") & bit else begin[i])
            ends.append(default_end if node.integer("end_mask") & bit else end[i])
            steps.append(strides[i])
            out += 1
        axes.append(axis)
        axis += 1
    y = x[0]
    if axes:
        bounds = [g.const(np.array(v, np.int64)) for v in (starts, ends, axes, steps)]
        y = g.one("Slice", [y, *bounds])
    if shrink:
        y = g.one("Squeeze", [y, g.const(np.array(shrink, np.int64))])
    if new:
        y = g.one("Unsqueeze", [y, g.const(np.array(new, np.int64))])
    return [y]


def _tile(g: Graph, node: Node, x: list[str]) -> list[str]:
    return [g.one("Tile", [x[0], g.int64(x[1])])]


def _fill(g: Graph, node: Node, x: list[str]) -> list[str]:
    return [g.one("Expand", [x[1], g.int64(x[0])])]


def _range(g: Graph, node: Node, x: list[str]) -> list[str]:
    return [g.one("Range", x)]


def _sparse_to_dense(g: Graph, node: Node, x: list[str]) -> list[str]:
    """Only with constant inputs (onnx-tf writes it for shape arithmetic); folded here in numpy."""
    indices, shape, values, default = (g.value(name, "SparseToDense input") for name in x)
    dense = np.full(shape.astype(np.int64), default, dtype=values.dtype)
    coordinates = np.asarray(indices, np.int64).reshape(-1, max(len(shape), 1))  # (n, rank)
    dense[tuple(coordinates.T)] = values
    return [g.const(dense)]


# --- arithmetic, comparison and reduction --------------------------------------------------------


def _unary(op: str, **attrs: Any) -> Op:
    def emit(g: Graph, node: Node, x: list[str]) -> list[str]:
        return [g.one(op, x[:1], **attrs)]

    return emit


def _binary(op: str) -> Op:
    def emit(g: Graph, node: Node, x: list[str]) -> list[str]:
        return [g.one(op, x[:2])]

    return emit


def _leaky_relu(g: Graph, node: Node, x: list[str]) -> list[str]:
    return [g.one("LeakyRelu", x, alpha=node.number("alpha", 0.2))]


def _relu6(g: Graph, node: Node, x: list[str]) -> list[str]:
    return [g.one("Clip", [x[0], g.const(np.float32(0)), g.const(np.float32(6))])]


def _squared_difference(g: Graph, node: Node, x: list[str]) -> list[str]:
    difference = g.one("Sub", x)
    return [g.one("Mul", [difference, difference])]


def _floor_div(g: Graph, node: Node, x: list[str]) -> list[str]:
    if node.dtype() == "DT_FLOAT":
        return [g.one("Floor", [g.one("Div", x)])]
    # Integer Div truncates towards zero; subtracting Python's modulo first makes it floor.
    remainder = g.one("Mod", x, fmod=0)
    return [g.one("Div", [g.one("Sub", [x[0], remainder]), x[1]])]


def _cast_op(g: Graph, node: Node, x: list[str]) -> list[str]:
    return [_cast(g, x[0], node.dtype("DstT"))]


def _select(g: Graph, node: Node, x: list[str]) -> list[str]:
    condition = x[0]
    shapes = g.shape(condition), g.shape(x[1])
    if shapes[0] is not None and shapes[1] is not None and len(shapes[0]) == 1 < len(shapes[1]):
        # TF1 Select with a vector picks whole rows: give it trailing axes to broadcast.
        trailing = g.const(np.arange(1, len(shapes[1]), dtype=np.int64))
        condition = g.one("Unsqueeze", [condition, trailing])
    return [g.one("Where", [condition, x[1], x[2]])]


def _reduce(op: str) -> Op:
    def emit(g: Graph, node: Node, x: list[str]) -> list[str]:
        axes = g.const(g.value(x[1], "reduction axes").astype(np.int64).reshape(-1))
        return [g.one(op, [x[0], axes], keepdims=int(node.flag("keep_dims")))]

    return emit


def _arg_max(g: Graph, node: Node, x: list[str]) -> list[str]:
    index = g.one("ArgMax", [x[0]], axis=int(g.value(x[1], "dimension")), keepdims=0)
    return [_cast(g, index, node.dtype("output_type"))]


def _top_k(g: Graph, node: Node, x: list[str]) -> list[str]:
    k = g.const(g.value(x[1], "k").astype(np.int64).reshape(1))
    values, indices = g.add("TopK", [x[0], k], 2, axis=-1, largest=1, sorted=1)
    return [values, _cast(g, indices, "DT_INT32")]


def _gather_nd(g: Graph, node: Node, x: list[str]) -> list[str]:
    return [g.one("GatherND", [x[0], g.int64(x[1])])]


def _identity(g: Graph, node: Node, x: list[str]) -> list[str]:
    return [x[0]]


OPS: dict[str, Op] = {
    # layers
    "Conv2D": _conv2d,
    "_FusedConv2D": _conv2d,
    "DepthwiseConv2dNative": _depthwise,
    "FusedDepthwiseConv2dNative": _depthwise,
    "MaxPool": _max_pool,
    "ResizeBilinear": _resize_bilinear,
    # shape and layout
    "Pad": _pad,
    "PadV2": _pad,
    "Reshape": _reshape,
    "Transpose": _transpose,
    "ConcatV2": _concat,
    "SplitV": _split_v,
    "Split": _split,
    "Unpack": _unpack,
    "Pack": _pack,
    "Squeeze": _squeeze,
    "ExpandDims": _expand_dims,
    "Shape": _shape,
    "Size": _size,
    "StridedSlice": _strided_slice,
    "Tile": _tile,
    "Fill": _fill,
    "Range": _range,
    "SparseToDense": _sparse_to_dense,
    "Identity": _identity,
    "Cast": _cast_op,
    # element-wise
    "Add": _binary("Add"),
    "AddV2": _binary("Add"),
    "Sub": _binary("Sub"),
    "Mul": _binary("Mul"),
    "RealDiv": _binary("Div"),
    "FloorDiv": _floor_div,
    "Minimum": _binary("Min"),
    "Maximum": _binary("Max"),
    "SquaredDifference": _squared_difference,
    "AddN": lambda g, node, x: [g.one("Sum", x)],
    "Abs": _unary("Abs"),
    "Exp": _unary("Exp"),
    "Reciprocal": _unary("Reciprocal"),
    "Sigmoid": _unary("Sigmoid"),
    "Relu": _unary("Relu"),
    "Relu6": _relu6,
    "LeakyRelu": _leaky_relu,
    "Less": _binary("Less"),
    "Greater": _binary("Greater"),
    "GreaterEqual": _binary("GreaterOrEqual"),
    "Equal": _binary("Equal"),
    "LogicalAnd": _binary("And"),
    "Select": _select,
    "SelectV2": lambda g, node, x: [g.one("Where", x)],
    # reductions and indexing
    "Max": _reduce("ReduceMax"),
    "Sum": _reduce("ReduceSum"),
    "ArgMax": _arg_max,
    "TopKV2": _top_k,
    "GatherNd": _gather_nd,
}
