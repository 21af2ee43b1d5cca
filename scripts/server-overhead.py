#!/usr/bin/env python3
"""Measures the extra cost of the server over the engine alone, on loopback, with binary tensors over TLS.

    swift build -c release --product blindai
    python3 scripts/server-overhead.py --blindai .build/release/blindai --model fixtures-large/resnet18_ts/model.onnx \
        --input fixtures-large/resnet18_ts/test_data_set_0/input_0.pb [--iterations 50]

Engine alone: `blindai bench --json` (median of N runs, same input). Server: `blindai serve --tee simulated` on
127.0.0.1, the model uploaded once, then N sequential inference requests (OIP v2, binary tensor extension, one
keep-alive TLS connection); the median client-side latency. Prints both and the overhead.
Only loopback is used; the server is stopped at the end.
"""
import argparse
import http.client
import json
import os
import socket
import ssl
import statistics
import subprocess
import sys
import time

import numpy as np
import onnx
from onnx import numpy_helper

DTYPES = {np.float32: "FP32", np.float64: "FP64", np.int64: "INT64", np.int32: "INT32", np.uint8: "UINT8"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--blindai", default=".build/release/blindai")
    p.add_argument("--model", required=True)
    p.add_argument("--input", required=True, help="TensorProto .pb for the model's (single) input")
    p.add_argument("--iterations", type=int, default=50)
    a = p.parse_args()

    t = onnx.load_tensor(a.input)
    x = numpy_helper.to_array(t)
    m = onnx.load(a.model, load_external_data=False)
    in_name = m.graph.input[0].name
    out_name = m.graph.output[0].name

    bench = subprocess.run([a.blindai, "bench", a.model, "--input", f"{in_name}={a.input}", "--iterations",
                            str(a.iterations), "--json"], check=True, capture_output=True, text=True)
    engine = json.loads(bench.stdout.strip().splitlines()[-1])

    port = free_port()
    server = subprocess.Popen([a.blindai, "serve", "--host", "127.0.0.1", "--port", str(port), "--tee", "simulated",
                               "--metrics-port", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # measuring cost only; the client library attests and pins
        deadline = time.time() + 60
        while True:
            try:
                c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=120)
                c.request("GET", "/v2/health/ready")
                hr = c.getresponse()
                hr.read()
                if hr.status == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline or server.poll() is not None:
                sys.exit("server did not start")
            time.sleep(0.2)
        with open(a.model, "rb") as f:
            body = f.read()
        c.request("PUT", "/v2/repository/models/bench", body=body)
        r = c.getresponse()
        r.read()
        assert r.status in (200, 201), r.status
        raw = np.ascontiguousarray(x).tobytes()
        header = json.dumps({
            "inputs": [{"name": in_name, "shape": list(x.shape), "datatype": DTYPES[x.dtype.type],
                        "parameters": {"binary_data_size": len(raw)}}],
            "outputs": [{"name": out_name, "parameters": {"binary_data": True}}],
        }).encode()
        payload = header + raw
        headers = {"Inference-Header-Content-Length": str(len(header)), "Content-Type": "application/octet-stream"}
        times = []
        for i in range(a.iterations + 3):
            s = time.perf_counter()
            c.request("POST", "/v2/models/bench/infer", body=payload, headers=headers)
            r = c.getresponse()
            r.read()
            assert r.status == 200, r.status
            if i >= 3:
                times.append((time.perf_counter() - s) * 1000)
    finally:
        server.terminate()
        server.wait(timeout=30)
    served = statistics.median(times)
    overhead = served - engine["median_ms"]
    print(f"model {os.path.basename(os.path.dirname(a.model)) or a.model}")
    print(f"engine alone (blindai bench)     median {engine['median_ms']:.2f} ms")
    print(f"through the server (TLS, binary) median {served:.2f} ms")
    print(f"overhead {overhead:.2f} ms = {100 * overhead / engine['median_ms']:.1f} % "
          f"(budget: 5 % + 1 ms = {0.05 * engine['median_ms'] + 1:.2f} ms)")


if __name__ == "__main__":
    main()
