#!/usr/bin/env python3
"""Soak test of a release `blindai serve` (loopback only; not run in CI: it takes as long as you ask).

    scripts/soak.py --blindai .build/release/blindai --minutes 30 [--workdir DIR]

Starts the server in the simulated TEE and, for the given time, runs mixed clients at once:
  * inference on several committed parity models (Tests/BlindAIEngineTests/Fixtures/parity) and a control model,
    every answer compared with the fixture's expected outputs (onnxruntime's) or the exact control result;
  * a churn client uploading, using and unloading a model in a loop;
  * attestation requests (a fresh nonce each);
  * slow clients that trickle a request and abandon it, and clients that connect and leave at once;
  * malformed requests (bad JSON, wrong shapes and types, truncated binary tensors, unknown models), which must get
    a 4xx answer;
  * a readiness probe every 50 ms, whose latency is recorded. It runs in a process of its own: in this process
    the clients' threads share one interpreter lock, and the probe would measure its wait for that lock too.
Then every model is unloaded and the server's RSS is compared with its level after warm-up.
Prints the figures and exits 1 unless: 0 wrong answers, 0 unexpected statuses or dropped connections, readiness
p99 under 100 ms, and RSS after unloading within 64 MiB of the warm-up level.
"""
import argparse
import base64
import glob
import http.client
import json
import multiprocessing
import os
import random
import socket
import sys
import tempfile
import threading
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from serverkit import Server, decode_response, is_ready, rss_kib


def readiness_probe(port, stop, results):
    """In its own process: GET /v2/health/ready on a new TLS connection every 50 ms until `stop` is set; sends the
    list of (seconds, ok) back through `results`."""
    samples = []
    while not stop.is_set():
        t = time.perf_counter()
        ok = is_ready(port, timeout=10)
        samples.append((time.perf_counter() - t, ok))
        time.sleep(0.05)
    results.put(samples)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
PARITY = os.path.join(ROOT, "Tests", "BlindAIEngineTests", "Fixtures", "parity")
SOAK_MODELS = ["digits_mlp", "cnn_small_ts", "bert2_ts", "gpt2_ts", "rnn_lstm_gru_ts"]


def load_fixture(name):
    d = os.path.join(PARITY, name)
    with open(os.path.join(d, "model.onnx"), "rb") as f:
        data = f.read()
    m = onnx.load_from_string(data)
    inits = {i.name for i in m.graph.initializer}
    in_names = [i.name for i in m.graph.input if i.name not in inits]
    out_names = [o.name for o in m.graph.output]
    ds = os.path.join(d, "test_data_set_0")
    inputs = {n: numpy_helper.to_array(onnx.load_tensor(os.path.join(ds, f"input_{i}.pb"))) for i, n in enumerate(in_names)}
    outputs = {n: numpy_helper.to_array(onnx.load_tensor(os.path.join(ds, f"output_{i}.pb"))) for i, n in enumerate(out_names)}
    return data, inputs, outputs


