#!/usr/bin/env python3
"""Slow clients against a release server with its default limits, on loopback (not run in CI).

    swift build -c release --product blindai
    python3 scripts/slow-clients.py --blindai .build/release/blindai \
        --model small=Tests/BlindAIEngineTests/Fixtures/parity/cnn_small_ts/model.onnx \
        --model resnet18=fixtures-large/resnet18_ts/model.onnx          # scripts/make-parity-fixtures.py

Starts `blindai serve --tee simulated` on 127.0.0.1 with the default limits (the only flags are the address and
ports), uploads the models, then for --seconds (default 180):
  * 32 connections POST an inference body and 32 PUT an upload body, one byte per second each; a connection the
    server cuts off is opened again at once, so 64 tricklers press for the whole time;
  * 100 sequential inferences on each model (binary tensors of zeros, shapes from the model's metadata, dynamic
    dimensions 1), spread over the time, each of which must answer 200 in under 1 s;
  * a readiness check (GET /v2/health/ready) every 50 ms, whose 99th percentile must stay under 100 ms.
At the end every trickling connection must have been cut off by the server with 408 (body_timeout) within the
body deadline (--body-grace, 10 s by default, plus --slack). Prints the figures; exits non-zero when a check fails.
Only loopback is used; the server is stopped at the end, and the run is bounded (--seconds plus about 60 s).
"""
import argparse
import http.client
import json
import math
import socket
import statistics
import subprocess
import sys
import threading
import time

from serverkit import free_port, start, tls_context, wait_ready

DTYPE_SIZES = {"FP32": 4, "FP64": 8, "FP16": 2, "BF16": 2, "INT64": 8, "INT32": 4, "INT16": 2, "INT8": 1,
               "UINT64": 8, "UINT32": 4, "UINT16": 2, "UINT8": 1, "BOOL": 1}
BODY_GRACE = 10.0  # the server's default --body-grace: a byte-a-second trickler is cut off just after it


