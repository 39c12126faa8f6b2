#!/usr/bin/env bash
# Regenerate the Python modules for wire/proto/*.proto with grpcio-tools' protoc.
#
#   wire/proto/generate.sh            # writes wire/proto/*_pb2.py(i) next to the .proto files
#   wire/proto/generate.sh OUT_DIR    # writes OUT_DIR/wire/proto/*_pb2.py(i) (used by the tests)
#
# Needs `pip install grpcio-tools`; PYTHON selects the interpreter (default: python3).
# Files are compiled from the repository root so that generated imports read
# `from wire.proto import types_pb2`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${1:-$root}"
mkdir -p "$out/wire/proto"
cd "$root"
"${PYTHON:-python3}" -m grpc_tools.protoc -I . --python_out="$out" --pyi_out="$out" \
    wire/proto/types.proto wire/proto/remote.proto wire/proto/write_v2.proto wire/proto/raw.proto
