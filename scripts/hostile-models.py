#!/usr/bin/env python3
"""Regression models for the traps of the hardening issue (item 2 and the DFT trap), run against a release build.

    scripts/hostile-models.py --blindai .build/release/blindai [--keep DIR]

Each case is a small ONNX model (made here with onnx.helper) and, when the trap came from a request, the input
that triggered it. Every case is checked three ways:
  1. `blindai run MODEL --input ...` must exit with status 1 and print an error with a stable code, or succeed
     where the model is valid (never die from a signal);
  2. uploaded to a live `blindai serve --tee simulated` (loopback), the model is refused with a clear error or
     loaded; then the request is answered with an error (or the right answer), never a dropped connection;
  3. after every case the server still answers its readiness check and a control model still predicts.
A trap in the release binary shows as a signal in step 1 and as a dead server in steps 2-3.
Prints one line per check and 'N passed, N failed' at the end; exit status 1 if anything failed.
"""
import argparse
import http.client
import os
import subprocess
import sys
import tempfile

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from serverkit import EmptyTensor, Server, decode_response

I64_MAX = 2**63 - 1
I64_MIN = -(2**63)
I32_MAX = 2**31 - 1


def model(nodes, inputs, outputs, initializers=(), opset=18, domain_opsets=()):
    graph = helper.make_graph(nodes, "hostile", inputs, outputs, initializer=list(initializers))
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in domain_opsets]
    m = helper.make_model(graph, opset_imports=opsets, ir_version=8)
    return m.SerializeToString()


