#!/usr/bin/env python3
"""Measures the extra cost of the server over the engine alone, on loopback, with binary tensors over TLS.

    swift build -c release --product blindai
    python3 scripts/server-overhead.py --blindai .build/release/blindai --model fixtures-large/resnet18_ts/model.onnx \
        --input fixtures-large/resnet18_ts/test_data_set_0/input_0.pb [--iterations 50]

Engine alone: `blindai bench --json` (N runs after warm-up, same input). Server: `blindai serve --tee simulated` on
127.0.0.1, the model uploaded once, then N sequential inference requests (OIP v2, binary tensor extension, one
keep-alive TLS connection), timed by the client. The two alternate for --rounds rounds, so that the machine's
drift (frequency, neighbours on a shared VM: single runs of the engine alone vary by +-10 % here) falls on both
alike. Reports the median over rounds of each round's median, the minimum over all runs, the time the server's
own handler measured (from its Prometheus endpoint), and the overhead by medians, by minimums and paired by
round (the median of each round's served median minus its engine median).
Only loopback is used; the server is stopped at the end.
"""
import argparse
import http.client
import json
import os
import statistics
import subprocess
import time

import numpy as np
import onnx
from onnx import numpy_helper

from serverkit import free_port, start, tls_context, wait_ready

DTYPES = {np.float32: "FP32", np.float64: "FP64", np.int64: "INT64", np.int32: "INT32", np.uint8: "UINT8"}


def inference_seconds(metrics_port: int, timer: str = "blindai_inference_duration_seconds") -> tuple[float, int]:
    """(sum of seconds, count) of one of the server's timers: the handler's (default) or the engine's run alone
    (blindai_inference_compute_seconds)."""
    c = http.client.HTTPConnection("127.0.0.1", metrics_port, timeout=30)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    total, count = 0.0, 0
    for line in text.splitlines():
        if line.startswith(timer + "_sum"):
            total = float(line.split()[-1])
        elif line.startswith(timer + "_count"):
            count = int(float(line.split()[-1]))
    return total, count


def timer_snapshot(metrics_port: int) -> tuple[tuple[float, int], tuple[float, int]]:
    """The handler's timer and the engine's (blindai_inference_compute_seconds), read together."""
    return inference_seconds(metrics_port), inference_seconds(metrics_port, "blindai_inference_compute_seconds")


