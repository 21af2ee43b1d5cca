#!/usr/bin/env python3
"""Whole-model parity fixtures: real model architectures exported to ONNX, with onnxruntime's outputs.

Writes, for every model, the ONNX backend-test layout that `blindai conformance DIR` reads:

    OUTDIR/<name>/model.onnx
    OUTDIR/<name>/test_data_set_0/input_<k>.pb     (TensorProto, .name = the graph input's name)
    OUTDIR/<name>/test_data_set_0/output_<k>.pb    (onnxruntime CPUExecutionProvider outputs)

plus OUTDIR/README.md and OUTDIR/fixtures.json (what was exported, which exports failed and why, sizes,
node counts, op types, and the numeric differences torch vs onnxruntime).

All weights are random (torch.manual_seed) and all inputs are random (numpy seed), so no download is needed
and the output is reproducible. Expected outputs come from onnxruntime with graph optimisations DISABLED
(ORT_DISABLE_ALL), so each node is computed by its own kernel as the ONNX spec defines it (this matters for
the quantized models, where ORT's fused int8 kernels can round differently from QuantizeLinear/DequantizeLinear
semantics); the report also gives the max |difference| against ORT's fully optimised run and against PyTorch.

Usage:
    scripts/install-fixture-deps.sh                      # once: CPU torch 2.13, torchvision 0.28, onnx 1.23.2, ...
    python3 scripts/make-parity-fixtures.py fixtures-large               # everything (resnet18, mobilenet_v3_small too)
    python3 scripts/make-parity-fixtures.py Tests/BlindAIEngineTests/Fixtures/parity --small-only   # the committed ones
    python3 scripts/make-parity-fixtures.py OUT --only bert2_ts,gpt2_ts  # a subset (comma-separated names)
    .build/debug/blindai conformance OUTDIR              # run them with the engine

Models (TorchScript exporter = torch.onnx.export(dynamo=False, opset 17); dynamo = torch.onnx.export(dynamo=True)):
    resnet18_{ts,dynamo}, mobilenet_v3_small_{ts,dynamo}  torchvision, input 1x3x224x224      (large, not committed)
    bert2_{ts,dynamo}          transformers BertModel, 2 layers, hidden 128, input_ids + attention_mask [2,16] int64
    gpt2_{ts,dynamo}           transformers GPT2Model, 2 layers, n_embd 128, use_cache=False, input_ids [2,16] int64
    bert2_int8_dynamic         onnxruntime.quantization.quantize_dynamic(bert2_ts)  (MatMulInteger, DynamicQuantizeLinear)
    cnn_small_ts               a small Conv/BN/ReLU/MaxPool/GlobalAvgPool/Gemm CNN, 1x3x32x32
    cnn_small_int8_qdq         quantize_static(cnn_small_ts, QDQ format, per-channel int8 weights, uint8 activations)
    rnn_lstm_gru_{ts,dynamo}   nn.LSTM (bidirectional) + nn.GRU + Linear, input [2,10,16]
    control_flow_ts            torch.jit.script'ed if/for -> ONNX If + Loop (two test data sets, both branches)
    control_flow_cond_dynamo   torch.cond -> ONNX If via the dynamo exporter
    embedding_int4_gbq, embedding_int8_gbq_fp16   com.microsoft GatherBlockQuantized (int4 + zero points / 8-bit float16)
                               + MatMul, written with onnx.helper; input_ids [2,16] and [1,3] int64
    linear_int4_matmulnbits, linear_int8_matmulnbits_fp16   com.microsoft MatMulNBits (4-bit + zero points float32 /
                               8-bit float16) + bias, written with onnx.helper; a [2,5,96] and [1,1,96]
A failed export is recorded in the report (and the process still exits 0 unless --strict is given).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

SEED = 0
TS_OPSET = 17

# --------------------------------------------------------------------------------------------------------------
# imports that need care


def import_torch():
    import torch

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    return torch


def import_torchvision():
    """PyPI's torchvision cannot load its C++ ops against the CPU torch wheel; its Python side registers fake
    (meta) kernels for torchvision::nms and ::qnms at import time, which fails unless the schemas exist.
    Classification models never call them, so defining the bare schemas is enough."""
    import torch

    for op in ("nms", "qnms"):
        try:
            torch.library.define(f"torchvision::{op}", "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        except RuntimeError:
            pass  # already defined (the real C++ ops loaded, or we ran twice)
    import torchvision

    return torchvision


def import_transformers():
    """transformers imports torchvision (image utils) when it is installed: register the schemas first."""
    import_torchvision()
    import transformers

    return transformers


# --------------------------------------------------------------------------------------------------------------
# model definitions: each returns (module, example inputs as numpy dict, input names, output names, dynamic axes)


@dataclass
class Built:
    module: object
    inputs: list[dict[str, np.ndarray]]  # one dict per test data set; the first is the export example
    input_names: list[str]
    output_names: list[str]
    dynamic_axes: dict[str, dict[int, str]] | None = None
    notes: str = ""
    # tried when the export of `module` fails: (description, builder of the workaround model)
    fallback: tuple[str, Callable[[], "Built"]] | None = None


def rng(seed: int = SEED) -> np.random.RandomState:
    return np.random.RandomState(seed)


def build_torchvision(name: str) -> Built:
    torch = import_torch()
    tv = import_torchvision()
    torch.manual_seed(SEED)
    m = getattr(tv.models, name)(weights=None).eval()
    x = rng().rand(1, 3, 224, 224).astype(np.float32)
    # normalise like ImageNet preprocessing, so activations are in a realistic range
    x = (x - 0.45) / 0.225
    return Built(m, [{"input": x.astype(np.float32)}], ["input"], ["logits"], {"input": {0: "batch"}, "logits": {0: "batch"}})


def bert_inputs(vocab: int) -> dict[str, np.ndarray]:
    r = rng()
    ids = r.randint(0, vocab, size=(2, 16)).astype(np.int64)
    mask = np.ones((2, 16), dtype=np.int64)
    mask[1, 11:] = 0  # the second sequence is padded: exercises the attention mask
    ids[1, 11:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def build_bert() -> Built:
    torch = import_torch()
    import_transformers()
    from transformers import BertConfig, BertModel

    cfg = BertConfig(
        vocab_size=1000,
        hidden_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=256,
        max_position_embeddings=64,
        type_vocab_size=2,
    )
    torch.manual_seed(SEED)
    bert = BertModel(cfg).eval()

    class Bert(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask):
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask)
            return out.last_hidden_state, out.pooler_output

    axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
            "last_hidden_state": {0: "batch", 1: "seq"}, "pooler_output": {0: "batch"}}
    return Built(Bert().eval(), [bert_inputs(cfg.vocab_size)], ["input_ids", "attention_mask"],
                 ["last_hidden_state", "pooler_output"], axes, f"attn_implementation={bert.config._attn_implementation}")


def build_gpt2(explicit_mask: bool = False) -> Built:
    """GPT2Model(input_ids). With transformers 5, calling it without an attention mask goes through
    masking_utils.find_packed_sequence_indices, which uses torch.diff: the TorchScript exporter has no symbolic
    for aten::diff. The fallback passes attention_mask=ones_like(input_ids) inside the wrapper (same outputs,
    still the single input input_ids), which skips that code path."""
    torch = import_torch()
    import_transformers()
    from transformers import GPT2Config, GPT2Model

    cfg = GPT2Config(vocab_size=1000, n_positions=64, n_embd=128, n_layer=2, n_head=2, use_cache=False,
                     bos_token_id=0, eos_token_id=0)
    torch.manual_seed(SEED)
    gpt = GPT2Model(cfg).eval()

    class GPT2(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gpt = gpt

        def forward(self, input_ids):
            mask = torch.ones_like(input_ids) if explicit_mask else None
            return self.gpt(input_ids=input_ids, attention_mask=mask, use_cache=False).last_hidden_state

    ids = rng().randint(0, cfg.vocab_size, size=(2, 16)).astype(np.int64)
    axes = {"input_ids": {0: "batch", 1: "seq"}, "last_hidden_state": {0: "batch", 1: "seq"}}
    notes = f"attn_implementation={gpt.config._attn_implementation}"
    fallback = None if explicit_mask else (
        "attention_mask=ones_like(input_ids) inside the wrapper", lambda: build_gpt2(explicit_mask=True))
    return Built(GPT2().eval(), [{"input_ids": ids}], ["input_ids"], ["last_hidden_state"], axes, notes, fallback)


def build_cnn() -> Built:
    torch = import_torch()
    nn = torch.nn

    class SmallCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.ReLU(),
            )
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(32, 10)

        def forward(self, x):
            return self.fc(torch.flatten(self.pool(self.features(x)), 1))

    torch.manual_seed(SEED)
    m = SmallCNN()
    # give BatchNorm non-trivial running statistics, as a trained model would have
    with torch.no_grad():
        for bn in (m.features[1], m.features[5]):
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 1.5)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.1, 0.1)
    m.eval()
    x = rng().randn(1, 3, 32, 32).astype(np.float32)
    return Built(m, [{"input": x}], ["input"], ["logits"], {"input": {0: "batch"}, "logits": {0: "batch"}})


def build_rnn() -> Built:
    torch = import_torch()
    nn = torch.nn

    class RNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(16, 32, num_layers=1, batch_first=True, bidirectional=True)
            self.gru = nn.GRU(64, 32, num_layers=1, batch_first=True)
            self.fc = nn.Linear(32, 5)

        def forward(self, x):
            y, _ = self.lstm(x)
            z, _ = self.gru(y)
            return self.fc(z[:, -1]), z

    torch.manual_seed(SEED)
    m = RNN().eval()
    x = rng().randn(2, 10, 16).astype(np.float32)
    axes = {"x": {0: "batch", 1: "seq"}, "logits": {0: "batch"}, "sequence": {0: "batch", 1: "seq"}}
    return Built(m, [{"x": x}], ["x"], ["logits", "sequence"], axes)


def build_control_flow_script() -> Built:
    torch = import_torch()

    class ControlFlow(torch.nn.Module):
        def __init__(self):
            super().__init__()
            g = torch.Generator().manual_seed(SEED)
            self.w = torch.nn.Parameter(torch.randn(8, 8, generator=g) * 0.3)

        def forward(self, x: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
            if bool(x.sum() > 0):
                y = x * 2.0
            else:
                y = x - 1.0
            for _ in range(int(n)):
                y = torch.tanh(torch.matmul(y, self.w)) + y
            return y

    torch.manual_seed(SEED)
    m = torch.jit.script(ControlFlow().eval())
    r = rng()
    x0 = (np.abs(r.randn(3, 8)) + 0.1).astype(np.float32)  # sum > 0: then-branch
    x1 = (-np.abs(r.randn(3, 8)) - 0.1).astype(np.float32)  # sum < 0: else-branch
    sets = [{"x": x0, "n": np.array(3, dtype=np.int64)}, {"x": x1, "n": np.array(5, dtype=np.int64)}]
    return Built(m, sets, ["x", "n"], ["y"], {"x": {0: "rows"}, "y": {0: "rows"}},
                 "two test data sets: the If's then- and else-branch, loop trip counts 3 and 5")


def build_control_flow_cond() -> Built:
    torch = import_torch()

    class Cond(torch.nn.Module):
        def __init__(self):
            super().__init__()
            g = torch.Generator().manual_seed(SEED)
            self.w = torch.nn.Parameter(torch.randn(8, 8, generator=g) * 0.3)

        def forward(self, x):
            def then_fn(x):
                return torch.tanh(x @ self.w) * 2.0

            def else_fn(x):
                return torch.relu(x @ self.w) - 1.0

            return torch.cond(x.sum() > 0, then_fn, else_fn, (x,))

    torch.manual_seed(SEED)
    r = rng()
    x0 = (np.abs(r.randn(3, 8)) + 0.1).astype(np.float32)
    x1 = (-np.abs(r.randn(3, 8)) - 0.1).astype(np.float32)
    return Built(Cond().eval(), [{"x": x0}, {"x": x1}], ["x"], ["y"], None,
                 "two test data sets: then- and else-branch")


# --------------------------------------------------------------------------------------------------------------
# export, quantization


def build_embedding_gbq(bits: int, scale_type: str, zero_points: bool) -> Built:
    """A block-quantized token embedding as int4/int8 LLM exports store it (onnxruntime's MatMulNBits layout):
    com.microsoft GatherBlockQuantized over uint8 data holding 8/bits values per byte, block 32, then a MatMul.
    Written directly with onnx.helper (no exporter produces this operator from a torch module)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    r = rng()
    vocab, hidden, block, out = 50, 64, 32, 8
    per_byte = 8 // bits
    q = r.randint(0, 1 << bits, size=(vocab, hidden))
    packed = np.zeros((vocab, hidden // per_byte), dtype=np.uint8)
    for k in range(per_byte):
        packed |= (q[:, k::per_byte] << (k * bits)).astype(np.uint8)
    np_scale = np.float16 if scale_type == "float16" else np.float32
    scales = (r.rand(vocab, hidden // block) * 0.1 + 0.01).astype(np_scale)
    inits = [numpy_helper.from_array(packed, "embed.data"), numpy_helper.from_array(scales, "embed.scales"),
             numpy_helper.from_array(r.randn(hidden, out).astype(np_scale), "proj.weight")]
    inputs = ["embed.data", "input_ids", "embed.scales"]
    if zero_points:
        zq = r.randint(0, 1 << bits, size=(vocab, hidden // block))
        zp = np.zeros((vocab, (hidden // block + per_byte - 1) // per_byte), dtype=np.uint8)
        for k in range(per_byte):
            cols = zq[:, k::per_byte]
            zp[:, :cols.shape[1]] |= (cols << (k * bits)).astype(np.uint8)
        inits.append(numpy_helper.from_array(zp, "embed.zero_points"))
        inputs.append("embed.zero_points")
    elem = TensorProto.FLOAT16 if scale_type == "float16" else TensorProto.FLOAT
    nodes = [
        helper.make_node("GatherBlockQuantized", inputs, ["hidden"], domain="com.microsoft", gather_axis=0, quantize_axis=1,
                         block_size=block, bits=bits),
        helper.make_node("MatMul", ["hidden", "proj.weight"], ["logits"]),
    ]
    graph = helper.make_graph(nodes, "embedding_gbq", [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"])],
                              [helper.make_tensor_value_info("logits", elem, ["batch", "sequence", out])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    ids = [r.randint(0, vocab, size=(2, 16)).astype(np.int64), np.array([[0, vocab - 1, 7]], dtype=np.int64)]
    return Built(model, [{"input_ids": i} for i in ids], ["input_ids"], ["logits"])


def build_matmul_nbits(bits: int, zero_points: bool, dtype: str) -> Built:
    """A block-quantized linear layer as int4/int8 LLM exports write it: com.microsoft MatMulNBits (W [N, K] in blocks
    of 32 along K, 8/bits values per byte, low bits first; scales per block; optional packed uint8 zero points) on
    A [batch, sequence, K], then Add of a bias. Written with onnx.helper."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    r = rng()
    k, n, block = 96, 80, 32
    per_byte, k_blocks = 8 // bits, k // 32
    q = r.randint(0, 1 << bits, size=(n, k))
    packed = np.zeros((n, k_blocks, block // per_byte), dtype=np.uint8)
    for blk in range(k_blocks):
        for i in range(per_byte):
            packed[:, blk, :] |= (q[:, blk * block + i:(blk + 1) * block:per_byte] << (i * bits)).astype(np.uint8)
    np_t = np.float16 if dtype == "float16" else np.float32
    elem = TensorProto.FLOAT16 if dtype == "float16" else TensorProto.FLOAT
    scales = (r.rand(n * k_blocks) * 0.05 + 0.005).astype(np_t)
    inits = [numpy_helper.from_array(packed, "w.q"), numpy_helper.from_array(scales, "w.scales"),
             numpy_helper.from_array(r.randn(n).astype(np_t), "bias")]
    inputs = ["a", "w.q", "w.scales"]
    if zero_points:
        zq = r.randint(0, 1 << bits, size=(n, k_blocks))
        zp_bytes = (k_blocks + per_byte - 1) // per_byte
        zp = np.zeros((n, zp_bytes), dtype=np.uint8)
        for blk in range(k_blocks):
            zp[:, blk // per_byte] |= (zq[:, blk] << ((blk % per_byte) * bits)).astype(np.uint8)
        inits.append(numpy_helper.from_array(zp.reshape(-1), "w.zero_points"))
        inputs.append("w.zero_points")
    nodes = [
        helper.make_node("MatMulNBits", inputs, ["h"], domain="com.microsoft", K=k, N=n, bits=bits, block_size=block),
        helper.make_node("Add", ["h", "bias"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "matmul_nbits", [helper.make_tensor_value_info("a", elem, ["batch", "sequence", k])],
                              [helper.make_tensor_value_info("y", elem, ["batch", "sequence", n])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    feeds = [r.randn(2, 5, k).astype(np_t), r.randn(1, 1, k).astype(np_t)]
    return Built(model, [{"a": f} for f in feeds], ["a"], ["y"])


@contextlib.contextmanager
def quiet():
    """Silences stdout/stderr, at the file-descriptor level too: the TorchScript exporter dumps the whole IR graph
    on failure and the dynamo exporter prints progress. Errors still propagate as exceptions."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved + [devnull]:
            os.close(fd)


def export_torchscript(b: Built, path: str) -> str:
    torch = import_torch()
    args = tuple(torch.from_numpy(v) for v in b.inputs[0].values())
    with quiet():
        torch.onnx.export(
            b.module, args, path, dynamo=False, opset_version=TS_OPSET,
            input_names=b.input_names, output_names=b.output_names, dynamic_axes=b.dynamic_axes,
            do_constant_folding=True,
        )
    return ""


def export_dynamo(b: Built, path: str) -> str:
    """Returns a note (e.g. that dynamic shapes had to be dropped)."""
    torch = import_torch()
    args = tuple(torch.from_numpy(v) for v in b.inputs[0].values())
    note = ""
    attempts = [b.dynamic_axes, None] if b.dynamic_axes else [None]
    last: Exception | None = None
    for axes in attempts:
        try:
            with quiet():
                prog = torch.onnx.export(
                    b.module, args, dynamo=True, input_names=b.input_names, output_names=b.output_names,
                    dynamic_axes=axes, external_data=False, optimize=True,
                )
            prog.save(path, external_data=False)
            if axes is None and b.dynamic_axes:
                note = f"dynamic axes failed ({short(last)}); exported with static shapes"
            return note
        except Exception as e:  # noqa: BLE001
            last = e
    assert last is not None
    raise last


def quantize_dynamic_from(src: str, path: str) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(src, path, weight_type=QuantType.QInt8)


def quantize_static_qdq_from(src: str, path: str, b: Built) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            r = rng(SEED + 1)
            shape = b.inputs[0]["input"].shape
            self.data = iter([{"input": r.randn(*shape).astype(np.float32)} for _ in range(16)])

        def get_next(self):
            return next(self.data, None)

    with tempfile.TemporaryDirectory() as tmp:
        pre = os.path.join(tmp, "pre.onnx")
        quant_pre_process(src, pre, skip_symbolic_shape=True)
        quantize_static(
            pre, path, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
        )


# --------------------------------------------------------------------------------------------------------------
# running, writing


def short(e: BaseException | None, limit: int = 300) -> str:
    if e is None:
        return ""
    s = f"{type(e).__name__}: {e}".strip().replace("\n", " ")
    return s if len(s) <= limit else s[: limit - 3] + "..."


def ort_run(path: str, feeds: dict[str, np.ndarray], optimized: bool) -> list[np.ndarray]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimized else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    missing = [n for n in names if n not in feeds]
    if missing:
        raise RuntimeError(f"model inputs {missing} not in the feeds {list(feeds)}")
    return sess.run(None, {n: feeds[n] for n in names})


def torch_run(b: Built, feeds: dict[str, np.ndarray]) -> list[np.ndarray] | None:
    torch = import_torch()
    try:
        with torch.no_grad():
            out = b.module(*[torch.from_numpy(feeds[n]) for n in b.input_names])
        if isinstance(out, torch.Tensor):
            out = (out,)
        return [o.detach().numpy() for o in out]
    except Exception:  # noqa: BLE001
        return None


def max_abs_diff(a: list[np.ndarray], b: list[np.ndarray] | None) -> float | None:
    if b is None or len(a) != len(b):
        return None
    m = 0.0
    for x, y in zip(a, b):
        if x.shape != y.shape:
            return float("inf")
        if x.size:
            m = max(m, float(np.max(np.abs(x.astype(np.float64) - y.astype(np.float64)))))
    return m


def op_types(model) -> tuple[int, dict[str, int], set[str]]:
    """Node count (including subgraphs), op type -> count, and domains used."""
    import onnx

    counts: dict[str, int] = {}
    domains: set[str] = set()
    total = 0

    def walk(g):
        nonlocal total
        for n in g.node:
            total += 1
            key = n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}.{n.op_type}"
            counts[key] = counts.get(key, 0) + 1
            domains.add(n.domain or "ai.onnx")
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    walk(a.g)
                elif a.type == onnx.AttributeProto.GRAPHS:
                    for sg in a.graphs:
                        walk(sg)

    walk(model.graph)
    for f in model.functions:  # local functions (dynamo exporter may emit some)
        walk(f)
    return total, dict(sorted(counts.items())), domains


def strip_stack_traces(model) -> None:
    """The dynamo exporter records each node's Python stack trace (absolute paths of this machine, line numbers of
    this script) in node metadata_props: drop that key, so fixtures are reproducible. Other metadata stays (real
    exported models carry it, and the engine must ignore it)."""
    import onnx

    def walk(g):
        for n in g.node:
            keep = [p for p in n.metadata_props if p.key != "pkg.torch.onnx.stack_trace"]
            if len(keep) != len(n.metadata_props):
                del n.metadata_props[:]
                n.metadata_props.extend(keep)
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    walk(a.g)
                elif a.type == onnx.AttributeProto.GRAPHS:
                    for sg in a.graphs:
                        walk(sg)

    walk(model.graph)
    for f in model.functions:
        walk(f)


def write_case(outdir: str, name: str, model_path: str, feeds_list: list[dict[str, np.ndarray]]) -> tuple[list[list[np.ndarray]], list[list[np.ndarray]]]:
    """Copies the model to OUTDIR/name/model.onnx and writes one test_data_set per feeds dict.
    Returns (expected outputs per set (ORT unoptimised), ORT optimised outputs per set)."""
    import onnx
    from onnx import numpy_helper

    case = os.path.join(outdir, name)
    if os.path.exists(case):
        shutil.rmtree(case)
    os.makedirs(case)
    dst = os.path.join(case, "model.onnx")
    model = onnx.load(model_path)  # also pulls in external data, if any
    strip_stack_traces(model)
    onnx.save_model(model, dst, save_as_external_data=False)
    onnx.checker.check_model(dst)
    graph_inputs = [i.name for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    graph_outputs = [o.name for o in model.graph.output]
    expected_all, optimized_all = [], []
    for k, feeds in enumerate(feeds_list):
        expected = ort_run(dst, feeds, optimized=False)
        optimized = ort_run(dst, feeds, optimized=True)
        d = os.path.join(case, f"test_data_set_{k}")
        os.makedirs(d)
        for i, n in enumerate(graph_inputs):
            with open(os.path.join(d, f"input_{i}.pb"), "wb") as f:
                f.write(numpy_helper.from_array(np.asarray(feeds[n], order="C"), n).SerializeToString())
        for i, (n, v) in enumerate(zip(graph_outputs, expected)):
            with open(os.path.join(d, f"output_{i}.pb"), "wb") as f:
                f.write(numpy_helper.from_array(np.asarray(v, order="C"), n).SerializeToString())
        expected_all.append(expected)
        optimized_all.append(optimized)
    return expected_all, optimized_all


@dataclass
class Result:
    name: str
    source: str
    exporter: str
    small: bool
    status: str = "ok"  # ok | failed
    error: str = ""
    export_error: str = ""  # the plain export failed, a documented workaround succeeded
    notes: str = ""
    opset: int | None = None
    size_bytes: int | None = None
    dir_bytes: int | None = None
    nodes: int | None = None
    ops: dict[str, int] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    diff_torch: float | None = None
    diff_ort_optimized: float | None = None
    seconds: float = 0.0


@dataclass
class Case:
    name: str
    source: str  # human description of the model
    exporter: str  # torchscript | dynamo | quantize_dynamic | quantize_static_qdq | onnx (an onnx.ModelProto)
    small: bool
    build: Callable[[], Built]
    from_case: str | None = None  # for quantization: the float case it quantizes


CASES = [
    Case("resnet18_ts", "torchvision resnet18", "torchscript", False, lambda: build_torchvision("resnet18")),
    Case("resnet18_dynamo", "torchvision resnet18", "dynamo", False, lambda: build_torchvision("resnet18")),
    Case("mobilenet_v3_small_ts", "torchvision mobilenet_v3_small", "torchscript", False, lambda: build_torchvision("mobilenet_v3_small")),
    Case("mobilenet_v3_small_dynamo", "torchvision mobilenet_v3_small", "dynamo", False, lambda: build_torchvision("mobilenet_v3_small")),
    Case("bert2_ts", "transformers BertModel 2 layers h128", "torchscript", True, build_bert),
    Case("bert2_dynamo", "transformers BertModel 2 layers h128", "dynamo", True, build_bert),
    Case("bert2_int8_dynamic", "bert2_ts quantize_dynamic int8", "quantize_dynamic", True, build_bert, "bert2_ts"),
    Case("gpt2_ts", "transformers GPT2Model 2 layers n_embd 128", "torchscript", True, build_gpt2),
    Case("gpt2_dynamo", "transformers GPT2Model 2 layers n_embd 128", "dynamo", True, build_gpt2),
    Case("cnn_small_ts", "small Conv/BN/ReLU CNN", "torchscript", True, build_cnn),
    Case("cnn_small_int8_qdq", "cnn_small_ts quantize_static QDQ", "quantize_static_qdq", True, build_cnn, "cnn_small_ts"),
    Case("rnn_lstm_gru_ts", "nn.LSTM(bidirectional) + nn.GRU + Linear", "torchscript", True, build_rnn),
    Case("rnn_lstm_gru_dynamo", "nn.LSTM(bidirectional) + nn.GRU + Linear", "dynamo", True, build_rnn),
    Case("control_flow_ts", "torch.jit.script if/for", "torchscript", True, build_control_flow_script),
    Case("control_flow_cond_dynamo", "torch.cond", "dynamo", True, build_control_flow_cond),
    Case("embedding_int4_gbq", "GatherBlockQuantized int4 + zero points, float32 scales, + MatMul", "onnx", True,
         lambda: build_embedding_gbq(4, "float32", True)),
    Case("embedding_int8_gbq_fp16", "GatherBlockQuantized 8-bit, float16 scales, + MatMul", "onnx", True,
         lambda: build_embedding_gbq(8, "float16", False)),
    Case("linear_int4_matmulnbits", "MatMulNBits 4-bit + zero points, float32, + bias", "onnx", True,
         lambda: build_matmul_nbits(4, True, "float32")),
    Case("linear_int8_matmulnbits_fp16", "MatMulNBits 8-bit, float16, + bias", "onnx", True,
         lambda: build_matmul_nbits(8, False, "float16")),
]


def run_case(c: Case, outdir: str, work: str, float_models: dict[str, str]) -> Result:
    import onnx

    r = Result(c.name, c.source, c.exporter, c.small)
    t0 = time.time()
    try:
        b = c.build()
        r.notes = b.notes
        tmp = os.path.join(work, c.name + ".onnx")
        if c.exporter in ("torchscript", "dynamo"):
            export = export_torchscript if c.exporter == "torchscript" else export_dynamo
            try:
                note = export(b, tmp)
            except Exception as e:  # noqa: BLE001
                if b.fallback is None:
                    raise
                desc, build = b.fallback
                r.export_error = short(e, 600)
                print(f"    plain export failed ({short(e, 200)}); retrying with workaround: {desc}", flush=True)
                b = build()
                note = export(b, tmp)
                note = "; ".join(x for x in (f"plain export FAILED ({short(e, 200)}); workaround: {desc}", note) if x)
            r.notes = "; ".join(x for x in (b.notes, note) if x)
        elif c.exporter == "onnx":
            import onnx

            onnx.save(b.module, tmp)
        elif c.exporter in ("quantize_dynamic", "quantize_static_qdq"):
            src = float_models.get(c.from_case or "")
            if src is None:
                raise RuntimeError(f"the float model {c.from_case} was not exported")
            if c.exporter == "quantize_dynamic":
                quantize_dynamic_from(src, tmp)
            else:
                quantize_static_qdq_from(src, tmp, b)
        else:
            raise ValueError(c.exporter)
        expected, optimized = write_case(outdir, c.name, tmp, b.inputs)
        float_models[c.name] = os.path.join(outdir, c.name, "model.onnx")
        model = onnx.load(os.path.join(outdir, c.name, "model.onnx"))
        r.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
        r.nodes, r.ops, _ = op_types(model)
        r.inputs = [f"{i.name}:{describe_type(i)}" for i in model.graph.input]
        r.outputs = [f"{o.name}:{describe_type(o)}" for o in model.graph.output]
        r.size_bytes = os.path.getsize(os.path.join(outdir, c.name, "model.onnx"))
        r.dir_bytes = dir_size(os.path.join(outdir, c.name))
        diffs_opt = [max_abs_diff(e, o) for e, o in zip(expected, optimized)]
        r.diff_ort_optimized = max((d for d in diffs_opt if d is not None), default=None)
        if c.exporter in ("torchscript", "dynamo"):
            diffs_torch = [max_abs_diff(e, torch_run(b, f)) for e, f in zip(expected, b.inputs)]
            if all(d is not None for d in diffs_torch):
                r.diff_torch = max(diffs_torch)  # type: ignore[type-var]
    except Exception as e:  # noqa: BLE001
        r.status = "failed"
        r.error = short(e, 600)
        tb = traceback.format_exc()
        print(f"--- {c.name} failed:\n{tb[-3000:]}", file=sys.stderr)
        shutil.rmtree(os.path.join(outdir, c.name), ignore_errors=True)
    r.seconds = round(time.time() - t0, 1)
    return r


def describe_type(v) -> str:
    import onnx

    t = v.type.tensor_type
    dims = ["?" if not (d.dim_param or d.HasField("dim_value")) else (d.dim_param or str(d.dim_value)) for d in t.shape.dim]
    return f"{onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name}[{','.join(dims)}]"


def dir_size(d: str) -> int:
    return sum(os.path.getsize(os.path.join(p, f)) for p, _, fs in os.walk(d) for f in fs)


def human(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.2e}"


def report(results: list[Result], outdir: str, argv: list[str]) -> str:
    import onnx
    import onnxruntime
    import torch

    try:
        import transformers

        tf_version = transformers.__version__
    except Exception:  # noqa: BLE001
        tf_version = "?"
    lines = [
        "# Whole-model parity fixtures",
        "",
        "Generated by `scripts/make-parity-fixtures.py` (see the top of that script for how to run it); do not edit by hand.",
        f"Command: `python3 scripts/make-parity-fixtures.py {' '.join(argv)}`",
        "",
        f"torch {torch.__version__}, transformers {tf_version}, onnx {onnx.__version__}, onnxruntime {onnxruntime.__version__}.",
        "Random weights (torch.manual_seed(0)) and random inputs (numpy seed 0). Expected outputs: onnxruntime",
        "CPUExecutionProvider with graph optimisations disabled. `vs torch` = max |ORT - PyTorch|;",
        "`vs ORT-opt` = max |ORT unoptimised - ORT ORT_ENABLE_ALL| (how much legitimate kernel/fusion rounding moves",
        "the outputs; the engine's conformance tolerance is atol 1e-4 + rtol 1e-3).",
        "",
        "| model | exporter | status | opset | model.onnx | nodes | vs torch | vs ORT-opt | inputs | outputs |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.exporter} | {r.status} | {r.opset or '-'} | {human(r.size_bytes)} | {r.nodes or '-'} | "
            f"{fmt(r.diff_torch)} | {fmt(r.diff_ort_optimized)} | {' '.join(r.inputs)} | {' '.join(r.outputs)} |"
        )
    lines += [
        "",
        "`digits_mlp/` (when present) is not made by this script: `scripts/train-digits.py --parity-fixture DIR/digits_mlp`",
        "writes it (the demo model, Flatten/Gemm/Relu, a batch of 8 held-out digits).",
        "`passing.txt` (when present) lists the models that must pass in `swift test` (ParityTests.swift).",
    ]
    lines += ["", "## Op types per model", ""]
    for r in results:
        if r.status == "ok":
            lines.append(f"- **{r.name}** ({r.source}): " + ", ".join(f"{k}×{v}" for k, v in r.ops.items()))
    all_ops: dict[str, list[str]] = {}
    for r in results:
        for k in r.ops:
            all_ops.setdefault(k, []).append(r.name)
    lines += ["", "## All op types used (op: models)", ""]
    for k in sorted(all_ops):
        lines.append(f"- {k}: {', '.join(all_ops[k])}")
    failed = [r for r in results if r.status != "ok" or r.export_error]
    lines += ["", "## Failed exports", ""]
    if not failed:
        lines.append("None.")
    for r in failed:
        if r.status != "ok":
            lines.append(f"- **{r.name}** ({r.exporter}): `{r.error}`")
        else:
            lines.append(f"- **{r.name}** ({r.exporter}): the plain export failed with `{r.export_error}`; "
                         "the fixture uses the workaround in the notes below")
    noted = [r for r in results if r.notes]
    if noted:
        lines += ["", "## Notes", ""]
        for r in noted:
            lines.append(f"- {r.name}: {r.notes}")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(outdir, "README.md"), "w") as f:
        f.write(text)
    with open(os.path.join(outdir, "fixtures.json"), "w") as f:
        # without the timings, so that regenerating unchanged fixtures leaves the file unchanged
        json.dump([{k: v for k, v in r.__dict__.items() if k != "seconds"} for r in results], f, indent=1, sort_keys=True)
        f.write("\n")
    return text


def print_table(results: list[Result]) -> None:
    w = max(len(r.name) for r in results)
    print(f"\n{'model':<{w}}  {'exporter':<19} {'status':<6} {'opset':>5} {'size':>9} {'nodes':>5} {'vs torch':>9} {'vs ORTopt':>9}  op types")
    for r in results:
        ops = ",".join(r.ops) if r.status == "ok" else r.error[:160]
        print(f"{r.name:<{w}}  {r.exporter:<19} {r.status:<6} {str(r.opset or '-'):>5} {human(r.size_bytes):>9} "
              f"{str(r.nodes or '-'):>5} {fmt(r.diff_torch):>9} {fmt(r.diff_ort_optimized):>9}  {ops}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("outdir")
    p.add_argument("--small-only", action="store_true", help="skip resnet18 and mobilenet_v3_small (the ones not committed)")
    p.add_argument("--only", help="comma-separated case names")
    p.add_argument("--strict", action="store_true", help="exit 1 if any export failed")
    args = p.parse_args()
    cases = [c for c in CASES if c.small or not args.small_only]
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - {c.name for c in CASES}
        if unknown:
            p.error(f"unknown cases: {sorted(unknown)}; known: {[c.name for c in CASES]}")
        # quantized cases need their float model
        needed = wanted | {c.from_case for c in CASES if c.name in wanted and c.from_case}
        cases = [c for c in CASES if c.name in needed]
    os.makedirs(args.outdir, exist_ok=True)
    results: list[Result] = []
    float_models: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as work:
        for c in cases:
            print(f"[{time.strftime('%H:%M:%S')}] {c.name} ...", flush=True)
            r = run_case(c, args.outdir, work, float_models)
            print(f"    {r.status} in {r.seconds}s {('- ' + r.error[:200]) if r.error else ''}", flush=True)
            results.append(r)
    print_table(results)
    report(results, args.outdir, sys.argv[1:])
    total = sum(r.dir_bytes or 0 for r in results)
    print(f"\ntotal fixture size: {human(total)}; report: {os.path.join(args.outdir, 'README.md')}")
    return 1 if args.strict and any(r.status != "ok" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
