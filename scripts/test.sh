#!/usr/bin/env bash
# The project's test command (README's second set-up command; CI runs it through .ci/run):
#   0. source checks (error codes: snake_case, unique, documented; the architecture graph and dependency rules),
#   1. the Swift test suites (no Python needed: small fixtures are committed),
#   2. the ONNX node conformance manifest (conformance/node.txt) on the optimised and the plain plan,
#   3. whole-model parity with onnxruntime on the committed fixtures,
#   4. the same Swift suites and conformance runs against a release build (what users run: optimised code
#      differs, e.g. run-time exclusivity checks trapped only there), every generated node test in one release
#      process (it must end with its counts, whatever fails), and the hostile-model regressions
#      (scripts/hostile-models.py) against `blindai run` and a live release server.
# Step 2 generates the node tests from the onnx 1.23.2 wheel the first time (installs it with pip if missing).
set -euo pipefail
cd "$(dirname "$0")/.."

# Source checks that need no build: error codes (docs/errors.md); the module graph in docs/architecture.md is
# Package.swift's, and the engine reaches no networking, attestation or server target.
python3 scripts/check-error-codes.py
python3 scripts/check-architecture.py
python3 scripts/check-operator-layout.py

swift build --build-tests
swift test --skip-build

if [ ! -d conformance-data/node ]; then
  if ! python3 -c 'import onnx, sys; sys.exit(onnx.__version__ != "1.23.2")' 2>/dev/null; then
    python3 -m pip install --quiet onnx==1.23.2
  fi
  python3 scripts/generate-node-tests.py conformance-data
fi

swift build --product blindai
echo "== ONNX node conformance, optimised plan"
.build/debug/blindai conformance conformance-data/node --manifest conformance/node.txt
echo "== ONNX node conformance, plain plan"
.build/debug/blindai conformance conformance-data/node --manifest conformance/node.txt --no-optimize

if [ -d Tests/BlindAIEngineTests/Fixtures/parity ]; then
  echo "== Whole-model parity with onnxruntime (committed fixtures)"
  .build/debug/blindai conformance Tests/BlindAIEngineTests/Fixtures/parity
fi

# Large models (not committed): torchvision ResNet18 and MobileNetV3-small, from both exporters, with
# onnxruntime's outputs as the reference. Needs torch (scripts/install-fixture-deps.sh; .ci/run installs it).
LARGE="resnet18_ts,resnet18_dynamo,mobilenet_v3_small_ts,mobilenet_v3_small_dynamo"
if python3 -c 'import torch, onnxruntime' 2>/dev/null && python3 -m pip show --quiet torchvision >/dev/null 2>&1; then
  if [ ! -f fixtures-large/resnet18_ts/model.onnx ] || [ ! -f fixtures-large/mobilenet_v3_small_dynamo/model.onnx ]; then
    python3 scripts/make-parity-fixtures.py fixtures-large --only "$LARGE"
  fi
  echo "== Whole-model parity with onnxruntime (large models)"
  .build/debug/blindai conformance fixtures-large/resnet18_ts fixtures-large/resnet18_dynamo \
    fixtures-large/mobilenet_v3_small_ts fixtures-large/mobilenet_v3_small_dynamo
else
  echo "== Skipping the large-model parity check: torch/torchvision/onnxruntime are not installed (scripts/install-fixture-deps.sh)"
fi

# The Python client (python/): installed into this interpreter with its test extras, then its tests: the agreement
# of the Python and Swift verifiers over the committed vectors, and the end-to-end tests against the debug server.
# torch: the CPU wheel is installed when present (PyPI's torch is the CUDA build); with the wheel on the machine a
# missing torch is a failure, not a skip.
echo "== Python client"
PY=${PYTHON:-python3}
TORCH_WHEEL=${TORCH_WHEEL:-$(find / -xdev -maxdepth 3 -name "torch-*+cpu*.whl" 2>/dev/null | sort | tail -n 1)}
if [ -n "$TORCH_WHEEL" ]; then
  if ! "$PY" -c 'import torch' 2>/dev/null; then
    "$PY" -m pip install --quiet --disable-pip-version-check "$TORCH_WHEEL"
  fi
  "$PY" -c 'import torch' || { echo "error: torch does not import although $TORCH_WHEEL exists" >&2; exit 1; }
else
  echo "note: no CPU torch wheel found: the torch parts of the Python tests are skipped" >&2
  export BLINDAI_TORCH_OPTIONAL=1
fi
"$PY" -m pip install --quiet --disable-pip-version-check "./python[test]"
set +e
BLINDAI_BIN=${BLINDAI_BIN:-$PWD/.build/debug/blindai} "$PY" -m pytest -q python/tests
rc=$?
set -e
if [ $rc -eq 5 ]; then echo "error: pytest collected no Python client tests" >&2; exit 1; fi
if [ $rc -ne 0 ]; then exit $rc; fi

echo "== Release build: the Swift suites"
swift test -c release
echo "== ONNX node conformance (release), optimised plan"
.build/release/blindai conformance conformance-data/node --manifest conformance/node.txt
echo "== ONNX node conformance (release), optimised plan, every value checked against its inferred shape facts"
.build/release/blindai conformance conformance-data/node --manifest conformance/node.txt --verify-facts
echo "== ONNX node conformance (release), plain plan"
.build/release/blindai conformance conformance-data/node --manifest conformance/node.txt --no-optimize
echo "== Every generated node test (release, one process): must end with its counts, never a crash"
set +e
.build/release/blindai conformance conformance-data/node > /tmp/blindai-all-node-tests.log 2>&1
status=$?
set -e
echo "every generated node test (release, one process) -> $(tail -n 1 /tmp/blindai-all-node-tests.log)"
if [ "$status" -gt 1 ] || ! tail -n 1 /tmp/blindai-all-node-tests.log | grep -Eq '^[0-9]+ passed, [0-9]+ failed'; then
  echo "the full node-test run did not end with its counts (exit status $status)"; exit 1
fi
if [ -d Tests/BlindAIEngineTests/Fixtures/parity ]; then
  echo "== Whole-model parity with onnxruntime (release, committed fixtures)"
  .build/release/blindai conformance Tests/BlindAIEngineTests/Fixtures/parity
fi
echo "== Hostile models against blindai run and a live release server"
python3 scripts/hostile-models.py --blindai .build/release/blindai
