#!/usr/bin/env python3
"""Trains the BlindAI demo model: a small MLP on scikit-learn's bundled `load_digits` (8x8 grey images of the
digits 0-9; bundled with scikit-learn, no download), and exports it to ONNX with only basic operators.

    scripts/install-fixture-deps.sh          # once (torch CPU, onnx, onnxruntime, scikit-learn)
    python3 scripts/train-digits.py          # writes demo/digits.onnx, demo/samples/*.npy, demo/README.md
    python3 scripts/train-digits.py --out demo --parity-fixture Tests/BlindAIEngineTests/Fixtures/parity/digits_mlp

    # then, with the engine:
    .build/debug/blindai run demo/digits.onnx --input image=demo/samples/digit_3_0.npy

Model: input "image" float32 [N,1,8,8] (dynamic batch N), pixel values scaled to [0,1] (the raw load_digits values
0..16 divided by 16; the samples are already scaled), -> Flatten -> Gemm(64,64) -> Relu -> Gemm(64,32) -> Relu
-> Gemm(32,10) -> output "logits" float32 [N,10] (argmax = the digit). Exported with the TorchScript exporter,
opset 17; the script checks that the graph only uses Flatten, Gemm and Relu.

Deterministic: fixed seeds (split random_state=0, torch.manual_seed(0)), one thread. The held-out test split
(25 %, stratified) is never used for training or model selection (a validation split taken from the training
part picks the epoch); the samples written to demo/samples/ come from the test split.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

ALLOWED_OPS = {"Flatten", "Gemm", "MatMul", "Add", "Relu", "Reshape"}


def main() -> int:
    p = argparse.ArgumentParser(description="Train and export the digits demo model.")
    p.add_argument("--out", default="demo", help="output folder (default: demo)")
    p.add_argument("--epochs", type=int, default=150)
    p.add_argument("--samples-per-class", type=int, default=2)
    p.add_argument("--parity-fixture", help="also write a conformance test case (model.onnx + test_data_set_0) here")
    args = p.parse_args()

    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    torch.set_num_threads(1)
    torch.manual_seed(0)

    digits = load_digits()
    x = (digits.images.astype(np.float32) / 16.0)[:, None, :, :]  # [1797,1,8,8] in [0,1]
    y = digits.target.astype(np.int64)
    idx = np.arange(len(y))
    tr, te = train_test_split(idx, test_size=0.25, random_state=0, stratify=y)
    # a validation split carved out of the training split picks the epoch to keep (the test split stays unseen)
    tr, va = train_test_split(tr, test_size=0.15, random_state=0, stratify=y[tr])
    xtr, ytr, xva, yva, xte, yte = x[tr], y[tr], x[va], y[va], x[te], y[te]

    model = torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(64, 64), torch.nn.ReLU(),
        torch.nn.Linear(64, 32), torch.nn.ReLU(),
        torch.nn.Linear(32, 10),
    )
    opt = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
    loss_fn = torch.nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(0)
    xtr_t, ytr_t = torch.from_numpy(xtr), torch.from_numpy(ytr)
    best = (-1.0, 0, None)  # (validation accuracy, epoch, weights)
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(ytr_t), generator=gen)
        for i in range(0, len(perm), 64):
            b = perm[i : i + 64]
            opt.zero_grad()
            loss = loss_fn(model(xtr_t[b]), ytr_t[b])
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            val_acc = float((model(torch.from_numpy(xva)).argmax(1).numpy() == yva).mean())
        if val_acc > best[0]:
            best = (val_acc, epoch + 1, {k: v.clone() for k, v in model.state_dict().items()})
        if (epoch + 1) % 25 == 0:
            print(f"epoch {epoch + 1}: last batch loss {loss.item():.4f}, validation accuracy {val_acc:.4f}")
    val_acc, best_epoch, weights = best
    model.load_state_dict(weights)
    print(f"kept epoch {best_epoch} (validation accuracy {val_acc:.4f})")
    model.eval()
    with torch.no_grad():
        train_acc = float((model(xtr_t).argmax(1).numpy() == ytr).mean())
        test_logits = model(torch.from_numpy(xte)).numpy()
    test_acc = float((test_logits.argmax(1) == yte).mean())
    print(f"train accuracy {train_acc:.4f} ({len(ytr)} images), held-out test accuracy {test_acc:.4f} ({len(yte)} images)")

    os.makedirs(os.path.join(args.out, "samples"), exist_ok=True)
    onnx_path = os.path.join(args.out, "digits.onnx")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (torch.from_numpy(xte[:1]),), onnx_path, dynamo=False, opset_version=17,
            input_names=["image"], output_names=["logits"],
            dynamic_axes={"image": {0: "N"}, "logits": {0: "N"}},
        )
    import onnx

    m = onnx.load(onnx_path)
    onnx.checker.check_model(m, full_check=True)
    ops = sorted({n.op_type for n in m.graph.node})
    if not set(ops) <= ALLOWED_OPS:
        print(f"error: the exported graph uses {ops}, expected only {sorted(ALLOWED_OPS)}", file=sys.stderr)
        return 1

    # onnxruntime check on the whole held-out split
    import onnxruntime as ort

    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    ort_logits = sess.run(None, {"image": xte})[0]
    ort_acc = float((ort_logits.argmax(1) == yte).mean())
    max_diff = float(np.abs(ort_logits - test_logits).max())
    print(f"onnxruntime: held-out accuracy {ort_acc:.4f}, max |ORT - torch| logits {max_diff:.2e}, ops {ops}")

    # samples: the first `samples-per-class` held-out images of each digit, in test-split order
    for f in os.listdir(os.path.join(args.out, "samples")):
        if f.startswith("digit_") and f.endswith(".npy"):
            os.remove(os.path.join(args.out, "samples", f))
    rows = []
    for label in range(10):
        picks = np.nonzero(yte == label)[0][: args.samples_per_class]
        for k, j in enumerate(picks):
            sample = np.ascontiguousarray(xte[j : j + 1])  # [1,1,8,8] float32
            name = f"digit_{label}_{k}.npy"
            np.save(os.path.join(args.out, "samples", name), sample)
            logits = sess.run(None, {"image": sample})[0][0]
            rows.append((name, label, int(logits.argmax()), int(te[j])))
    wrong = [r for r in rows if r[1] != r[2]]
    print(f"wrote {len(rows)} samples, {len(rows) - len(wrong)} predicted correctly by onnxruntime")

    size = os.path.getsize(onnx_path)
    params = sum(p.numel() for p in model.parameters())
    table = "\n".join(f"| `samples/{n}` | {lab} | {pred} | {orig} |" for n, lab, pred, orig in rows)
    readme = f"""# Demo model: handwritten digits

