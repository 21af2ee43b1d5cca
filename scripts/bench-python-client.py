#!/usr/bin/env python3
"""Python client against the Swift client: predictions per second and latency, same server, same model, same input.

    BLINDAI_BIN=.build/release/blindai python3 scripts/bench-python-client.py [--rounds 20] [--per-round 20]

Starts `blindai serve --tee simulated` on loopback, uploads an Identity model over a float32 [1, 3, 224, 224] tensor
(602,112 bytes: the 600 KB input travels both ways in the binary tensor extension, so the measured time is
dominated by the client and the transport, not by the engine) and alternates rounds: in each round the Swift client
(`blindai predict --repeat K`, one attested session, timed in-process with ContinuousClock) and then the Python
client (one attested session, timed with time.perf_counter around `predict`) each run K predictions. Reports the
median and the 10th/90th percentiles of each client's latencies (at least 200 each) and the difference of the
medians. Needs a blindai built with `predict --repeat`.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python" / "tests"))
sys.path.insert(0, str(REPO / "python" / "src"))

import numpy as np  # noqa: E402

import blindai  # noqa: E402
import onnx_builder  # noqa: E402
from server import Server  # noqa: E402


def identity_image_model() -> bytes:
    g = (onnx_builder.ld(1, onnx_builder.node("Identity", ["input"], ["output"])) + onnx_builder.s(2, "identity_image")
         + onnx_builder.ld(11, onnx_builder.value_info("input", 1, ["N", 3, 224, 224]))
         + onnx_builder.ld(12, onnx_builder.value_info("output", 1, ["N", 3, 224, 224])))
    return onnx_builder.model(g)


def pct(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]


def cpu_model() -> str:
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.environ.get("BLINDAI_BIN", str(REPO / ".build" / "release" / "blindai")))
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--per-round", type=int, default=20)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.rounds * a.per_round < 200:
        ap.error("at least 200 predictions per client (rounds x per-round)")
    work = pathlib.Path(tempfile.mkdtemp(prefix="blindai-bench-"))
    srv = Server(a.bin, work)
    try:
        model = work / "identity_image.onnx"
        model.write_bytes(identity_image_model())
        x = np.random.default_rng(0).random((1, 3, 224, 224), dtype=np.float32)
        npy = work / "input.npy"
        np.save(npy, x)
        swift_ms, python_ms = [], []
        with blindai.connect(srv.address, policy=srv.policy_path) as conn:
            conn.upload_model(model, model_name="identity_image")
            out = conn.predict("identity_image", {"input": x}).output[0].as_numpy()
            assert out.tobytes() == x.tobytes()
            for _ in range(5):  # warm-up
                conn.predict("identity_image", {"input": x})
            for _ in range(a.rounds):
                p = subprocess.run([a.bin, "predict", "identity_image", "--input", f"input={npy}", "--repeat", str(a.per_round),
                                    "--policy", srv.policy_path, "--server", srv.address], capture_output=True, text=True)
                if p.returncode != 0:
                    print(p.stderr, file=sys.stderr)
                    return 1
                line = next(l for l in p.stderr.splitlines() if l.startswith('{"latencies_ms"'))
                swift_ms += json.loads(line)["latencies_ms"]
                for _ in range(a.per_round):
                    t0 = time.perf_counter()
                    conn.predict("identity_image", {"input": x})
                    python_ms.append((time.perf_counter() - t0) * 1e3)
            conn.delete_model("identity_image")
    finally:
        srv.stop()
    res = {}
    for name, v in (("swift", swift_ms), ("python", python_ms)):
        med = statistics.median(v)
        res[name] = {"runs": len(v), "median_ms": round(med, 3), "p10_ms": round(pct(v, 0.1), 3), "p90_ms": round(pct(v, 0.9), 3),
                     "predictions_per_s": round(1000 / med, 1)}
    res["python_minus_swift_median_ms"] = round(res["python"]["median_ms"] - res["swift"]["median_ms"], 3)
    res["input_bytes"] = x.nbytes
    res["cpu"] = cpu_model()
    res["binary"] = a.bin
    if a.json:
        print(json.dumps(res, indent=2))
    else:
        print(f"CPU: {res['cpu']}; server and clients on loopback; input float32 [1,3,224,224] ({x.nbytes} B), Identity model")
        for name in ("swift", "python"):
            r = res[name]
            print(f"{name:6s} {r['runs']} predictions: median {r['median_ms']:.3f} ms (p10 {r['p10_ms']:.3f}, p90 {r['p90_ms']:.3f}), "
                  f"{r['predictions_per_s']} predictions/s")
        print(f"Python - Swift (medians): {res['python_minus_swift_median_ms']:+.3f} ms (target: at most +1 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
