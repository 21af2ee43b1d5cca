#!/usr/bin/env python3
"""Writes the ONNX node conformance tests (onnx 1.23.2) in the backend-test layout.

`python -m onnx.backend.test.cmd_tools generate-data` in the onnx 1.23.2 wheel only writes the model
cases; this script runs the same writer over the node cases: OUT/node/<test>/model.onnx + test_data_set_*.

    pip install onnx==1.23.2
    python3 scripts/generate-node-tests.py conformance-data
"""
import argparse
import sys
import warnings

import onnx
import onnx.backend.test.case.node as node_cases
import onnx.backend.test.cmd_tools as cmd_tools


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("output", help="output directory (node tests go to OUTPUT/node)")
    args = parser.parse_args()
    if onnx.__version__ != "1.23.2":
        print(f"warning: onnx {onnx.__version__} is installed; the manifest was made with 1.23.2", file=sys.stderr)
    warnings.simplefilter("ignore")
    cmd_tools.model_test.collect_testcases = lambda: node_cases.collect_testcases(None)
    cmd_tools.generate_data(argparse.Namespace(output=args.output))


if __name__ == "__main__":
    main()
