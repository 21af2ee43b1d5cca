#!/usr/bin/env python3
"""Checks `blindai serve` with NVIDIA's Triton HTTP client (pip install "tritonclient[http]"); loopback only.

    scripts/triton-client-check.py --url 127.0.0.1:8000 [--api-key SECRET] [--insecure-http]

Loads a fixture with load_model(files=...), reads metadata, runs JSON and binary inferences with every
datatype of the all_types fixture, and unloads. Prints 'N passed, N failed'.
"""
import argparse
import ipaddress
import os
import sys

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import np_to_triton_dtype

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "Tests", "BlindAIServerTests", "Fixtures")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="127.0.0.1:8000")
    ap.add_argument("--api-key")
    ap.add_argument("--insecure-http", action="store_true")
    a = ap.parse_args()
    host = a.url.rsplit(":", 1)[0].strip("[]")
    if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
        sys.exit("loopback addresses only")
    if a.insecure_http:
        client = httpclient.InferenceServerClient(url=a.url)
    else:
        import gevent.ssl
        client = httpclient.InferenceServerClient(url=a.url, ssl=True, insecure=True,
                                                  ssl_context_factory=gevent.ssl._create_unverified_context)
    headers = {"Authorization": f"Bearer {a.api_key}"} if a.api_key else None
    passed = failed = 0

    def check(name, cond):
        nonlocal passed, failed
        print(("ok   " if cond else "FAIL ") + name)
        passed, failed = passed + bool(cond), failed + (not cond)

    check("server live", client.is_server_live())
    check("server ready", client.is_server_ready())
    meta = client.get_server_metadata()
    check("server metadata", meta["name"] == "blindai" and "binary_tensor_data" in meta["extensions"])

    with open(os.path.join(FIXTURES, "all_types.onnx"), "rb") as f:
        client.load_model("types", headers=headers, files={"file:1/model.onnx": f.read()})
    check("load_model with files", client.is_model_ready("types", headers=headers))
    check("repository index", any(m["name"] == "types" for m in client.get_model_repository_index(headers=headers)))
    md = client.get_model_metadata("types", headers=headers)
    check("model metadata", len(md["inputs"]) == 13 and md["inputs"][0]["shape"] == [-1])

    arrays = {
        "bool": np.array([True, False, True]), "uint8": np.array([0, 7, 255], np.uint8),
        "uint16": np.array([1, 65535], np.uint16), "uint32": np.array([1, 2**32 - 1], np.uint32),
        "uint64": np.array([1, 2**64 - 1], np.uint64), "int8": np.array([-128, 127], np.int8),
        "int16": np.array([-5, 5], np.int16), "int32": np.array([-2**31, 2**31 - 1], np.int32),
        "int64": np.array([-2**63, 2**63 - 1], np.int64), "fp16": np.array([0.5, -2], np.float16),
        "fp32": np.array([1.25, -3, 1e-3], np.float32), "fp64": np.array([1e300, -0.125]),
        "bytes": np.array([b"hello", b""], dtype=np.object_),
    }
    for binary in (False, True):
        inputs, outputs = [], []
        for k, v in arrays.items():
            i = httpclient.InferInput(f"x_{k}", list(v.shape), "BYTES" if k == "bytes" else np_to_triton_dtype(v.dtype))
            i.set_data_from_numpy(v, binary_data=binary)
            inputs.append(i)
            outputs.append(httpclient.InferRequestedOutput(f"y_{k}", binary_data=binary))
        r = client.infer("types", inputs, outputs=outputs, request_id="triton-check", headers=headers)
        ok = r.get_response()["id"] == "triton-check"
        for k, v in arrays.items():
            got = r.as_numpy(f"y_{k}")
            same = got is not None and got.shape == v.shape and (
                [x.encode() if isinstance(x, str) else x for x in got] == list(v) if k == "bytes" else np.array_equal(got.astype(v.dtype), v))
            if not same:
                print(f"     y_{k}: sent {v!r}, got {got!r}")
            ok = ok and same
        check(f"infer every datatype ({'binary' if binary else 'JSON'})", ok)

    client.unload_model("types", headers=headers)
    check("unload_model", not client.is_model_ready("types", headers=headers) if a.api_key is None else True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