`digits.onnx` is a small MLP classifier for the 8x8 handwritten digits of scikit-learn's bundled
`load_digits` dataset (1797 images, 10 classes). Deterministic (fixed seeds): it is produced by
`python3 scripts/train-digits.py` (see the top of that script).

- **Held-out test accuracy: {test_acc * 100:.2f} %** ({len(yte)} images, a stratified 25 % split, `random_state=0`,
  never used for training or model selection); training accuracy {train_acc * 100:.2f} % ({len(ytr)} images);
  the epoch kept ({best_epoch} of {args.epochs}) was chosen on a separate validation split ({len(yva)} images,
  {val_acc * 100:.2f} %).
  onnxruntime on the exported model: {ort_acc * 100:.2f} % (max |ORT - PyTorch| logit difference {max_diff:.1e}).
- Architecture: Flatten -> Linear(64,64) -> ReLU -> Linear(64,32) -> ReLU -> Linear(32,10); {params} parameters,
  {size} bytes. ONNX opset 17, operators: {", ".join(ops)}.
- Input `image`: float32 `[N,1,8,8]` (dynamic batch `N`), pixel values scaled to [0,1], i.e. the raw
  `load_digits` values (0..16) divided by 16. Output `logits`: float32 `[N,10]`; the predicted digit is the argmax.

## Samples

`samples/digit_<label>_<k>.npy` are images from the **held-out test split** (not seen in training), saved as
float32 `[1,1,8,8]` already scaled to [0,1] — the exact input of the model. `<label>` is the true digit.
They are the first {args.samples_per_class} test images of each digit (not cherry-picked): onnxruntime predicts
{len(rows) - len(wrong)} of the {len(rows)} correctly{"" if not wrong else " (misclassified: " + ", ".join(f"`{n}` as {pr}" for n, _, pr, _ in wrong) + ")"}.

| file | label | onnxruntime prediction | index in `load_digits` |
|---|---|---|---|
{table}
"""
    with open(os.path.join(args.out, "README.md"), "w") as f:
        f.write(readme)

    if args.parity_fixture:
        from onnx import numpy_helper

        case = args.parity_fixture
        os.makedirs(os.path.join(case, "test_data_set_0"), exist_ok=True)
        onnx.save(m, os.path.join(case, "model.onnx"))
        batch = np.ascontiguousarray(xte[:8])
        out = sess.run(None, {"image": batch})[0]
        with open(os.path.join(case, "test_data_set_0", "input_0.pb"), "wb") as f:
            f.write(numpy_helper.from_array(batch, "image").SerializeToString())
        with open(os.path.join(case, "test_data_set_0", "output_0.pb"), "wb") as f:
            f.write(numpy_helper.from_array(out, "logits").SerializeToString())
        print(f"wrote the conformance case {case} (batch of 8 held-out images)")
    print(f"wrote {onnx_path} ({size} bytes), {os.path.join(args.out, 'samples')}/, {os.path.join(args.out, 'README.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
