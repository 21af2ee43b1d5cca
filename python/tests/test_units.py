"""Unit tests that need no server: tensor wire forms, address parsing, policy loading, model names."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

import blindai
from blindai import tensor
from blindai.attestation.policy import Policy
from blindai.client import model_name_for_file, parse_address, validate_model_name
from blindai.errors import AttestationError, InvalidInput, ProtocolViolation


def test_wire_forms_of_numpy_arrays():
    a = np.arange(6, dtype=">i4").reshape(2, 3)  # big-endian input is converted
    dt, shape, data = tensor.to_wire(a)
    assert (dt, shape) == ("INT32", [2, 3]) and bytes(data) == np.arange(6, dtype="<i4").tobytes()
    dt, shape, data = tensor.to_wire(np.asfortranarray(np.ones((2, 3), np.float16)))
    assert (dt, shape, len(bytes(data))) == ("FP16", [2, 3], 12)
    dt, shape, data = tensor.to_wire(np.array(["ab", "\u00e9"]))
    assert dt == "BYTES" and bytes(data) == struct.pack("<I", 2) + b"ab" + struct.pack("<I", 2) + "\u00e9".encode()
    dt, shape, data = tensor.to_wire(np.float64(2.5))
    assert (dt, shape, bytes(data)) == ("FP64", [], struct.pack("<d", 2.5))
    with pytest.raises(InvalidInput):
        tensor.to_wire(np.zeros(2, np.complex64))


def test_bf16_rounding_and_back():
    x = np.array([1.0, -2.5, 3.140625, 1.00390625, 65504.0, np.inf], dtype=np.float32)
    bits = blindai.BF16(x).bits
    assert bits.dtype == np.dtype("<u2")
    back = tensor.bf16_to_float32(bits)
    assert back[0] == 1.0 and back[1] == -2.5 and back[2] == 3.140625 and np.isinf(back[5])
    assert back[3] == 1.0  # 1 + 2^-8 rounds to even (1.0)
    t = blindai.Tensor("y", "BF16", [6], data=bits.tobytes())
    assert np.array_equal(t.as_numpy(), back)


def test_output_tensor_checks_sizes_and_bytes():
    with pytest.raises(ProtocolViolation):
        blindai.Tensor("y", "FP32", [3], data=b"\x00" * 8)
    raw = tensor.encode_bytes_elements([b"a", b"", "xyz"])
    t = blindai.Tensor("s", "BYTES", [3], data=raw)
    assert list(t.as_numpy()) == [b"a", b"", b"xyz"] and t.raw == raw
    with pytest.raises(ProtocolViolation):
        blindai.Tensor("s", "BYTES", [4], data=raw)
    with pytest.raises(ProtocolViolation):
        blindai.Tensor("s", "BYTES", [2], data=raw)
    j = blindai.Tensor("j", "INT64", [2, 2], json_data=[1, 2, 3, 4])
    assert j.as_numpy().tolist() == [[1, 2], [3, 4]]


def test_addresses_and_names():
    assert parse_address("localhost") == ("localhost", 8000)
    assert parse_address("https://10.0.0.1:9000/") == ("10.0.0.1", 9000)
    assert parse_address("[::1]:8443") == ("::1", 8443)
    for bad in ("http://x:1", "x:0", "x:70000", "[::1", ""):
        with pytest.raises(InvalidInput):
            parse_address(bad)
    validate_model_name("resnet18.v2_a-b")
    for bad in (".hidden", "-x", "a/b", "", "x" * 129):
        with pytest.raises(InvalidInput):
            validate_model_name(bad)
    assert model_name_for_file("/tmp/My Model.onnx") == "My_Model"


def test_policy_loading_defaults_and_errors(tmp_path):
    p = Policy.load({"snp": {"measurements": ["AB" * 48]}, "tdx": {"anyMeasurement": True}})
    assert p.snp.measurements == ["ab" * 48] and p.tdx.allowed_tcb_statuses == ["UpToDate"]
    assert not p.allow_simulated and not p.allow_debug
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"version": 1, "allowSimulated": True, "simulatedRootKeys": ["ab" * 32], "snp": {"anyMeasurement": True, "minimumTCB": {"bootloader": 3}}}))
    q = Policy.load(str(f))
    assert q.allow_simulated and q.snp.minimum_tcb.bootloader == 3 and q.tdx is None
    for bad in ({"snp": {}}, {"allowSimulated": True, "snp": {"anyMeasurement": True}}, {"snp": {"measurementz": []}}, {"tdx": {"allowedTCBStatuses": ["Fine"]}}, {"allowDebug": 1},
                {"snp": {"maximumVMPL": -1}}, {"maxEvidenceAgeSeconds": -5}):
        with pytest.raises(AttestationError) as e:
            Policy.load(bad)
        assert e.value.code == "malformed_policy"
    with pytest.raises(AttestationError) as e:
        Policy.load(str(tmp_path / "missing.json"))
    assert e.value.code == "malformed_policy"


def test_error_codes_are_the_swift_ones():
    with pytest.raises(ValueError):
        AttestationError("noSuchCode", "x")
    e = AttestationError("tls_key_mismatch", "relayed")
    assert str(e) == "tls_key_mismatch: relayed" and isinstance(e, blindai.BlindAIError)


def test_pinned_roots_are_the_swift_packages():
    """The Python package ships its own copy of the pinned vendor certificates (it must install without the Swift
    sources); they must stay byte-identical to Sources/BlindAIAttestation/PinnedRoots.swift."""
    import re

    from blindai import _der
    from blindai.attestation import _roots
    from conftest import REPO
    swift = (REPO / "Sources" / "BlindAIAttestation" / "PinnedRoots.swift").read_text()
    swift_pems = {m.group(1): _der.pem_decode_all(m.group(2)) for m in re.finditer(r'static let (\w+) = """\n(.*?)"""', swift, re.S)}
    python_pems = {k: _der.pem_decode_all(v) for k, v in vars(_roots).items() if k.isupper()}
    assert len(swift_pems) == len(python_pems) == 12
    assert sorted(map(tuple, swift_pems.values())) == sorted(map(tuple, python_pems.values()))
