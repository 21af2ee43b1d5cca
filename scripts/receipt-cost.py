#!/usr/bin/env python3
"""What a signed receipt costs an inference (docs/receipts.md): the same request with and without `receipt: true`,
alternated on one connection to a release `blindai serve --tee simulated`, for a small and a large model.

    python3 scripts/receipt-cost.py [--blindai .build/release/blindai] [--rounds 5] [--runs 40]

Models: demo/digits.onnx (small: a 1x1x8x8 image, 10 outputs) and, when present,
fixtures-large/resnet18_ts/model.onnx (large: 1x3x224x224, 1000 outputs; python3 scripts/make-parity-fixtures.py
fixtures-large --only resnet18_ts). For each model, `--rounds` rounds of `--runs` request pairs (with, without,
then without, with, ...); prints each round's median latency of each side and the median added milliseconds, and
the median over rounds. The receipt's work is hashing the inputs and outputs (SHA-256), encoding the receipt, and one
ECDSA P-256 signature.
"""
import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serverkit  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def post(conn, name, body, headers):
    start = time.perf_counter()
    conn.request("POST", f"/v2/models/{name}/infer", body=body, headers=headers)
    response = conn.getresponse()
    raw = response.read()
    elapsed = (time.perf_counter() - start) * 1e3
    if response.status != 200:
        raise SystemExit(f"{name}: HTTP {response.status}: {raw[:300]!r}")
    return elapsed, raw, response.getheader("Inference-Header-Content-Length")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--blindai", default=os.path.join(ROOT, ".build/release/blindai"))
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--runs", type=int, default=40)
    args = p.parse_args()
    if not os.access(args.blindai, os.X_OK):
        p.error(f"{args.blindai} does not exist: swift build -c release --product blindai")
    models = [("digits", os.path.join(ROOT, "demo/digits.onnx"), {"image": np.random.RandomState(0).rand(1, 1, 8, 8).astype(np.float32)})]
    resnet = os.path.join(ROOT, "fixtures-large/resnet18_ts/model.onnx")
    if os.path.exists(resnet):
        models.append(("resnet18", resnet, {"input": np.random.RandomState(0).rand(1, 3, 224, 224).astype(np.float32)}))
    else:
        print("fixtures-large/resnet18_ts is missing: the large model is skipped", file=sys.stderr)
    with tempfile.TemporaryDirectory() as work:
        server = serverkit.Server(args.blindai, work)
        try:
            for name, path, inputs in models:
                with open(path, "rb") as f:
                    status, raw = server.upload(name, f.read())
                if status not in (200, 201):
                    raise SystemExit(f"upload of {name}: HTTP {status}: {raw[:300]!r}")
                plain = serverkit.infer_body(inputs)
                signed = serverkit.infer_body(inputs, {"receipt": True})
                conn = server.connect()
                _, raw, hl = post(conn, name, *signed)
                header = json.loads(raw[:int(hl)] if hl else raw)
                assert "receipt" in header.get("parameters", {}), "the response has no receipt"
                for _ in range(5):
                    post(conn, name, *plain)
                rounds = []
                for r in range(args.rounds):
                    with_r, without = [], []
                    for i in range(args.runs):
                        order = [(signed, with_r), (plain, without)] if i % 2 == 0 else [(plain, without), (signed, with_r)]
                        for (body, headers), sink in order:
                            sink.append(post(conn, name, body, headers)[0])
                    added = statistics.median(w - o for w, o in zip(with_r, without))
                    rounds.append(added)
                    print(f"{name} round {r + 1}: without {statistics.median(without):.3f} ms, with {statistics.median(with_r):.3f} ms, "
                          f"added {added:+.3f} ms (median of {args.runs} pairs)", flush=True)
                conn.close()
                print(f"{name}: receipt adds {statistics.median(rounds):+.3f} ms per inference (median of {args.rounds} round medians)\n")
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
