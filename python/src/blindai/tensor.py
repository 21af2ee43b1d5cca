"""Tensors on the wire: the OIP v2 datatypes and the binary tensor extension (little-endian, row-major; a BYTES
element is a 4-byte little-endian length and its bytes). numpy is required; torch is optional."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from .errors import InvalidInput, ProtocolViolation

#: numpy dtype of every fixed-size datatype (BF16 has no numpy type: it travels as its 16-bit patterns).
NUMPY_OF = {
    "BOOL": np.dtype(np.bool_), "UINT8": np.dtype("<u1"), "UINT16": np.dtype("<u2"), "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"), "INT8": np.dtype("<i1"), "INT16": np.dtype("<i2"), "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"), "FP16": np.dtype("<f2"), "FP32": np.dtype("<f4"), "FP64": np.dtype("<f8"),
    "BF16": np.dtype("<u2"),
}
ELEMENT_SIZE = {k: v.itemsize for k, v in NUMPY_OF.items()}
DATATYPES = tuple(NUMPY_OF) + ("BYTES",)

_KIND_OF = {np.dtype(np.bool_): "BOOL", np.dtype(np.uint8): "UINT8", np.dtype(np.uint16): "UINT16",
            np.dtype(np.uint32): "UINT32", np.dtype(np.uint64): "UINT64", np.dtype(np.int8): "INT8",
            np.dtype(np.int16): "INT16", np.dtype(np.int32): "INT32", np.dtype(np.int64): "INT64",
            np.dtype(np.float16): "FP16", np.dtype(np.float32): "FP32", np.dtype(np.float64): "FP64"}


class BF16:
    """Marks a numpy array to be sent as BF16 (numpy has no bfloat16): float values are rounded to nearest even;
    a uint16/int16 array is taken as the raw bfloat16 bit patterns."""

    def __init__(self, array):
        a = np.asarray(array)
        if a.dtype in (np.uint16, np.int16):
            bits = a.astype("<u2", copy=False)
        else:
            f = np.ascontiguousarray(a, dtype="<f4")
            u = f.view("<u4").astype(np.uint64)
            rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
            nan = np.isnan(f)
            bits = np.where(nan, (u >> 16) | 0x40, rounded).astype("<u2")
        self.bits = np.ascontiguousarray(bits)


def bf16_to_float32(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << 16).view(np.float32)


def encode_bytes_elements(items) -> bytes:
    out = bytearray()
    for e in items:
        if isinstance(e, str):
            e = e.encode("utf-8")
        elif isinstance(e, np.bytes_):
            e = bytes(e)
        elif not isinstance(e, (bytes, bytearray, memoryview)):
            raise InvalidInput(f"a BYTES tensor holds bytes or str, not {type(e).__name__}")
        out += struct.pack("<I", len(e))
        out += e
    return bytes(out)


def decode_bytes_elements(data, count: int) -> list[bytes]:
    mv = memoryview(data)
    out = []
    i = 0
    while len(out) < count:
        if len(mv) - i < 4:
            raise ProtocolViolation(f"BYTES data ends inside the length of element {len(out)}")
        n = struct.unpack_from("<I", mv, i)[0]
        i += 4
        if len(mv) - i < n:
            raise ProtocolViolation(f"BYTES element {len(out)} declares {n} bytes but only {len(mv) - i} remain")
        out.append(bytes(mv[i:i + n]))
        i += n
    if i != len(mv):
        raise ProtocolViolation(f"BYTES data has {len(mv) - i} bytes after its {count} elements")
    return out


def to_wire(value: Any) -> tuple[str, list[int], Any]:
    """(datatype, shape, bytes-like) of a numpy array, a torch tensor, a `BF16`, or anything numpy.asarray takes."""
    if isinstance(value, BF16):
        return "BF16", list(value.bits.shape), memoryview(value.bits).cast("B")
    mod = type(value).__module__
    if mod.startswith("torch"):
        import torch
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu().contiguous()
            if t.dtype == torch.bfloat16:
                bits = t.view(torch.int16).numpy().view("<u2")
                return "BF16", list(t.shape), memoryview(np.ascontiguousarray(bits)).cast("B")
            if t.dtype.is_complex:
                raise InvalidInput(f"torch dtype {t.dtype} is not a BlindAI datatype")
            value = t.numpy()
    a = np.asarray(value)
    if a.dtype.name == "bfloat16":  # ml_dtypes / jax bfloat16
        return "BF16", list(a.shape), memoryview(np.ascontiguousarray(a).view("<u2")).cast("B")
    if a.dtype.kind in "OSU":
        flat = a.reshape(-1)
        items = [x.encode("utf-8") if isinstance(x, str) else x for x in flat.tolist()]
        return "BYTES", list(a.shape), encode_bytes_elements(items)
    dt = a.dtype.newbyteorder("=") if a.dtype.byteorder in "<>" else a.dtype
    kind = _KIND_OF.get(np.dtype(dt))
    if kind is None:
        raise InvalidInput(f"numpy dtype {a.dtype} is not a BlindAI datatype ({', '.join(DATATYPES)})")
    want = NUMPY_OF[kind]
    if a.dtype != want or not a.flags.c_contiguous:
        a = np.ascontiguousarray(a, dtype=want)
    if a.ndim == 0:
        return kind, [], a.tobytes()
    return kind, list(a.shape), memoryview(a).cast("B")


class Tensor:
    """An output tensor: `name`, `datatype`, `shape`, and conversions `as_numpy()`, `as_torch()`, `tolist()`."""

    def __init__(self, name: str, datatype: str, shape: list[int], data=None, json_data=None):
        self.name = name
        self.datatype = datatype
        self.shape = tuple(int(d) for d in shape)
        count = 1
        for d in self.shape:
            if d < 0:
                raise ProtocolViolation(f"output '{name}' has a negative dimension")
            count *= d
        self._count = count
        if datatype not in DATATYPES:
            raise ProtocolViolation(f"output '{name}' has unknown datatype {datatype}")
        if data is not None:
            if datatype == "BYTES":
                self._items = decode_bytes_elements(data, count)
                self._array = None
            else:
                need = count * ELEMENT_SIZE[datatype]
                if len(data) != need:
                    raise ProtocolViolation(f"output '{name}': a {datatype} tensor of shape {list(self.shape)} needs {need} bytes, got {len(data)}")
                self._array = np.frombuffer(data, dtype=NUMPY_OF[datatype]).reshape(self.shape)
        elif json_data is not None:
            flat = _flatten(json_data)
            if len(flat) != count:
                raise ProtocolViolation(f"output '{name}' has {len(flat)} values for shape {list(self.shape)}")
            if datatype == "BYTES":
                self._items = [x.encode("utf-8") if isinstance(x, str) else bytes(x) for x in flat]
                self._array = None
            elif datatype == "BF16":
                self._array = BF16(np.array(flat, dtype=np.float32)).bits.reshape(self.shape)
            else:
                self._array = np.array(flat, dtype=NUMPY_OF[datatype]).reshape(self.shape)
        else:
            raise ProtocolViolation(f"output '{name}' has no data")

    def as_numpy(self) -> np.ndarray:
        """A numpy array (read-only view of the response for fixed-size types). BF16 becomes float32 (exact);
        BYTES becomes an object array of `bytes`."""
        if self.datatype == "BYTES":
            a = np.empty(self._count, dtype=object)
            a[:] = self._items
            return a.reshape(self.shape)
        if self.datatype == "BF16":
            return bf16_to_float32(self._array)
        return self._array

    def as_torch(self):
        """A torch tensor (a copy), BF16 as torch.bfloat16. BYTES tensors have no torch form."""
        import torch
        if self.datatype == "BYTES":
            raise InvalidInput("a BYTES tensor has no torch form; use as_numpy()")
        if self.datatype == "BF16":
            return torch.from_numpy(self._array.astype(np.int16, copy=True).view(np.int16)).view(torch.bfloat16)
        return torch.from_numpy(np.array(self._array, copy=True))

    @property
    def raw(self) -> bytes:
        """The tensor in its binary wire form."""
        if self.datatype == "BYTES":
            return encode_bytes_elements(self._items)
        return self._array.tobytes()

    def tolist(self):
        return self.as_numpy().tolist()

    def __repr__(self) -> str:
        return f"Tensor(name={self.name!r}, datatype={self.datatype}, shape={list(self.shape)})"


def _flatten(x) -> list:
    if isinstance(x, list):
        out = []
        for e in x:
            out.extend(_flatten(e) if isinstance(e, list) else [e])
        return out
    return [x]
