#!/usr/bin/env bash
# Installs the Python dependencies of scripts/make-parity-fixtures.py and scripts/train-digits.py.
#
#   scripts/install-fixture-deps.sh                 # uses /opt/wheels/torch-2.13.0+cpu-*.whl
#   TORCH_WHEEL=/path/to/torch-2.13.0+cpu-....whl scripts/install-fixture-deps.sh
#
# Use a virtualenv if you do not want these in your system Python (python3 -m venv .venv && . .venv/bin/activate).
# torch must be the CPU build 2.13.0. PyPI only has the (multi-GB) CUDA build and the PyTorch CPU index
# (download.pytorch.org) is not reachable from the build machines, so the wheel has to be provided locally.
set -euo pipefail

PY=${PYTHON:-python3}
PIP=("$PY" -m pip install --disable-pip-version-check)
TORCH_VERSION=2.13.0
TORCHVISION_VERSION=0.28.0   # the torchvision release built against torch 2.13.0 (Requires-Dist: torch==2.13.0)

if "$PY" -c "import torch, sys; sys.exit(0 if torch.__version__.split('+')[0] == '$TORCH_VERSION' else 1)" 2>/dev/null; then
    echo "torch $TORCH_VERSION already installed"
else
    wheel=${TORCH_WHEEL:-}
    if [ -z "$wheel" ]; then
        wheel=$(ls /opt/wheels/torch-${TORCH_VERSION}+cpu-*.whl 2>/dev/null | head -n 1 || true)
    fi
    if [ -z "$wheel" ] || [ ! -f "$wheel" ]; then
        cat >&2 <<MSG
error: no CPU torch $TORCH_VERSION wheel found.
  Looked for \$TORCH_WHEEL and /opt/wheels/torch-${TORCH_VERSION}+cpu-*.whl.
  PyPI's torch is the CUDA build (several GB) and the PyTorch CPU index (download.pytorch.org) is not
  reachable here. Put torch-${TORCH_VERSION}+cpu-cp3XX-...-manylinux_2_28_x86_64.whl in /opt/wheels or set TORCH_WHEEL.
MSG
        exit 1
    fi
    echo "installing $wheel"
    "${PIP[@]}" "$wheel"
fi

# --no-deps: otherwise pip would replace the CPU torch with PyPI's CUDA torch.
"${PIP[@]}" --no-deps "torchvision==$TORCHVISION_VERSION"
# Everything else, minus torch/torchvision (already handled above).
grep -v -E '^(torch|torchvision)==' "$(dirname "$0")/requirements-fixtures.txt" > /tmp/blindai-fixture-reqs.$$.txt
"${PIP[@]}" -r /tmp/blindai-fixture-reqs.$$.txt
rm -f /tmp/blindai-fixture-reqs.$$.txt

"$PY" - <<'PYCHECK'
import torch, onnx, onnxruntime, transformers, sklearn
torch.library.define("torchvision::nms", "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
torch.library.define("torchvision::qnms", "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
import torchvision
print("ok: torch", torch.__version__, "torchvision", torchvision.__version__, "onnx", onnx.__version__,
      "onnxruntime", onnxruntime.__version__, "transformers", transformers.__version__, "scikit-learn", sklearn.__version__)
PYCHECK