def means_ms(before, after) -> tuple[float, float]:
    """Mean milliseconds of the handler's and the engine's timers between two snapshots."""
    return tuple((a[0] - b[0]) / max(a[1] - b[1], 1) * 1000 for b, a in zip(before, after))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--blindai", default=".build/release/blindai")
    p.add_argument("--model", required=True)
    p.add_argument("--input", required=True, help="TensorProto .pb for the model's (single) input")
    p.add_argument("--iterations", type=int, default=30, help="runs per round, for each side")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--pairs", type=int, default=200,
                   help="interleaved pairs: one run of the engine alone, one request to the server, alternately")
    a = p.parse_args()

    t = onnx.load_tensor(a.input)
    x = numpy_helper.to_array(t)
    m = onnx.load(a.model, load_external_data=False)
    in_name = m.graph.input[0].name
    out_name = m.graph.output[0].name

    port = free_port()
    metrics_port = free_port()
    server = start(a.blindai, port, metrics_port)
    engine_medians, engine_mins, served_medians, served_mins, handler_means, compute_means, engine_means = [], [], [], [], [], [], []
    try:
        c = wait_ready(server, port, tls_context())
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

        def serve_once() -> float:
            s = time.perf_counter()
            c.request("POST", "/v2/models/bench/infer", body=payload, headers=headers)
            r = c.getresponse()
            r.read()
            assert r.status == 200, r.status
            return (time.perf_counter() - s) * 1000

        # Interleaved: a `blindai bench --on-request` process runs the engine once per line it reads, so the two
        # sides alternate run by run and the host's drift (which moves over seconds) falls on both alike.
        engine_proc = subprocess.Popen([a.blindai, "bench", a.model, "--input", f"{in_name}={a.input}", "--on-request"],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        assert engine_proc.stdout.readline().strip() == "ready"

        def engine_once() -> float:
            engine_proc.stdin.write("\n")
            engine_proc.stdin.flush()
            return float(engine_proc.stdout.readline())

        for _ in range(3):
            serve_once()
        pair_engine, pair_served = [], []
        before = timer_snapshot(metrics_port)
        for i in range(a.pairs):
            if i % 2 == 0:
                pair_engine.append(engine_once())
                pair_served.append(serve_once())
            else:
                pair_served.append(serve_once())
                pair_engine.append(engine_once())
        inter_handler, inter_compute = means_ms(before, timer_snapshot(metrics_port))
        engine_proc.stdin.close()
        engine_proc.wait(timeout=60)
        diffs = [s - e for s, e in zip(pair_served, pair_engine)]
        print(f"interleaved, {a.pairs} pairs: engine alone median {statistics.median(pair_engine):.2f} ms "
              f"(mean {statistics.mean(pair_engine):.2f}), served median {statistics.median(pair_served):.2f} ms; "
              f"server handler mean {inter_handler:.2f} ms, engine run in the server mean {inter_compute:.2f} ms", flush=True)

        for rnd in range(a.rounds):
            bench = subprocess.run([a.blindai, "bench", a.model, "--input", f"{in_name}={a.input}", "--iterations",
                                    str(a.iterations), "--json"], check=True, capture_output=True, text=True)
            engine = json.loads(bench.stdout.strip().splitlines()[-1])
            engine_medians.append(engine["median_ms"])
            engine_mins.append(engine["min_ms"])
            engine_means.append(engine["mean_ms"])

            for _ in range(3):
                serve_once()
            before = timer_snapshot(metrics_port)
            times = [serve_once() for _ in range(a.iterations)]
            handler_mean, compute_mean = means_ms(before, timer_snapshot(metrics_port))
            handler_means.append(handler_mean)
            compute_means.append(compute_mean)
            served_medians.append(statistics.median(times))
            served_mins.append(min(times))
            print(f"round {rnd + 1}: engine median {engine_medians[-1]:.2f} ms (min {engine_mins[-1]:.2f}), "
                  f"served median {served_medians[-1]:.2f} ms (min {served_mins[-1]:.2f}), "
                  f"server handler mean {handler_means[-1]:.2f} ms, engine run in the server mean {compute_means[-1]:.2f} ms, "
                  f"engine alone mean {engine_means[-1]:.2f} ms", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)

    e_med, s_med = statistics.median(engine_medians), statistics.median(served_medians)
    e_min, s_min = min(engine_mins), min(served_mins)
    budget = 0.05 * e_med + 1
    print(f"model {os.path.basename(os.path.dirname(a.model)) or a.model}; {a.rounds} rounds of {a.iterations} runs each side")
    print(f"engine alone (blindai bench)     median {e_med:.2f} ms, min {e_min:.2f} ms")
    print(f"through the server (TLS, binary) median {s_med:.2f} ms, min {s_min:.2f} ms")
    print(f"  of which in the server's handler (body read, decode, run, encode): mean {statistics.median(handler_means):.2f} ms")
    print(f"  of which the engine's run on the server's worker: mean {statistics.median(compute_means):.2f} ms "
          f"(engine alone: mean {statistics.median(engine_means):.2f} ms)")
    print(f"overhead by medians {s_med - e_med:.2f} ms = {100 * (s_med - e_med) / e_med:.1f} %, "
          f"by minimums {s_min - e_min:.2f} ms (budget: 5 % + 1 ms = {budget:.2f} ms)")
    if a.pairs:
        e_pair = statistics.median(pair_engine)
        print(f"overhead interleaved (median of served - engine over {a.pairs} adjacent pairs): "
              f"{statistics.median(diffs):.2f} ms (budget: 5 % + 1 ms = {0.05 * e_pair + 1:.2f} ms); "
              f"difference of medians {statistics.median(pair_served) - e_pair:.2f} ms")
    # Each round's two sides ran within seconds of each other: their difference cancels most of the host's slow
    # drift, which the medians over rounds do not.
    paired = [s - e for s, e in zip(served_medians, engine_medians)]
    print(f"overhead paired by round (served median - engine median): median {statistics.median(paired):.2f} ms "
          f"[{' '.join(f'{d:.2f}' for d in paired)}]")


if __name__ == "__main__":
    main()
