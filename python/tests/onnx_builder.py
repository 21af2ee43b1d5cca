"""Minimal ONNX model writer (protobuf by hand; the onnx package is not a dependency): Identity models of each
datatype, and models carrying a large initializer written to disk in a streaming fashion."""

from __future__ import annotations

import struct

ELEM = {"FP32": 1, "UINT8": 2, "INT8": 3, "UINT16": 4, "INT16": 5, "INT32": 6, "INT64": 7, "BYTES": 8, "BOOL": 9,
        "FP16": 10, "FP64": 11, "UINT32": 12, "UINT64": 13, "BF16": 16}


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(field: int, wire: int) -> bytes:
    return varint(field << 3 | wire)


def ld(field: int, payload: bytes) -> bytes:
    return key(field, 2) + varint(len(payload)) + payload


def vi(field: int, n: int) -> bytes:
    return key(field, 0) + varint(n)


def s(field: int, text: str) -> bytes:
    return ld(field, text.encode())


def value_info(name: str, elem: int, dims: list) -> bytes:
    shape = b"".join(ld(1, s(2, d) if isinstance(d, str) else vi(1, d)) for d in dims)
    tensor_type = vi(1, elem) + ld(2, shape)
    return s(1, name) + ld(2, ld(1, tensor_type))


def node(op: str, inputs: list, outputs: list, name: str = "") -> bytes:
    return b"".join(s(1, i) for i in inputs) + b"".join(s(2, o) for o in outputs) + s(3, name or op) + s(4, op)


def model(graph: bytes, opset: int = 17) -> bytes:
    return vi(1, 8) + s(2, "blindai-tests") + ld(7, graph) + ld(8, s(1, "") + vi(2, opset))


def identity_model(datatype: str) -> bytes:
    e = ELEM[datatype]
    g = (ld(1, node("Identity", ["x"], ["y"])) + s(2, f"identity_{datatype.lower()}")
         + ld(11, value_info("x", e, ["N"])) + ld(12, value_info("y", e, ["N"])))
    return model(g)


def add_model() -> bytes:
    """y = a + b, float32 [N]: a model with two inputs."""
    g = (ld(1, node("Add", ["a", "b"], ["y"])) + s(2, "add")
         + ld(11, value_info("a", 1, ["N"])) + ld(11, value_info("b", 1, ["N"])) + ld(12, value_info("y", 1, ["N"])))
    return model(g)


def write_large_model(path: str, payload_bytes: int) -> None:
    """y = x + w[0] (x float32 [1]), with an initializer `w` of payload_bytes/4 floats: a model of about
    payload_bytes bytes, written without holding it in memory."""
    n = payload_bytes // 4
    tensor_head = vi(1, n) + vi(2, 1) + s(8, "w")
    raw_len = n * 4
    tensor_len = len(tensor_head) + len(key(9, 2)) + len(varint(raw_len)) + raw_len
    # Gather(w, idx=[0]) -> first element, then Add with x.
    idx = vi(1, 1) + vi(2, 7) + s(8, "idx") + ld(9, struct.pack("<q", 0))
    rest = (ld(1, node("Gather", ["w", "idx"], ["w0"])) + ld(1, node("Add", ["x", "w0"], ["y"])) + s(2, "large")
            + ld(5, idx) + ld(11, value_info("x", 1, [1])) + ld(12, value_info("y", 1, [1])))
    init_field = key(5, 2) + varint(tensor_len)
    graph_len = len(rest) + len(init_field) + tensor_len
    head = vi(1, 8) + s(2, "blindai-tests") + key(7, 2) + varint(graph_len)
    tail = ld(8, s(1, "") + vi(2, 17))
    chunk = struct.pack("<f", 0.5) * (1 << 18)  # 1 MiB of 0.5f
    with open(path, "wb") as f:
        f.write(head + rest + init_field + tensor_head + key(9, 2) + varint(raw_len))
        left = raw_len
        while left:
            w = min(left, len(chunk))
            f.write(chunk[:w])
            left -= w
        f.write(tail)
