#!/usr/bin/env python3
"""Two builds of blindai on the same models, runs interleaved: is the new one slower than the old one?

    python3 scripts/bench-ab.py OLD_BLINDAI NEW_BLINDAI MODEL.onnx [MODEL.onnx ...] [--runs 20] [--threads 1,2]

For each model and each thread count, both binaries are started with `blindai bench MODEL --on-request` (inputs
from `test_data_set_0/input_*.pb` next to the model when present, otherwise generated; BLINDAI_NUM_THREADS set to
the thread count). After both have loaded and warmed up, single runs alternate between them in the order
A B B A A B B A ..., `--runs` samples each (a sample is the mean of `--per-sample` consecutive runs), so that a slow stretch of a shared machine falls on both sides alike. Prints,
per model and thread count, the median milliseconds of each side, the ratio of the medians (new / old: above 1
means the new build is slower) and the median of the per-pair ratios; `--json FILE` writes every run.

Build the two binaries the same way (`swift build -c release --product blindai`, for example with
`--scratch-path` in a worktree of the old commit) and say which CPU ran the comparison (docs/benchmarking.md).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys


def tensor_name(path: str) -> str:
    """The `name` (field 8) of a serialised ONNX TensorProto, read without the onnx package."""
    data = open(path, "rb").read()
    i = 0

    def varint() -> int:
        nonlocal i
        shift = value = 0
        while True:
            byte = data[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    while i < len(data):
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            varint()
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        elif wire == 2:
            n = varint()
            if field == 8:
                return data[i:i + n].decode()
            i += n
        else:
            raise ValueError(f"{path}: unexpected wire type {wire}")
    raise ValueError(f"{path} has no tensor name")


class Engine:
    def __init__(self, binary: str, model: str, threads: int, warmup: int):
        args = [binary, "bench", model, "--on-request", "--warmup", str(warmup)]
        for path in sorted(glob.glob(os.path.join(os.path.dirname(model), "test_data_set_0", "input_*.pb"))):
            args += ["--input", f"{tensor_name(path)}={path}"]
        env = dict(os.environ, BLINDAI_NUM_THREADS=str(threads))
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"{binary} bench {model} stopped before 'ready': {self.proc.stderr.read()[-2000:]}")
            if line.strip() == "ready":
                break

    def run(self, count: int = 1) -> float:
        """The mean milliseconds of `count` consecutive runs."""
        self.proc.stdin.write("\n" * count)
        self.proc.stdin.flush()
        total = 0.0
        for _ in range(count):
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"bench stopped: {self.proc.stderr.read()[-2000:]}")
            total += float(line.split()[0])
        return total / count

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("models", nargs="+")
    p.add_argument("--runs", type=int, default=20, help="samples of each side per model and thread count (default 20)")
    p.add_argument("--per-sample", type=int, default=1,
                   help="consecutive runs averaged into one sample (default 1); more smooths a noisy machine")
    p.add_argument("--threads", default="1,2", help="comma-separated BLINDAI_NUM_THREADS values (default 1,2)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--json", help="write every run to this file")
    args = p.parse_args()
    for b in (args.old, args.new):
        if not os.access(b, os.X_OK):
            p.error(f"{b} is not an executable")
    rows, raw = [], []
    for model in args.models:
        for threads in [int(t) for t in args.threads.split(",")]:
            old, new = Engine(args.old, model, threads, args.warmup), Engine(args.new, model, threads, args.warmup)
            a, b = [], []
            try:
                for i in range(args.runs):
                    if i % 2 == 0:
                        a.append(old.run(args.per_sample))
                        b.append(new.run(args.per_sample))
                    else:
                        b.append(new.run(args.per_sample))
                        a.append(old.run(args.per_sample))
            finally:
                old.close()
                new.close()
            ma, mb = statistics.median(a), statistics.median(b)
            pair = statistics.median(y / x for x, y in zip(a, b))
            name = os.path.basename(os.path.dirname(model)) or model
            rows.append((name, threads, ma, mb, mb / ma, pair))
            raw.append({"model": model, "threads": threads, "old_ms": a, "new_ms": b})
            print(f"{name:28s} threads {threads}: old {ma:8.3f} ms  new {mb:8.3f} ms  new/old {mb / ma:.3f}  "
                  f"(median of pair ratios {pair:.3f}, {args.runs} samples of {args.per_sample} runs each)", flush=True)
    print()
    print("| model | threads | old median ms | new median ms | new / old | median of pair ratios |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, threads, ma, mb, ratio, pair in rows:
        print(f"| {name} | {threads} | {ma:.3f} | {mb:.3f} | {ratio:.3f} | {pair:.3f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(raw, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