def percentile(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


class Run:
    def __init__(self, port: int, seconds: float, slack: float):
        self.port = port
        self.seconds = seconds
        self.slack = slack
        self.ctx = tls_context()
        self.lock = threading.Lock()
        self.cuts = []          # (kind, seconds from connect to close, first line of the answer)
        self.uncut = []         # (kind, seconds) connections the server left open
        self.latencies = {}     # model -> [seconds]
        self.failures = []      # text of every failed inference
        self.ready = []         # seconds of each readiness check
        self.ready_failures = 0
        self.stop = threading.Event()

    def connection(self, timeout=30) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=timeout)

    def trickler(self, kind: str, index: int, until: float, hard_end: float) -> None:
        """Trickles bodies one byte a second until `until`; the last connection runs until cut or `hard_end`."""
        if kind == "POST":
            head = ("POST /v2/models/small/infer HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                    "Content-Length: 1000000\r\n\r\n")
        else:
            head = (f"PUT /v2/repository/models/trickle-{index} HTTP/1.1\r\nHost: localhost\r\n"
                    "Content-Length: 100000000\r\n\r\n")
        while time.time() < until:
            start = time.time()
            try:
                raw = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                sock = self.ctx.wrap_socket(raw, server_hostname="localhost")
                sock.sendall(head.encode())
            except OSError as e:
                with self.lock:
                    self.uncut.append((kind, f"connect failed: {e}"))
                time.sleep(1)
                continue
            answer = b""
            closed = False
            sock.settimeout(1.0)
            while time.time() < hard_end:
                try:
                    sock.sendall(b"\x08" if kind == "PUT" else b" ")
                except OSError:
                    pass  # the server closed: read what it said
                try:
                    while True:
                        chunk = sock.recv(65536)
                        if not chunk:
                            closed = True
                            break
                        answer += chunk
                except socket.timeout:
                    pass
                except OSError:
                    closed = True
                if closed:
                    break
            took = time.time() - start
            sock.close()
            line = answer.split(b"\r\n", 1)[0].decode(errors="replace")
            with self.lock:
                if closed:
                    self.cuts.append((kind, took, line, b"body_timeout" in answer or b"too slowly" in answer))
                else:
                    self.uncut.append((kind, took))

    def inferences(self, model: str, meta: dict, count: int, spread: float) -> None:
        header = {"inputs": []}
        raw = b""
        for i in meta["inputs"]:
            shape = [d if d >= 0 else 1 for d in i["shape"]]
            size = DTYPE_SIZES[i["datatype"]] * math.prod(shape)
            header["inputs"].append({"name": i["name"], "shape": shape, "datatype": i["datatype"],
                                     "parameters": {"binary_data_size": size}})
            raw += bytes(size)
        head = json.dumps(header).encode()
        headers = {"Inference-Header-Content-Length": str(len(head)), "Content-Type": "application/octet-stream"}
        c = self.connection()
        times = []
        for n in range(count):
            next_at = time.time() + spread / count
            s = time.perf_counter()
            try:
                c.request("POST", f"/v2/models/{model}/infer", body=head + raw, headers=headers)
                r = c.getresponse()
                body = r.read()
                took = time.perf_counter() - s
                if r.status != 200:
                    self.failures.append(f"{model} #{n}: status {r.status} {body[:200]!r}")
            except OSError as e:
                took = time.perf_counter() - s
                self.failures.append(f"{model} #{n}: {e}")
                c = self.connection()
            times.append(took)
            time.sleep(max(0.0, next_at - time.time()))
        with self.lock:
            self.latencies[model] = times

    def readiness(self) -> None:
        c = self.connection(timeout=10)
        while not self.stop.is_set():
            s = time.perf_counter()
            try:
                c.request("GET", "/v2/health/ready")
                r = c.getresponse()
                r.read()
                if r.status != 200:
                    self.ready_failures += 1
            except OSError:
                self.ready_failures += 1
                c = self.connection(timeout=10)
            self.ready.append(time.perf_counter() - s)
            time.sleep(0.05)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--blindai", required=True, help="a release build of blindai")
    p.add_argument("--model", action="append", required=True, metavar="NAME=PATH",
                   help="a model to run inferences on (give two: a small one named 'small', and a ResNet18-size one)")
    p.add_argument("--seconds", type=float, default=180)
    p.add_argument("--post", type=int, default=32)
    p.add_argument("--put", type=int, default=32)
    p.add_argument("--inferences", type=int, default=100)
    p.add_argument("--slack", type=float, default=5.0, help="seconds past the 10 s grace a cut-off may take")
    a = p.parse_args()
    models = dict(m.split("=", 1) for m in a.model)
    if "small" not in models:
        sys.exit("one --model must be named 'small' (the POST tricklers aim at it)")

    port, metrics_port = free_port(), free_port()
    server = start(a.blindai, port, metrics_port)
    run = Run(port, a.seconds, a.slack)
    ok = True
    try:
        c = wait_ready(server, port, run.ctx)
        metas = {}
        for name, path in models.items():
            with open(path, "rb") as f:
                c.request("PUT", f"/v2/repository/models/{name}", body=f.read())
            r = c.getresponse()
            body = r.read()
            if r.status not in (200, 201):
                sys.exit(f"upload of {name} failed: {r.status} {body[:300]!r}")
            c.request("GET", f"/v2/models/{name}")
            r = c.getresponse()
            metas[name] = json.loads(r.read())
        c.close()

        began = time.time()
        until = began + a.seconds
        hard_end = until + BODY_GRACE + a.slack + 30
        threads = [threading.Thread(target=run.trickler, args=(kind, i, until, hard_end))
                   for kind, n in (("POST", a.post), ("PUT", a.put)) for i in range(n)]
        for t in threads:
            t.start()
        ready = threading.Thread(target=run.readiness)
        ready.start()
        time.sleep(2)  # every trickler connected and sending
        spread = max(a.seconds - 10, 1)
        workers = [threading.Thread(target=run.inferences, args=(name, metas[name], a.inferences, spread)) for name in models]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        for t in threads:
            t.join()
        run.stop.set()
        ready.join()
        elapsed = time.time() - began
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()

    print(f"duration: {elapsed:.0f} s, {a.post} POST + {a.put} PUT tricklers at 1 byte/s")
    for name, times in run.latencies.items():
        print(f"inference {name}: {len(times)} sequential, median {statistics.median(times) * 1000:.1f} ms, "
              f"p99 {percentile(times, 0.99) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms")
        if max(times) >= 1.0 or len(times) < a.inferences:
            ok = False
            print(f"  FAIL: an inference on {name} took 1 s or more")
    for f in run.failures:
        ok = False
        print(f"  FAIL: {f}")
    print(f"readiness: {len(run.ready)} checks, median {statistics.median(run.ready) * 1000:.1f} ms, "
          f"p99 {percentile(run.ready, 0.99) * 1000:.1f} ms, max {max(run.ready) * 1000:.1f} ms, {run.ready_failures} failed")
    if percentile(run.ready, 0.99) >= 0.1 or run.ready_failures:
        ok = False
        print("  FAIL: readiness p99 at or over 100 ms, or failed checks")
    bound = BODY_GRACE + a.slack
    for kind in ("POST", "PUT"):
        cuts = [c for c in run.cuts if c[0] == kind]
        good = [c for c in cuts if c[2].startswith("HTTP/1.1 408") and c[3] and c[1] <= bound]
        print(f"{kind} tricklers: {len(cuts)} connections cut off by the server, {len(good)} with 408 body_timeout "
              f"within {bound:.0f} s; time to cut-off min {min((c[1] for c in cuts), default=0):.1f} s, "
              f"max {max((c[1] for c in cuts), default=0):.1f} s")
        if len(good) != len(cuts) or not cuts:
            ok = False
            for c in cuts:
                if c not in good:
                    print(f"  FAIL: cut after {c[1]:.1f} s with {c[2]!r}")
    for u in run.uncut:
        ok = False
        print(f"  FAIL: a {u[0]} trickler was not cut off: {u[1]}")
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
