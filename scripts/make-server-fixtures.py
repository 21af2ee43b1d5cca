#!/usr/bin/env python3
"""Writes the tiny ONNX models used by Tests/BlindAIServerTests (onnx==1.23.2, no weights to download).

    python3 scripts/make-server-fixtures.py [output-dir]

Only simple operators are used (Add, Mul, Relu, Identity, MatMul), so the server tests do not depend
on operators written in parallel.
"""
import os
import sys

import onnx
from onnx import TensorProto, helper

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(__file__), "..", "Tests", "BlindAIServerTests", "Fixtures")
OPSET = [helper.make_opsetid("", 17)]


def save(model, name):
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = os.path.join(OUT, name)
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


def add_relu():
    """sum = a + b, relu = Relu(a + b); a, b: FP32 [batch, 3]."""
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, ["batch", 3])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, ["batch", 3])
    s = helper.make_tensor_value_info("sum", TensorProto.FLOAT, ["batch", 3])
    r = helper.make_tensor_value_info("relu", TensorProto.FLOAT, ["batch", 3])
    nodes = [helper.make_node("Add", ["a", "b"], ["sum"], name="add"),
             helper.make_node("Relu", ["sum"], ["relu"], name="relu")]
    save(helper.make_model(helper.make_graph(nodes, "add_relu", [a, b], [s, r]), opset_imports=OPSET), "add_relu.onnx")


def scale():
    """y = x * 2 with a constant initializer; x: FP32 [4]. A second model used for replacement tests."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    two = helper.make_tensor("two", TensorProto.FLOAT, [1], [2.0])
    nodes = [helper.make_node("Mul", ["x", "two"], ["y"], name="mul")]
    save(helper.make_model(helper.make_graph(nodes, "scale", [x], [y], initializer=[two]), opset_imports=OPSET), "scale.onnx")


TYPES = [
    ("bool", TensorProto.BOOL), ("uint8", TensorProto.UINT8), ("uint16", TensorProto.UINT16),
    ("uint32", TensorProto.UINT32), ("uint64", TensorProto.UINT64), ("int8", TensorProto.INT8),
    ("int16", TensorProto.INT16), ("int32", TensorProto.INT32), ("int64", TensorProto.INT64),
    ("fp16", TensorProto.FLOAT16), ("fp32", TensorProto.FLOAT), ("fp64", TensorProto.DOUBLE),
    ("bytes", TensorProto.STRING),
]


def all_types():
    """For each OIP datatype t: output y_t = Identity(x_t), with x_t of shape [n_t] (dynamic)."""
    inputs, outputs, nodes = [], [], []
    for name, t in TYPES:
        inputs.append(helper.make_tensor_value_info(f"x_{name}", t, [f"n_{name}"]))
        outputs.append(helper.make_tensor_value_info(f"y_{name}", t, [f"n_{name}"]))
        nodes.append(helper.make_node("Identity", [f"x_{name}"], [f"y_{name}"], name=f"id_{name}"))
    save(helper.make_model(helper.make_graph(nodes, "all_types", inputs, outputs), opset_imports=OPSET), "all_types.onnx")


def bf16():
    """y = Identity(x), x: BF16 [n] (kept out of all_types: Triton's Python client sends BF16 in binary only)."""
    x = helper.make_tensor_value_info("x", TensorProto.BFLOAT16, ["n"])
    y = helper.make_tensor_value_info("y", TensorProto.BFLOAT16, ["n"])
    nodes = [helper.make_node("Identity", ["x"], ["y"], name="id")]
    save(helper.make_model(helper.make_graph(nodes, "bf16", [x], [y]), opset_imports=OPSET), "bf16.onnx")


def slow(steps=400):
    """y = ((x * 1.0001) + 0.5) ... repeated: `steps` element-wise nodes on x: FP32 [n].

    Its run time grows with n, so tests choose it (timeouts, saturation, health under load)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n"])
    k = helper.make_tensor("k", TensorProto.FLOAT, [1], [1.0001])
    c = helper.make_tensor("c", TensorProto.FLOAT, [1], [0.5])
    nodes, prev = [], "x"
    for i in range(steps):
        out = "y" if i == steps - 1 else f"t{i}"
        op, const = ("Mul", "k") if i % 2 == 0 else ("Add", "c")
        nodes.append(helper.make_node(op, [prev, const], [out], name=f"n{i}"))
        prev = out
    save(helper.make_model(helper.make_graph(nodes, "slow", [x], [y], initializer=[k, c]), opset_imports=OPSET), "slow.onnx")


def heavy(steps=16):
    """y = x @ x @ ... @ x (`steps` MatMul nodes); x, y: FP32 [m, m].

    Its run time grows as m**3 for an input of 4 * m * m bytes, so tests that need a run of a few seconds (timeouts,
    saturation, a client leaving mid-run) get one from a small request on a debug and a release build alike; the
    engine checks for cancellation between its nodes."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["m", "m"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["m", "m"])
    nodes, prev = [], "x"
    for i in range(steps):
        out = "y" if i == steps - 1 else f"t{i}"
        nodes.append(helper.make_node("MatMul", [prev, "x"], [out], name=f"n{i}"))
        prev = out
    save(helper.make_model(helper.make_graph(nodes, "heavy", [x], [y]), opset_imports=OPSET), "heavy.onnx")


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    add_relu()
    scale()
    all_types()
    bf16()
    slow()
    heavy()
