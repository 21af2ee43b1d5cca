#!/usr/bin/env python3
"""Load test for `blindai serve` (loopback only, Python standard library only).

Runs N client threads for T seconds, each sending binary-tensor inference requests to models picked at random
among those given on the command line, plus one thread that uploads and unloads a model in a loop, while a
health thread measures GET /v2/health/ready latency. Reports failed requests, p50/p99 latencies, the worst
health latency and the server's memory before the uploads, at the end of the run and after unloading every
model (from /proc/PID/status).

    scripts/loadtest.py --url https://127.0.0.1:8000 --pid $(pgrep -f 'blindai serve') \
        --clients 8 --duration 30 model1.onnx resnet18.onnx [--churn-model small.onnx] [--api-key SECRET]

Each model is uploaded first (PUT /v2/repository/models/<name>, name = file stem, shared) and unloaded at the
end. Dynamic dimensions get size 1 (or --dynamic-dim). TLS certificates are not verified: the server is on this machine.
"""
import argparse
import http.client
import ipaddress
import json
import os
import random
import ssl
import struct
import sys
import threading
import time
import urllib.parse

MAX_DURATION = 600
MAX_CLIENTS = 64
MAX_REQUESTS = 1_000_000

SIZES = {"BOOL": 1, "UINT8": 1, "INT8": 1, "UINT16": 2, "INT16": 2, "FP16": 2, "BF16": 2,
         "UINT32": 4, "INT32": 4, "FP32": 4, "UINT64": 8, "INT64": 8, "FP64": 8}


class Target:
    def __init__(self, url, api_key):
        u = urllib.parse.urlparse(url)
        host = u.hostname or ""
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            sys.exit(f"refusing to load-test {host!r}: only loopback addresses (127.0.0.0/8, ::1, localhost)")
        self.https = u.scheme == "https"
        self.host = host
        self.port = u.port or (443 if self.https else 80)
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def connect(self, timeout=120):
        if self.https:
            ctx = ssl._create_unverified_context()  # loopback only, the server's certificate is generated at start
            return http.client.HTTPSConnection(self.host, self.port, context=ctx, timeout=timeout)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)


