#!/usr/bin/env bash
# gRPC interoperability: a Python client built with grpcio-tools from the rule-provider
# proto calls `edgeplane provider serve` on loopback and checks its answers against values
# computed by hand from examples/metro. It also checks that a client generated from the
# proto as Turnbuckle ships it (without edgeplane's extension fields) reads the answers.
#
# Needs python3 (with venv) and cargo. Installs grpcio and grpcio-tools into
# .tools/grpc-venv (gitignored) on first use. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

GRPC_VERSION=1.85.1
VENV=.tools/grpc-venv
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import grpc_tools, grpc" 2>/dev/null; then
  echo "grpc-interop: installing grpcio $GRPC_VERSION into $VENV" >&2
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "grpcio==$GRPC_VERSION" "grpcio-tools==$GRPC_VERSION"
fi
PYTHON="$VENV/bin/python"

cargo build --quiet --locked -p edgeplane
BINARY=target/debug/edgeplane

WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# Stubs from edgeplane's proto, and from the same proto without edgeplane's extension
# fields (field numbers from 100 up): that is Turnbuckle's ruleprovider.proto on the wire.
mkdir -p "$WORK/edgeplane" "$WORK/turnbuckle/proto"
"$PYTHON" -m grpc_tools.protoc -I crates/providers/proto \
  --python_out="$WORK/edgeplane" --grpc_python_out="$WORK/edgeplane" ruleprovider.proto
"$PYTHON" - crates/providers/proto/ruleprovider.proto "$WORK/turnbuckle/proto/ruleprovider.proto" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
# Drop every field numbered 100 or more (edgeplane's extensions).
stripped = re.sub(r"^\s*\w+\s+\w+\s*=\s*[1-9]\d{2,}\s*;\s*$\n", "", text, flags=re.M)
assert stripped != text, "no extension field found to strip"
open(sys.argv[2], "w").write(stripped)
PY
"$PYTHON" -m grpc_tools.protoc -I "$WORK/turnbuckle/proto" \
  --python_out="$WORK/turnbuckle" --grpc_python_out="$WORK/turnbuckle" ruleprovider.proto

# Port 0: the server picks a free port and prints `listening on ADDR` once it listens.
: >"$WORK/server.out"
"$BINARY" provider serve --listen 127.0.0.1:0 -f examples/metro >"$WORK/server.out" 2>"$WORK/server.err" &
SERVER_PID=$!
ADDRESS=""
for _ in $(seq 1 300); do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "grpc-interop: the server exited:" >&2
    cat "$WORK/server.err" >&2
    exit 1
  fi
  ADDRESS=$(sed -n 's/^listening on //p' "$WORK/server.out" | head -n 1 || true)
  [ -n "$ADDRESS" ] && break
  sleep 0.1
done
if [ -z "$ADDRESS" ]; then
  echo "grpc-interop: the server did not report its address" >&2
  cat "$WORK/server.err" >&2
  exit 1
fi

status=0
for flavour in edgeplane turnbuckle; do
  "$PYTHON" scripts/grpc_interop.py --stubs "$WORK/$flavour" --address "$ADDRESS" \
    --flavour "$flavour" | tee -a "$WORK/results" || status=1
done
read -r passed failed < <(awk '/^[a-z]+: [0-9]+ passed, [0-9]+ failed$/ { p += $2; f += $4 } END { print p + 0, f + 0 }' "$WORK/results")
echo "grpc-interop: $passed passed, $failed failed"
exit "$status"
