"""An ONNX graph under construction, for converters: nodes, the constants known so far (which
the converter folds through), and static shapes from ONNX shape inference when an op needs one."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

OPSET = 18  # Split's `num_outputs` needs 18
# Constants up to this many elements are given to shape inference as values (shapes, axes, sizes).
SMALL_CONSTANT = 64


class ConversionError(ValueError):
    """The graph uses something this converter does not translate."""


class Graph:
    """ONNX nodes under construction, the constants known so far, and static shapes on demand."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.consts: dict[str, NDArray[Any]] = {}
        self._ids = itertools.count()
        self._shapes: dict[str, tuple[int, ...] | None] = {}

    def const(self, array: NDArray[Any] | np.generic | float | int) -> str:
        name = f"const{next(self._ids)}"
        self.consts[name] = np.asarray(array)
        return name

    def is_const(self, name: str) -> bool:
        return name in self.consts

    def value(self, name: str, what: str = "input") -> NDArray[Any]:
        """A tensor's value at conversion time; an error when it is only known at run time."""
        if name not in self.consts:
            raise ConversionError(f"{what} {name!r} must be a constant")
        return self.consts[name]

    def add(self, op: str, inputs: Sequence[str], outputs: int = 1, **attrs: Any) -> list[str]:
        """Append one ONNX node; returns its output names."""
        names = [f"{op.lower()}{next(self._ids)}" for _ in range(outputs)]
        self.nodes.append(helper.make_node(op, list(inputs), names, name=names[0], **attrs))
        return names

    def one(self, op: str, inputs: Sequence[str], **attrs: Any) -> str:
        return self.add(op, inputs, 1, **attrs)[0]

    def int64(self, name: str) -> str:
        """`name` as int64, the type ONNX wants for shapes, indices and axes."""
        if self.is_const(name):
            return self.const(self.consts[name].astype(np.int64))
        return self.one("Cast", [name], to=TensorProto.INT64)

    def cast(self, name: str, elem_type: int) -> str:
        return self.one("Cast", [name], to=elem_type)

    def shape(self, name: str) -> tuple[int, ...] | None:
        """The static shape of a tensor, from ONNX shape inference; None if any dimension is unknown."""
        if name in self.consts:
            return tuple(self.consts[name].shape)
        if name not in self._shapes:
            self._shapes.update(self._infer_shapes())
        return self._shapes.get(name)

    def _infer_shapes(self) -> dict[str, tuple[int, ...] | None]:
        used = {i for node in self.nodes for i in node.input} & self.consts.keys()
        small = [numpy_helper.from_array(self.consts[n], n) for n in used if self.consts[n].size <= SMALL_CONSTANT]
        big = [_value_info(n, self.consts[n]) for n in used if self.consts[n].size > SMALL_CONSTANT]
        graph = helper.make_graph(self.nodes, "partial", [*self.inputs, *big], [], small)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True).graph
        shapes: dict[str, tuple[int, ...] | None] = {}
        for info in [*inferred.value_info, *inferred.input]:
            dims = info.type.tensor_type.shape.dim
            known = all(d.HasField("dim_value") for d in dims) and info.type.tensor_type.HasField("shape")
            shapes[info.name] = tuple(d.dim_value for d in dims) if known else None
        return shapes


def _value_info(name: str, array: NDArray[Any]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(array.dtype), array.shape)
