#!/usr/bin/env bash
# Regenerates Sources/BlindAIONNX/Generated/onnx.pb.swift from onnx.proto.
# Needs: protoc (apt-get install protobuf-compiler), the onnx wheel (pip install onnx==1.23.2),
# and protoc-gen-swift from swift-protobuf 1.39.0 (built from its source once; about 30 s to 3 min).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
ONNX_DIR="$(python3 -c 'import onnx, os; print(os.path.dirname(onnx.__file__))')"
PLUGIN="${PROTOC_GEN_SWIFT:-}"
if [ -z "$PLUGIN" ]; then
  work="$(mktemp -d)"
  git clone -q --branch 1.39.0 https://github.com/apple/swift-protobuf.git "$work/swift-protobuf"
  (cd "$work/swift-protobuf" && swift build -c release --product protoc-gen-swift)
  PLUGIN="$work/swift-protobuf/.build/release/protoc-gen-swift"
fi
cp "$ONNX_DIR/onnx.proto" "$here/proto/onnx.proto"
protoc --plugin=protoc-gen-swift="$PLUGIN" \
  --swift_opt=Visibility=Public \
  --swift_out="$here/Sources/BlindAIONNX/Generated" \
  -I "$here/proto" "$here/proto/onnx.proto"
echo "wrote Sources/BlindAIONNX/Generated/onnx.pb.swift"
