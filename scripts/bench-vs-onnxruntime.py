#!/usr/bin/env python3
"""Median inference latency of onnxruntime and of `blindai bench` on the same models and the same inputs.

Usage:
    swift build -c release --product blindai
    python3 scripts/bench-vs-onnxruntime.py MODEL.onnx [MODEL.onnx ...] [--iterations 30] [--warmup 5]
        [--blindai .build/release/blindai] [--dim-default 1] [--markdown]

For every model, inputs are taken from `test_data_set_0/input_*.pb` next to the model when present (the parity
fixtures' layout), otherwise generated from the declared inputs (symbolic dimensions = --dim-default; floats
uniform in [-1, 1), integers in [0, 10)). The same inputs are written as .npy files and given to blindai with
--input NAME=FILE.

Configurations measured, in one run:
    ort-mt     onnxruntime CPUExecutionProvider, default threads (intra-op pool = cores), ORT_ENABLE_ALL
    ort-1t     onnxruntime with intra_op_num_threads=1, inter_op_num_threads=1
    blindai    `blindai bench --json` (release build; its kernels split large GEMMs and convolutions across cores)
    blindai-1c the same pinned to one core with `taskset -c 0` (the engine sizes its worker count from the
               CPUs it may run on), when taskset exists
Ratios are blindai / onnxruntime (over 1 means blindai is slower).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np


def load_inputs(model_path: str, sess, dim_default: int) -> dict[str, np.ndarray]:
    import onnx
    from onnx import numpy_helper

    d = os.path.join(os.path.dirname(os.path.abspath(model_path)), "test_data_set_0")
    names = [i.name for i in sess.get_inputs()]
    feeds: dict[str, np.ndarray] = {}
    if os.path.isdir(d):
        for f in sorted(glob.glob(os.path.join(d, "input_*.pb"))):
            t = onnx.TensorProto()
            with open(f, "rb") as fh:
                t.ParseFromString(fh.read())
            if t.name in names:
                feeds[t.name] = numpy_helper.to_array(t)
    rng = np.random.RandomState(0)
    types = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
             "tensor(int32)": np.int32, "tensor(bool)": np.bool_}
    for i in sess.get_inputs():
        if i.name in feeds:
            continue
        shape = [d if isinstance(d, int) and d >= 0 else dim_default for d in i.shape]
        dt = types.get(i.type, np.float32)
        if dt in (np.float32, np.float64):
            feeds[i.name] = rng.uniform(-1, 1, size=shape).astype(dt)
        elif dt == np.bool_:
            feeds[i.name] = np.ones(shape, dtype=np.bool_)
        else:
            feeds[i.name] = rng.randint(0, 10, size=shape).astype(dt)
    return feeds


def time_ort(sess, feeds, warmup: int, iterations: int) -> float:
    for _ in range(warmup):
        sess.run(None, feeds)
    times = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def time_blindai(binary: str, model: str, npys: dict[str, str], warmup: int, iterations: int, pin: bool) -> dict | None:
    cmd = [binary, "bench", model, "--json", "--iterations", str(iterations), "--warmup", str(warmup)]
    for name, path in npys.items():
        cmd += ["--input", f"{name}={path}"]
    if pin:
        cmd = ["taskset", "-c", "0"] + cmd
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print(f"  blindai failed on {model}: {r.stderr.strip() or r.stdout.strip()}", file=sys.stderr)
        return None
    line = [l for l in r.stdout.splitlines() if l.startswith("{")][-1]
    return json.loads(line)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--blindai", default=".build/release/blindai")
    ap.add_argument("--dim-default", type=int, default=1)
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = ap.parse_args()

    import onnxruntime as ort

    if not os.path.exists(args.blindai):
        print(f"{args.blindai} not found: build it with `swift build -c release --product blindai`", file=sys.stderr)
        return 2
    pin = shutil.which("taskset") is not None
    rows = []
    tmp = tempfile.mkdtemp(prefix="bench-ort-")
    try:
        for model in args.models:
            label = os.path.basename(os.path.dirname(os.path.abspath(model))) or model
            opts = ort.SessionOptions()
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            mt = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
            opts1 = ort.SessionOptions()
            opts1.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            opts1.intra_op_num_threads = 1
            opts1.inter_op_num_threads = 1
            st = ort.InferenceSession(model, opts1, providers=["CPUExecutionProvider"])
            feeds = load_inputs(model, mt, args.dim_default)
            npys = {}
            for k, (name, arr) in enumerate(feeds.items()):
                p = os.path.join(tmp, f"{label}_{k}.npy")
                np.save(p, arr)
                npys[name] = p
            ort_mt = time_ort(mt, feeds, args.warmup, args.iterations)
            ort_1t = time_ort(st, feeds, args.warmup, args.iterations)
            b = time_blindai(args.blindai, model, npys, args.warmup, args.iterations, pin=False)
            b1 = time_blindai(args.blindai, model, npys, args.warmup, args.iterations, pin=True) if pin else None
            shapes = " ".join(f"{n}{list(a.shape)}" for n, a in feeds.items())
            rows.append((label, shapes, ort_mt, ort_1t, b["median_ms"] if b else None, b1["median_ms"] if b1 else None,
                         b["load_ms"] if b else None))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def f(v):
        return "-" if v is None else f"{v:.2f}"

    def ratio(a, b):
        return "-" if a is None or b is None or b == 0 else f"{a / b:.2f}x"

    header = ["model", "inputs", "ort-mt ms", "ort-1t ms", "blindai ms", "blindai-1c ms", "blindai/ort-mt",
              "blindai-1c/ort-1t", "blindai load ms"]
    table = [[r[0], r[1], f(r[2]), f(r[3]), f(r[4]), f(r[5]), ratio(r[4], r[2]), ratio(r[5], r[3]), f(r[6])] for r in rows]
    print(f"onnxruntime {ort.__version__}, {os.cpu_count()} CPUs, median of {args.iterations} runs after {args.warmup} warm-up runs")
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for r in table:
            print("| " + " | ".join(r) + " |")
    else:
        widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(header)]
        print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
        for r in table:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
