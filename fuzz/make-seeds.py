#!/usr/bin/env python3
"""Writes the committed seed corpora of the fuzz targets (fuzz/corpus/TARGET/) from real files.

    python3 fuzz/make-seeds.py [NODE_TESTS_DIR]

Attestation targets: the committed vectors (Tests/BlindAIAttestationTests/Vectors), and evidence bundles made
from them (each report or quote with its certificates and collateral, as the server's attestation endpoint
sends them). onnx-model: the small models of the server and engine test fixtures, plus, when NODE_TESTS_DIR
is given (the output of scripts/generate-node-tests.py, onnx 1.23.2), the smallest model of each operator
among the node tests listed in conformance/node.txt. oip-request: requests as clients send them (JSON and the
binary tensor extension) to the server test fixtures. npy: files written by numpy.

Needs numpy (and onnx only through NODE_TESTS_DIR's files). Rewrites the corpus folders it fills.
"""
import base64
import glob
import hashlib
import json
import os
import re
import shutil
import struct
import sys

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
VECTORS = os.path.join(ROOT, "Tests", "BlindAIAttestationTests", "Vectors")
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def target_dir(name):
    d = os.path.join(CORPUS, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def write(d, name, data):
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def read(path):
    with open(os.path.join(VECTORS, path), "rb") as f:
        return f.read()


def pem_blocks(data):
    return [base64.b64decode(b"".join(m.split()))
            for m in re.findall(rb"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", data, re.S)]


def der_of(path):
    data = read(path)
    return pem_blocks(data)[0] if path.endswith(".pem") else data


# SEV-SNP cases (as in SNPVectorTests): report, VCEK/VLEK, ASK+ARK chain, a time at which they are valid.
SNP = [
    ("sev-snp/milan/gosev_attestation.bin", "sev-snp/milan/gosev_vcek.der", "sev-snp/roots/milan/ask_ark_milan_vcek.pem", "2022-09-24T01:00:00Z"),
    ("sev-snp/milan/virtee_report_milan.bin", "sev-snp/milan/virtee_vcek_milan.der", "sev-snp/roots/milan/ask_ark_milan_vcek.pem", "2024-01-01T00:00:00Z"),
    ("sev-snp/milan/trustee_aws_vlek_report.bin", "sev-snp/milan/trustee_aws_vlek.der", "sev-snp/roots/milan/ask_ark_milan_vlek.pem", "2025-06-01T00:00:00Z"),
    ("sev-snp/genoa/azure_genoa_report.bin", "sev-snp/genoa/azure_genoa_vcek.pem", "sev-snp/roots/genoa/ask_ark_genoa_vcek.pem", "2025-06-01T00:00:00Z"),
    ("sev-snp/genoa/attrs_genoa_v5_report.bin", "sev-snp/genoa/attrs_genoa_v5_vcek.der", "sev-snp/roots/genoa/ask_ark_genoa_vcek.pem", "2026-07-01T00:00:00Z"),
    ("sev-snp/turin/anolis_turin_report.bin", "sev-snp/turin/anolis_turin_vcek.der", "sev-snp/roots/turin/ask_ark_turin_vcek.pem", "2026-07-01T00:00:00Z"),
]
# TDX cases (as in TDXVectorTests): quote, collateral directory, a time at which they are valid.
TDX = [
    ("tdx/go-tdx-guest/tdx_prod_quote_SPR_E4.dat", "tdx/go-tdx-guest/collateral", "2023-07-01T01:00:00Z"),
    ("tdx/dcap-qvl/tdx_quote_v4_b0c06f.dat", "tdx/dcap-qvl/collateral_v4_b0c06f", "2025-07-01T00:00:00Z"),
    ("tdx/dcap-qvl/tdx_quote_v5_90c06f_outdated.dat", "tdx/dcap-qvl/collateral_v5_90c06f_outdated", "2026-03-01T00:00:00Z"),
    ("tdx/go-tdx-guest/quote_v5_sample.dat", "tdx/dcap-qvl/collateral_v5_90c06f_outdated", "2026-03-01T00:00:00Z"),
    ("tdx/trustee/tdx_quote_4_debug_td.dat", None, "2025-11-01T00:00:00Z"),
]


def b64(data):
    return base64.b64encode(data).decode()


def bundle(tee, report, certificates, collateral, time):
    claims = json.dumps({"attributes": {}, "issuedAt": time, "tee": tee, "version": 1}, separators=(",", ":"), sort_keys=True)
    doc = {"format": "blindai-evidence/1", "tee": tee, "report": b64(report), "certificates": [b64(c) for c in certificates],
           "collateral": {k: b64(v) for k, v in sorted(collateral.items())}, "claims": b64(claims.encode())}
    return json.dumps(doc, indent=1, sort_keys=True).encode()


def attestation():
    d = target_dir("snp-report")
    for path in sorted(glob.glob(os.path.join(VECTORS, "sev-snp", "*", "*.bin"))):
        shutil.copy(path, d)

    d = target_dir("tdx-quote")
    for path in sorted(glob.glob(os.path.join(VECTORS, "tdx", "*", "*.dat"))):
        shutil.copy(path, os.path.join(d, os.path.basename(os.path.dirname(path)) + "_" + os.path.basename(path)))

    d = target_dir("der-certificate")
    seen = set()
    paths = sorted(glob.glob(os.path.join(VECTORS, "**", "*.der"), recursive=True)) + sorted(glob.glob(os.path.join(VECTORS, "**", "*.pem"), recursive=True))
    for path in paths:
        data = open(path, "rb").read()
        if "crl" in os.path.basename(path) and path.endswith(".der"):
            continue
        ders = [data] if path.endswith(".der") else pem_blocks(data)
        for i, der in enumerate(ders):
            h = hashlib.sha256(der).hexdigest()
            if h in seen:
                continue
            seen.add(h)
            stem = os.path.splitext(os.path.basename(path))[0]
            write(d, f"{stem}_{i}.der", der)
        if path.endswith(".pem") and len(ders) == 1:
            write(d, os.path.basename(path), data)  # the PEM text path too
    # The PCK leaf certificates carried inside the quotes.
    for quote, _, _ in TDX:
        for i, der in enumerate(pem_blocks(read(quote))[:1]):
            h = hashlib.sha256(der).hexdigest()
            if h not in seen:
                seen.add(h)
                write(d, "pck_leaf_" + os.path.splitext(os.path.basename(quote))[0] + ".der", der)

    d = target_dir("crl")
    seen = set()
    for path in sorted(glob.glob(os.path.join(VECTORS, "tdx", "**", "*crl*.der"), recursive=True)):
        data = open(path, "rb").read()
        h = hashlib.sha256(data).hexdigest()
        if h not in seen:
            seen.add(h)
            write(d, os.path.relpath(path, os.path.join(VECTORS, "tdx")).replace("/", "_"), data)

    d = target_dir("tdx-collateral")
    seen = set()
    for pattern in ("tcbInfo_*.json", "qeIdentity.json", "*_collateral.json"):
        for path in sorted(glob.glob(os.path.join(VECTORS, "tdx", "**", pattern), recursive=True)):
            data = open(path, "rb").read()
            h = hashlib.sha256(data).hexdigest()
            if h not in seen:
                seen.add(h)
                write(d, os.path.relpath(path, os.path.join(VECTORS, "tdx")).replace("/", "_"), data)

    d = target_dir("evidence-bundle")
    for report, vek, chain, time in SNP:
        certs = [der_of(vek)] + pem_blocks(read(chain))
        write(d, "snp_" + os.path.splitext(os.path.basename(report))[0] + ".json", bundle("sev-snp", read(report), certs, {}, time))
    for quote, coll, time in TDX:
        files = {}
        if coll:
            for path in sorted(glob.glob(os.path.join(VECTORS, coll, "*"))):
                files[os.path.basename(path)] = open(path, "rb").read()
        write(d, "tdx_" + os.path.splitext(os.path.basename(quote))[0] + ".json", bundle("tdx", read(quote), [], files, time))


def onnx_models(node_dir):
    d = target_dir("onnx-model")
    fixtures = sorted(glob.glob(os.path.join(ROOT, "Tests", "BlindAIServerTests", "Fixtures", "*.onnx")))
    fixtures += sorted(glob.glob(os.path.join(ROOT, "Tests", "BlindAIEngineTests", "Fixtures", "parity", "*", "model.onnx")))
    for path in fixtures:
        if os.path.getsize(path) > 128 * 1024:
            continue
        name = os.path.basename(os.path.dirname(path)) if path.endswith("model.onnx") else os.path.splitext(os.path.basename(path))[0]
        shutil.copy(path, os.path.join(d, name + ".onnx"))
    if not node_dir:
        return
    import onnx
    passing = [l.strip() for l in open(os.path.join(ROOT, "conformance", "node.txt")) if l.strip() and not l.startswith("#")]
    smallest = {}
    for test in passing:
        path = os.path.join(node_dir, test, "model.onnx")
        if not os.path.exists(path) or os.path.getsize(path) > 4096:
            continue
        model = onnx.load(path)
        ops = tuple(sorted({n.op_type for n in model.graph.node}))
        size = os.path.getsize(path)
        if ops not in smallest or size < smallest[ops][0]:
            smallest[ops] = (size, test, path)
    for size, test, path in sorted(smallest.values(), key=lambda v: v[1]):
        shutil.copy(path, os.path.join(d, test + ".onnx"))


def oip_requests():
    d = target_dir("oip-request")

    def json_request(name, model, inputs, outputs=None, parameters=None, id=None):
        body = {"inputs": inputs}
        if id is not None:
            body["id"] = id
        if parameters is not None:
            body["parameters"] = parameters
        if outputs is not None:
            body["outputs"] = outputs
        write(d, name, f"{model}\n".encode() + json.dumps(body).encode())

    def binary_request(name, model, tensors, outputs=None, parameters=None):
        # tensors: (name, datatype, shape, raw bytes or None for JSON data list)
        inputs, parts = [], []
        for tname, datatype, shape, raw, data in tensors:
            t = {"name": tname, "datatype": datatype, "shape": shape}
            if raw is not None:
                t["parameters"] = {"binary_data_size": len(raw)}
                parts.append(raw)
            else:
                t["data"] = data
            inputs.append(t)
        body = {"inputs": inputs}
        if outputs is not None:
            body["outputs"] = outputs
        if parameters is not None:
            body["parameters"] = parameters
        header = json.dumps(body).encode()
        write(d, name, f"{model} {len(header)}\n".encode() + header + b"".join(parts))

    def bytes_elements(items):
        return b"".join(struct.pack("<I", len(x)) + x for x in items)

    json_request("add_relu.json", "add_relu", [
        {"name": "a", "shape": [2, 3], "datatype": "FP32", "data": [1, 2, 3, 4, 5, 6]},
        {"name": "b", "shape": [2, 3], "datatype": "FP32", "data": [[-1, -2, -3], [0.5, 0.25, -7]]}], id="req-1")
    json_request("add_relu_outputs.json", "add_relu", [
        {"name": "a", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]},
        {"name": "b", "shape": [1, 3], "datatype": "FP32", "data": ["NaN", "inf", "-inf"]}],
        outputs=[{"name": "relu", "parameters": {"binary_data": True}}, {"name": "sum"}])
    json_request("scale.json", "scale", [{"name": "x", "shape": [4], "datatype": "FP32", "data": [1.5, -2, 3e38, 0]}],
                 parameters={"binary_data_output": True})
    values = {
        "bool": [True, False, True], "uint8": [0, 7, 255], "uint16": [0, 65535, 3], "uint32": [1, 2, 4294967295],
        "uint64": [0, 18446744073709551615, 5], "int8": [-128, 0, 127], "int16": [-32768, 1, 32767],
        "int32": [-2147483648, 0, 2147483647], "int64": [-9223372036854775808, 0, 9223372036854775807],
        "fp16": [0.5, -1, 65504], "fp32": [1.25, -3.5, 0], "fp64": [1e300, -2.5, 0], "bytes": ["a", "", "héllo"],
    }
    oip = {"bool": "BOOL", "uint8": "UINT8", "uint16": "UINT16", "uint32": "UINT32", "uint64": "UINT64", "int8": "INT8",
           "int16": "INT16", "int32": "INT32", "int64": "INT64", "fp16": "FP16", "fp32": "FP32", "fp64": "FP64", "bytes": "BYTES"}
    json_request("all_types.json", "all_types",
                 [{"name": f"x_{k}", "shape": [len(v)], "datatype": oip[k], "data": v} for k, v in values.items()])
    np_types = {"bool": np.bool_, "uint8": np.uint8, "uint16": np.uint16, "uint32": np.uint32, "uint64": np.uint64, "int8": np.int8,
                "int16": np.int16, "int32": np.int32, "int64": np.int64, "fp16": np.float16, "fp32": np.float32, "fp64": np.float64}
    tensors = []
    for k, v in values.items():
        raw = bytes_elements([s.encode() for s in v]) if k == "bytes" else np.array(v, dtype=np_types[k]).astype("<" + np.dtype(np_types[k]).str[1:]).tobytes()
        tensors.append((f"x_{k}", oip[k], [len(v)], raw, None))
    binary_request("all_types.bin", "all_types", tensors, parameters={"binary_data_output": True})
    binary_request("all_types_mixed.bin", "all_types",
                   [t if i % 2 == 0 else (t[0], t[1], t[2], None, values[t[0][2:]]) for i, t in enumerate(tensors)],
                   outputs=[{"name": "y_bytes", "parameters": {"binary_data": True}}, {"name": "y_fp16"}, {"name": "y_int64", "parameters": {"binary_data": True}}])
    bf = np.array([1.0, -2.0, 3.5], dtype=np.float32).view(np.uint32) >> 16
    binary_request("bf16.bin", "bf16", [("x", "BF16", [3], bf.astype("<u2").tobytes(), None)], parameters={"binary_data_output": True})
    json_request("bf16.json", "bf16", [{"name": "x", "shape": [2], "datatype": "BF16", "data": [1.0, -0.5]}])
    a = np.arange(6, dtype="<f4").reshape(2, 3)
    binary_request("add_relu.bin", "add_relu", [("a", "FP32", [2, 3], a.tobytes(), None), ("b", "FP32", [2, 3], (-a).tobytes(), None)],
                   outputs=[{"name": "sum", "parameters": {"binary_data": True}}])
    binary_request("empty.bin", "all_types", [(f"x_{k}", oip[k], [0], b"", None) for k in values])