def vi(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def cases():
    """(name, model bytes, inputs {name: array}, what the engine must answer: an error code, or 'ok')."""
    c = []
    huge_empty = (0, I32_MAX, I32_MAX, I32_MAX)
    # 2a. An empty tensor with huge dimensions sent to a single Transpose (strides overflow).
    c.append(("transpose_empty_huge_dims",
              model([helper.make_node("Transpose", ["x"], ["y"], perm=[3, 2, 1, 0])],
                    [vi("x", TensorProto.FLOAT, ["a", "b", "c", "d"])], [vi("y", TensorProto.FLOAT, None)]),
              {"x": EmptyTensor(huge_empty)}, "memory_limit"))
    for op, extra in [("Flatten", {"axis": 2}), ("DepthToSpace", {"blocksize": 2}), ("Split", {"axis": 1, "num_outputs": 2}),
                      ("Det", {})]:
        outs = ["y", "z"] if op == "Split" else ["y"]
        c.append((f"{op.lower()}_empty_huge_dims",
                  model([helper.make_node(op, ["x"], outs, **extra)],
                        [vi("x", TensorProto.FLOAT, ["a", "b", "c", "d"])], [vi(o, TensorProto.FLOAT, None) for o in outs]),
                  {"x": EmptyTensor(huge_empty)}, "memory_limit"))
    c.append(("slice_empty_huge_dims",
              model([helper.make_node("Slice", ["x", "s", "e"], ["y"])],
                    [vi("x", TensorProto.FLOAT, ["a", "b", "c", "d"])], [vi("y", TensorProto.FLOAT, None)],
                    [numpy_helper.from_array(np.array([0], np.int64), "s"), numpy_helper.from_array(np.array([1], np.int64), "e")]),
              {"x": EmptyTensor(huge_empty)}, "memory_limit"))
    c.append(("concat_empty_huge_dims",
              model([helper.make_node("Concat", ["x", "x"], ["y"], axis=1)],
                    [vi("x", TensorProto.FLOAT, ["a", "b", "c", "d"])], [vi("y", TensorProto.FLOAT, None)]),
              {"x": EmptyTensor(huge_empty)}, "memory_limit"))
    # 2a. A constant ConstantOfShape([0, 2^62, 4]) feeding a Flatten: folded at upload.
    c.append(("constant_of_shape_flatten_at_load",
              model([helper.make_node("ConstantOfShape", ["s"], ["c"]),
                     helper.make_node("Flatten", ["c"], ["f"], axis=2),
                     helper.make_node("Shape", ["f"], ["y"])],
                    [], [vi("y", TensorProto.INT64, None)],
                    [numpy_helper.from_array(np.array([0, 2**62, 4], np.int64), "s")]),
              {}, "ok"))  # the optimised plan answers [0, 4] from shape facts; loading must simply not trap
    # 2b. Range with int64 inputs from INT64_MAX down to INT64_MIN, and float inputs whose count is -inf.
    c.append(("range_int64_extremes",
              model([helper.make_node("Range", ["s", "l", "d"], ["y"])],
                    [vi("s", TensorProto.INT64, []), vi("l", TensorProto.INT64, []), vi("d", TensorProto.INT64, [])],
                    [vi("y", TensorProto.INT64, None)]),
              {"s": np.array(I64_MAX, np.int64), "l": np.array(I64_MIN, np.int64), "d": np.array(1, np.int64)}, "ok"))
    c.append(("range_float_infinite_count",
              model([helper.make_node("Range", ["s", "l", "d"], ["y"])],
                    [vi("s", TensorProto.FLOAT, []), vi("l", TensorProto.FLOAT, []), vi("d", TensorProto.FLOAT, [])],
                    [vi("y", TensorProto.FLOAT, None)]),
              {"s": np.array(3e38, np.float32), "l": np.array(-3e38, np.float32), "d": np.array(1e-38, np.float32)}, "ok"))
    # 2c. Resize with keep_aspect_ratio_policy and a huge size.
    c.append(("resize_keep_aspect_ratio_huge",
              model([helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], keep_aspect_ratio_policy="not_smaller", axes=[2, 3])],
                    [vi("x", TensorProto.FLOAT, [1, 1, 2, 2]), vi("sizes", TensorProto.INT64, [2])], [vi("y", TensorProto.FLOAT, None)]),
              {"x": np.ones((1, 1, 2, 2), np.float32), "sizes": np.array([2**62, 1], np.int64)}, "memory_limit"))
    # 2c. Col2Im whose block sizes multiply past Int.
    c.append(("col2im_block_product_overflow",
              model([helper.make_node("Col2Im", ["x", "image", "block"], ["y"])],
                    [vi("x", TensorProto.FLOAT, [1, 1, 1])], [vi("y", TensorProto.FLOAT, None)],
                    [numpy_helper.from_array(np.array([I32_MAX, I32_MAX, I32_MAX], np.int64), "image"),
                     numpy_helper.from_array(np.array([I32_MAX, I32_MAX, I32_MAX], np.int64), "block")]),
              {"x": np.ones((1, 1, 1), np.float32)}, "invalid_argument"))
    # 2c. AffineGrid with an empty batch and huge spatial sizes.
    c.append(("affine_grid_empty_batch_huge_size",
              model([helper.make_node("AffineGrid", ["theta", "size"], ["y"])],
                    [vi("theta", TensorProto.FLOAT, [0, 2, 3]), vi("size", TensorProto.INT64, [4])], [vi("y", TensorProto.FLOAT, None)],
                    opset=20),
              {"theta": np.zeros((0, 2, 3), np.float32), "size": np.array([0, 1, I32_MAX, I32_MAX], np.int64)}, "memory_limit"))
    # 2c. Conv with group 2^62 (w[1] * group overflows).
    c.append(("conv_group_2_62",
              model([helper.make_node("Conv", ["x", "w"], ["y"], group=2**62)],
                    [vi("x", TensorProto.FLOAT, [1, 4, 4, 4])], [vi("y", TensorProto.FLOAT, None)],
                    [numpy_helper.from_array(np.ones((4, 4, 3, 3), np.float32), "w")]),
              {"x": np.ones((1, 4, 4, 4), np.float32)}, "invalid_model"))
    c.append(("conv_transpose_group_2_62",
              model([helper.make_node("ConvTranspose", ["x", "w"], ["y"], group=2**62)],
                    [vi("x", TensorProto.FLOAT, [1, 4, 4, 4])], [vi("y", TensorProto.FLOAT, None)],
                    [numpy_helper.from_array(np.ones((4, 4, 3, 3), np.float32), "w")]),
              {"x": np.ones((1, 4, 4, 4), np.float32)}, "invalid_model"))
    # 2c. RoiAlign with output sizes 2^40.
    c.append(("roialign_output_2_40",
              model([helper.make_node("RoiAlign", ["x", "rois", "bi"], ["y"], output_height=2**40, output_width=2**40)],
                    [vi("x", TensorProto.FLOAT, [1, 1, 4, 4])], [vi("y", TensorProto.FLOAT, None)],
                    [numpy_helper.from_array(np.array([[0, 0, 2, 2]], np.float32), "rois"),
                     numpy_helper.from_array(np.array([0], np.int64), "bi")]),
              {"x": np.ones((1, 1, 4, 4), np.float32)}, "invalid_model"))
    # 2c. TfIdfVectorizer with ngram_indexes INT64_MAX, and with max_skip_count INT64_MAX.
    c.append(("tfidf_ngram_index_int64_max",
              model([helper.make_node("TfIdfVectorizer", ["x"], ["y"], mode="TF", min_gram_length=1, max_gram_length=1,
                                      max_skip_count=0, ngram_counts=[0], ngram_indexes=[I64_MAX], pool_int64s=[7])],
                    [vi("x", TensorProto.INT64, [4])], [vi("y", TensorProto.FLOAT, None)], opset=9),
              {"x": np.array([7, 7, 1, 2], np.int64)}, "invalid_model"))
    c.append(("tfidf_max_skip_int64_max",
              model([helper.make_node("TfIdfVectorizer", ["x"], ["y"], mode="TF", min_gram_length=2, max_gram_length=2,
                                      max_skip_count=I64_MAX, ngram_counts=[0, 0], ngram_indexes=[0], pool_int64s=[7, 1])],
                    [vi("x", TensorProto.INT64, [4])], [vi("y", TensorProto.FLOAT, None)], opset=9),
              {"x": np.array([7, 3, 1, 2], np.int64)}, "ok"))
    # 2d. Shape inference at upload: a declared dimension of INT64_MAX feeding Concat, Split, Conv and pooling.
    c.append(("declared_int64_max_concat",
              model([helper.make_node("Concat", ["x", "x"], ["y"], axis=0)],
                    [vi("x", TensorProto.FLOAT, [I64_MAX])], [vi("y", TensorProto.FLOAT, None)]),
              {"x": np.ones((3,), np.float32)}, "shape_mismatch"))  # loads; the declared size refuses the feed
    c.append(("declared_int64_max_pool",
              model([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], pads=[1, 1, 1, 1]),
                     helper.make_node("Conv", ["x", "w"], ["z"], pads=[1, 1, 1, 1]),
                     helper.make_node("Split", ["x"], ["s1", "s2"], axis=3, num_outputs=2)],
                    [vi("x", TensorProto.FLOAT, [1, 1, I64_MAX, I64_MAX])],
                    [vi("y", TensorProto.FLOAT, None), vi("z", TensorProto.FLOAT, None),
                     vi("s1", TensorProto.FLOAT, None), vi("s2", TensorProto.FLOAT, None)],
                    [numpy_helper.from_array(np.ones((1, 1, 3, 3), np.float32), "w")]),
              {"x": np.ones((1, 1, 4, 4), np.float32)}, "shape_mismatch"))
    # 2e. ArrayFeatureExtractor over an empty tensor with huge dimensions.
    c.append(("array_feature_extractor_empty_huge",
              model([helper.make_node("ArrayFeatureExtractor", ["x", "i"], ["y"], domain="ai.onnx.ml")],
                    [vi("x", TensorProto.FLOAT, ["a", "b", "c"]), vi("i", TensorProto.INT64, [1])],
                    [vi("y", TensorProto.FLOAT, None)], domain_opsets=[("ai.onnx.ml", 3)]),
              {"x": EmptyTensor((I32_MAX, I32_MAX, 0)), "i": np.array([0], np.int64)}, "memory_limit"))
    # 1. DFT (exclusivity trap in release builds), with a length of each transform kind.
    for n in (5, 16, 67, 96):
        c.append((f"dft_length_{n}",
                  model([helper.make_node("DFT", ["x", "", "a"], ["y"])],
                        [vi("x", TensorProto.FLOAT, [1, n, 2])], [vi("y", TensorProto.FLOAT, None)],
                        [numpy_helper.from_array(np.array(1, np.int64), "a")], opset=20),
                  {"x": np.random.default_rng(n).standard_normal((1, n, 2)).astype(np.float32)}, "ok"))
    # 1. Softmax over NaN and infinities (a trap was reported in the SIMD exp).
    c.append(("softmax_nan_inf",
              model([helper.make_node("Softmax", ["x"], ["y"], axis=-1)],
                    [vi("x", TensorProto.FLOAT, [2, 9])], [vi("y", TensorProto.FLOAT, None)]),
              {"x": np.array([[np.nan, np.inf, -np.inf, 0, 1, 2, 3, 4, 5], [np.inf] * 9], np.float32)}, "ok"))
    return c


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--blindai", default=".build/release/blindai")
    ap.add_argument("--keep", help="write the models and inputs to this directory")
    a = ap.parse_args()
    work = a.keep or tempfile.mkdtemp(prefix="blindai-hostile-")
    os.makedirs(work, exist_ok=True)
    passed = failed = 0

    def check(name, ok, detail=""):
        nonlocal passed, failed
        print(("ok   " if ok else "FAIL ") + name + ("" if ok or not detail else f": {detail}"))
        passed, failed = passed + bool(ok), failed + (not ok)

    control = model([helper.make_node("Add", ["x", "x"], ["y"])], [vi("x", TensorProto.FLOAT, [2])], [vi("y", TensorProto.FLOAT, None)])
    server = Server(a.blindai, work)
    try:
        status, _ = server.upload("control", control)
        check("control model uploads", status in (200, 201), status)
        for name, data, inputs, expect in cases():
            path = os.path.join(work, name + ".onnx")
            with open(path, "wb") as f:
                f.write(data)
            args = [a.blindai, "run", path]
            for k, v in inputs.items():
                p = os.path.join(work, f"{name}.{k}.npy")
                v.save_npy(p) if isinstance(v, EmptyTensor) else np.save(p, v)
                args += ["--input", f"{k}={p}"]
            try:
                r = subprocess.run(args + ["--output-dir", os.path.join(work, name + ".out")], capture_output=True, text=True,
                                   timeout=120)
            except subprocess.TimeoutExpired:
                r = subprocess.CompletedProcess(args, -9, "", "did not finish within 120 s")
            said = (r.stdout + r.stderr).strip().splitlines()
            last = said[-1] if said else ""
            if expect == "ok":
                check(f"run {name}: runs", r.returncode == 0, f"exit {r.returncode}: {last}")
            else:
                check(f"run {name}: refused with {expect}", r.returncode == 1 and expect in r.stdout + r.stderr,
                      f"exit {r.returncode}: {last}")
            # The same model uploaded to the live server, then the same inputs as a request.
            try:
                status, body = server.upload(name, data)
            except (OSError, http.client.HTTPException) as e:  # the upload itself took the server down
                status, body = -1, repr(e).encode()
            loaded = status in (200, 201)
            if not loaded:
                check(f"serve {name}: upload refused with a clear error", 400 <= status < 500 and b"error" in body, f"{status} {body[:200]!r}")
            elif inputs or expect == "ok":
                try:
                    status, body = server.infer(name, inputs)
                except (OSError, http.client.HTTPException) as e:
                    status, body = -1, repr(e).encode()
                if expect == "ok":
                    check(f"serve {name}: answered", status == 200, f"{status} {body[:200]!r}")
                else:
                    check(f"serve {name}: request refused with {expect}", 400 <= status < 500 and expect.encode() in body,
                          f"{status} {body[:200]!r}")
            else:
                check(f"serve {name}: upload refused", False, f"loaded although the engine refuses it ({expect})")
            alive = server.alive()
            check(f"serve {name}: server still serving", alive)
            if not alive:
                # A trap took the server down (and every model with it): start another to check the other cases.
                server.stop()
                server = Server(a.blindai, work)
                server.upload("control", control)
                continue
            if loaded:
                server.unload(name)
        try:
            status, body = server.infer("control", {"x": np.array([1.5, -2], np.float32)})
        except (OSError, http.client.HTTPException) as e:
            status, body = -1, repr(e).encode()
        check("control model still predicts", status == 200 and decode_response(body)["y"].tolist() == [3.0, -4.0],
              f"{status} {body[:200]!r}")
    finally:
        server.stop()
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