def request(conn, method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    return r.status, dict(r.getheaders()), r.read()


def rss_kib(pid):
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/status") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
        return {k: int(fields[k].split()[0]) for k in ("VmRSS", "RssAnon", "VmHWM") if k in fields}
    except OSError:
        return None


def percentile(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def random_tensor(datatype, count, rng):
    if datatype == "BYTES":
        out = bytearray()
        for _ in range(count):
            s = bytes(rng.getrandbits(8) % 26 + 97 for _ in range(8))
            out += struct.pack("<I", len(s)) + s
        return bytes(out)
    if datatype == "FP32":
        return struct.pack(f"<{count}f", *(rng.random() for _ in range(count)))
    if datatype == "FP64":
        return struct.pack(f"<{count}d", *(rng.random() for _ in range(count)))
    if datatype == "BOOL":
        return bytes(rng.getrandbits(1) for _ in range(count))
    # Small non-negative integers are valid in every integer type (and as indices or shapes mostly).
    return b"".join(struct.pack("<B", rng.getrandbits(2)) + b"\0" * (SIZES[datatype] - 1) for _ in range(count)) \
        if datatype not in ("FP16", "BF16") else b"\0" * (count * SIZES[datatype])


def make_request(metadata, rng, dynamic_dim):
    inputs, parts = [], []
    for i in metadata["inputs"]:
        shape = [d if d >= 0 else dynamic_dim for d in i["shape"]]
        count = 1
        for d in shape:
            count *= d
        data = random_tensor(i["datatype"], count, rng)
        inputs.append({"name": i["name"], "shape": shape, "datatype": i["datatype"],
                       "parameters": {"binary_data_size": len(data)}})
        parts.append(data)
    header = json.dumps({"inputs": inputs, "parameters": {"binary_data_output": True}}).encode()
    return header + b"".join(parts), len(header)


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.latencies = {}
        self.failures = {}
        self.statuses = {}
        self.requests = 0

    def record(self, kind, seconds, status):
        with self.lock:
            self.requests += 1
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if status == 200:
                self.latencies.setdefault(kind, []).append(seconds)
            else:
                self.failures[kind] = self.failures.get(kind, 0) + 1


def upload(target, path, name, shared=True):
    with open(path, "rb") as f:
        data = f.read()
    conn = target.connect()
    status, _, body = request(conn, "PUT", f"/v2/repository/models/{name}?shared={'true' if shared else 'false'}",
                              body=data, headers=target.headers)
    conn.close()
    if status not in (200, 201):
        raise SystemExit(f"upload of {path} as {name} failed: {status} {body[:300]!r}")
    return json.loads(body)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="ONNX files to serve and query (uploaded as their file stem)")
    ap.add_argument("--url", default="https://127.0.0.1:8000")
    ap.add_argument("--pid", type=int, help="server process id, for RSS before and after")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--duration", type=float, default=20.0, help="seconds")
    ap.add_argument("--api-key", help="secret sent as 'Authorization: Bearer'")
    ap.add_argument("--churn-model", help="model uploaded and unloaded in a loop (default: the first model)")
    ap.add_argument("--health-interval", type=float, default=0.1)
    ap.add_argument("--dynamic-dim", type=int, default=1, help="size given to dynamic dimensions (default 1)")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if not 1 <= a.clients <= MAX_CLIENTS:
        sys.exit(f"--clients must be 1 to {MAX_CLIENTS}")
    if not 0 < a.duration <= MAX_DURATION:
        sys.exit(f"--duration must be at most {MAX_DURATION} seconds")

    target = Target(a.url, a.api_key)
    rss_before = rss_kib(a.pid)
    names = []
    metadata = {}
    for path in a.models:
        name = os.path.splitext(os.path.basename(path))[0]
        up = upload(target, path, name)
        names.append(name)
        metadata[name] = up
        print(f"uploaded {path} as {name}: {up['size']} bytes, sha256 {up['sha256'][:16]}…")

    stats = Stats()
    stop = time.monotonic() + a.duration
    health = []
    churn_count = [0]

    def client(idx):
        rng = random.Random(a.seed + idx)
        bodies = {n: make_request(metadata[n], rng, a.dynamic_dim) for n in names}
        conn = target.connect()
        while time.monotonic() < stop and stats.requests < MAX_REQUESTS:
            name = rng.choice(names)
            body, hl = bodies[name]
            headers = dict(target.headers)
            headers["Inference-Header-Content-Length"] = str(hl)
            headers["Content-Type"] = "application/octet-stream"
            t0 = time.monotonic()
            try:
                status, _, _ = request(conn, "POST", f"/v2/models/{name}/infer", body=body, headers=headers)
            except (OSError, http.client.HTTPException):
                status = "connection-error"
                conn.close()
                conn = target.connect()
            stats.record("infer", time.monotonic() - t0, status)
            if status in (429, 503):
                time.sleep(0.05)
        conn.close()

    def churn():
        path = a.churn_model or a.models[0]
        i = 0
        while time.monotonic() < stop:
            name = f"churn-{i % 2}"
            t0 = time.monotonic()
            try:
                upload(target, path, name, shared=False)
                status = 200
            except SystemExit as e:
                print(f"churn upload: {e}", file=sys.stderr)
                status = "upload-failed"
            stats.record("upload", time.monotonic() - t0, status)
            conn = target.connect()
            t0 = time.monotonic()
            try:
                s, _, _ = request(conn, "POST", f"/v2/repository/models/{name}/unload", body=b"", headers=target.headers)
            except (OSError, http.client.HTTPException):
                s = "connection-error"
            conn.close()
            stats.record("unload", time.monotonic() - t0, s)
            churn_count[0] += 1
            i += 1

    def health_probe():
        conn = target.connect(timeout=10)
        while time.monotonic() < stop:
            t0 = time.monotonic()
            try:
                status, _, _ = request(conn, "GET", "/v2/health/ready")
            except (OSError, http.client.HTTPException):
                status = "connection-error"
                conn.close()
                conn = target.connect(timeout=10)
            dt = time.monotonic() - t0
            health.append(dt)
            stats.record("health", dt, status)
            time.sleep(a.health_interval)
        conn.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(a.clients)]
    threads += [threading.Thread(target=churn, daemon=True), threading.Thread(target=health_probe, daemon=True)]
    t_start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=a.duration + 180)
    elapsed = time.monotonic() - t_start
    rss_loaded = rss_kib(a.pid)

    for name in names:
        conn = target.connect()
        request(conn, "POST", f"/v2/repository/models/{name}/unload", body=b"", headers=target.headers)
        conn.close()
    time.sleep(1.0)  # the server hands freed memory back to the system shortly after the last unload
    rss_after = rss_kib(a.pid)

    inf = stats.latencies.get("infer", [])
    failed = sum(stats.failures.values())
    print(f"\n{stats.requests} requests in {elapsed:.1f} s with {a.clients} clients; models: {', '.join(names)}")
    print(f"inference: {len(inf)} ok ({len(inf) / elapsed:.1f}/s), p50 {percentile(inf, 50) * 1000:.1f} ms, "
          f"p99 {percentile(inf, 99) * 1000:.1f} ms")
    print(f"upload/unload cycles: {churn_count[0]}")
    print(f"health: {len(health)} checks, p50 {percentile(health, 50) * 1000:.1f} ms, max {max(health or [0]) * 1000:.1f} ms")
    print(f"status counts: {dict(sorted((str(k), v) for k, v in stats.statuses.items()))}")
    print(f"failed requests: {failed} {stats.failures if failed else ''}")
    if rss_before or rss_after:
        print(f"server memory (KiB; RssAnon is the heap, VmRSS adds the mapped binary, VmHWM is the peak so far):")
        print(f"  before uploading: {rss_before}")
        print(f"  end of the run, models loaded: {rss_loaded}")
        print(f"  after unloading every model: {rss_after}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