def npy_files():
    d = target_dir("npy")
    from numpy.lib import format as npf

    def save(name, array, version=None):
        path = os.path.join(d, name)
        with open(path, "wb") as f:
            if version is None:
                np.save(f, array)
            else:
                npf.write_array(f, array, version=version)

    save("f4_2x3.npy", np.arange(6, dtype=np.float32).reshape(2, 3))
    save("f8_scalar.npy", np.array(3.25))
    save("f2_4.npy", np.array([0.5, -1, 65504, np.inf], dtype=np.float16))
    save("i1.npy", np.array([-128, 0, 127], dtype=np.int8))
    save("u1.npy", np.array([0, 255], dtype=np.uint8))
    save("i2_2x2.npy", np.array([[1, -2], [3, -4]], dtype=np.int16))
    save("u2.npy", np.array([65535], dtype=np.uint16))
    save("i4.npy", np.array([2147483647, -1], dtype=np.int32))
    save("u4.npy", np.array([4294967295], dtype=np.uint32))
    save("i8_1x1x2.npy", np.array([[[-9223372036854775808, 9223372036854775807]]], dtype=np.int64))
    save("u8.npy", np.array([18446744073709551615], dtype=np.uint64))
    save("b1.npy", np.array([True, False, True]))
    save("empty_0x3.npy", np.zeros((0, 3), dtype=np.float32))
    save("fortran.npy", np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)))
    save("big_endian.npy", np.arange(3, dtype=">i4"))
    save("v2_f4.npy", np.arange(4, dtype=np.float32), version=(2, 0))
    save("v3_i8.npy", np.arange(2, dtype=np.int64), version=(3, 0))


if __name__ == "__main__":
    attestation()
    onnx_models(sys.argv[1] if len(sys.argv) > 1 else None)
    oip_requests()
    npy_files()
    for name in sorted(os.listdir(CORPUS)):
        files = os.listdir(os.path.join(CORPUS, name))
        size = sum(os.path.getsize(os.path.join(CORPUS, name, f)) for f in files)
        print(f"{name}: {len(files)} files, {size} bytes")