def control_model():
    g = helper.make_graph([helper.make_node("Add", ["x", "x"], ["y"])], "control",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n"])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=8).SerializeToString()


def close_enough(got, want):
    if got.shape != want.shape:
        return False
    if want.dtype.kind in "iub":
        return np.array_equal(got, want)
    return np.allclose(got.astype(np.float64), want.astype(np.float64), rtol=1e-3, atol=1e-4)


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.problems = []
        self.health = []

    def add(self, kind, n=1):
        with self.lock:
            self.counts[kind] = self.counts.get(kind, 0) + n

    def problem(self, what):
        with self.lock:
            self.problems.append(what)
            if len(self.problems) <= 20:
                print("PROBLEM", what, flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--blindai", default=".build/release/blindai")
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--inference-clients", type=int, default=4)
    ap.add_argument("--workdir")
    a = ap.parse_args()
    work = a.workdir or tempfile.mkdtemp(prefix="blindai-soak-")
    os.makedirs(work, exist_ok=True)
    stats = Stats()
    fixtures = {n: load_fixture(n) for n in SOAK_MODELS if os.path.isdir(os.path.join(PARITY, n))}
    server = Server(a.blindai, work)
    pid = server.proc.pid
    rss_start = rss_kib(pid)
    for name, (data, _, _) in fixtures.items():
        status, body = server.upload(name, data)
        if status not in (200, 201):
            raise SystemExit(f"upload of {name} failed: {status} {body[:200]!r}")
    server.upload("control", control_model())

    def infer_checked(name, inputs, expected):
        try:
            status, raw = server.infer(name, inputs)
        except (OSError, http.client.HTTPException) as e:
            stats.problem(f"inference on {name}: connection error {e!r}")
            return
        if status != 200:
            stats.problem(f"inference on {name}: status {status} {raw[:200]!r}")
            return
        out = decode_response(raw)
        for k, want in expected.items():
            if k not in out or not close_enough(out[k], want):
                stats.add("wrong answers")
                stats.problem(f"inference on {name}: wrong output {k}")
                return
        stats.add("inferences")

    # Warm-up: every model once, then the reference RSS.
    for name, (_, inputs, outputs) in fixtures.items():
        infer_checked(name, inputs, outputs)
    time.sleep(1)
    rss_warm = rss_kib(pid)
    deadline = time.time() + a.minutes * 60
    stop = threading.Event()

    def inference_client(seed):
        rng = random.Random(seed)
        names = list(fixtures)
        while not stop.is_set():
            if rng.random() < 0.2:
                x = np.array([rng.uniform(-1e3, 1e3) for _ in range(rng.randint(1, 64))], np.float32)
                infer_checked("control", {"x": x}, {"y": x + x})
            else:
                n = rng.choice(names)
                infer_checked(n, fixtures[n][1], fixtures[n][2])

    def churn_client():
        data, inputs, outputs = fixtures.get("digits_mlp") or next(iter(fixtures.values()))
        i = 0
        while not stop.is_set():
            name = f"churn{i % 3}"
            status, body = server.upload(name, data)
            if status not in (200, 201):
                stats.problem(f"churn upload: {status} {body[:200]!r}")
            else:
                infer_checked(name, inputs, outputs)
                status, body = server.unload(name)
                if status != 200:
                    stats.problem(f"churn unload: {status} {body[:200]!r}")
                stats.add("upload/unload cycles")
            i += 1

    def attestation_client():
        while not stop.is_set():
            nonce = base64.b64encode(os.urandom(32)).decode()
            try:
                status, body = server.request("POST", "/v2/attestation", body=json.dumps({"nonce": nonce}),
                                              headers={"Content-Type": "application/json"})
            except (OSError, http.client.HTTPException) as e:
                stats.problem(f"attestation: {e!r}")
                continue
            if status == 200:
                stats.add("attestations")
            elif status == 429:
                stats.add("attestations refused as busy (429)")
            else:
                stats.problem(f"attestation: status {status} {body[:200]!r}")
            time.sleep(0.05)

    def slow_client():
        rng = random.Random(7)
        while not stop.is_set():
            try:
                s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
                if rng.random() < 0.5:
                    s.close()  # connect and leave before the TLS handshake
                    stats.add("abandoned connections")
                else:
                    conn = server.connect(timeout=10)
                    conn.putrequest("POST", "/v2/models/control/infer")
                    conn.putheader("Content-Length", "100000")
                    conn.putheader("Content-Type", "application/json")
                    conn.endheaders()
                    for _ in range(rng.randint(1, 5)):
                        conn.send(b"{")
                        time.sleep(0.5)
                    conn.close()  # abandoned mid-body
                    s.close()
                    stats.add("slow abandoned requests")
            except (OSError, http.client.HTTPException):
                stats.add("slow clients cut off by the server")
            time.sleep(0.2)

    def malformed_client():
        bad = [
            ("POST", "/v2/models/control/infer", b"{not json", {"Content-Type": "application/json"}),
            ("POST", "/v2/models/control/infer", json.dumps({"inputs": [{"name": "x", "shape": [2], "datatype": "FP32", "data": [1]}]}).encode(), {}),
            ("POST", "/v2/models/control/infer", json.dumps({"inputs": [{"name": "x", "shape": [2], "datatype": "INT8", "data": [1, 2]}]}).encode(), {}),
            ("POST", "/v2/models/control/infer", json.dumps({"inputs": [{"name": "x", "shape": [-1], "datatype": "FP32", "data": []}]}).encode(), {}),
            ("POST", "/v2/models/nosuchmodel/infer", json.dumps({"inputs": []}).encode(), {}),
            ("PUT", "/v2/repository/models/garbage", os.urandom(2048), {}),
        ]
        header = json.dumps({"inputs": [{"name": "x", "shape": [4], "datatype": "FP32", "parameters": {"binary_data_size": 16}}]}).encode()
        bad.append(("POST", "/v2/models/control/infer", header + b"\0" * 7,
                    {"Inference-Header-Content-Length": str(len(header)), "Content-Type": "application/octet-stream"}))
        i = 0
        while not stop.is_set():
            method, path, body, headers = bad[i % len(bad)]
            i += 1
            try:
                status, raw = server.request(method, path, body=body, headers=headers)
            except (OSError, http.client.HTTPException) as e:
                stats.problem(f"malformed {path}: connection error {e!r}")
                continue
            if 400 <= status < 500:
                stats.add("malformed requests refused (4xx)")
            else:
                stats.problem(f"malformed {path}: status {status} {raw[:200]!r}")
            time.sleep(0.05)

    workers = [threading.Thread(target=inference_client, args=(i,)) for i in range(a.inference_clients)]
    workers += [threading.Thread(target=f) for f in (churn_client, attestation_client, slow_client, malformed_client)]
    spawn = multiprocessing.get_context("spawn")
    probe_stop, probe_results = spawn.Event(), spawn.Queue()
    probe = spawn.Process(target=readiness_probe, args=(server.port, probe_stop, probe_results))
    probe.start()
    for w in workers:
        w.start()
    rss_peak = rss_warm or 0
    while time.time() < deadline and server.proc.poll() is None:
        time.sleep(5)
        rss_peak = max(rss_peak, rss_kib(pid) or 0)
    stop.set()
    probe_stop.set()
    for sample, ok in probe_results.get(timeout=120):
        stats.health.append(sample)
        if not ok:
            stats.problem("readiness check failed")
    probe.join(30)
    for w in workers:
        w.join(60)
    alive = server.alive()
    for name in list(fixtures) + ["control"]:
        server.unload(name)
    time.sleep(3)
    rss_after = rss_kib(pid)
    server.stop()

    h = sorted(stats.health)
    p = lambda q: h[min(len(h) - 1, int(q * len(h)))] * 1000 if h else float("nan")
    print(f"soak: {a.minutes:g} min, {a.inference_clients} inference clients, models {', '.join(fixtures)} and control")
    for k in sorted(stats.counts):
        print(f"  {k}: {stats.counts[k]}")
    print(f"  readiness checks: {len(h)}, p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms, max {h[-1] * 1000 if h else float('nan'):.1f} ms")
    print(f"  RSS: {rss_start / 1024:.1f} MiB at start, {rss_warm / 1024:.1f} MiB after warm-up, peak {rss_peak / 1024:.1f} MiB, "
          f"{rss_after / 1024:.1f} MiB after unloading every model")
    print(f"  problems: {len(stats.problems)}; server alive at the end: {alive}")
    ok = (alive and not stats.problems and stats.counts.get("wrong answers", 0) == 0 and h and p(0.99) < 100
          and rss_after is not None and rss_after - rss_warm <= 64 * 1024)
    print("soak: PASS" if ok else "soak: FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
