#!/usr/bin/env bash
# `edgeplane controller` against `edgeplane cluster serve`, by kubeconfig, exactly as it
# would run against a real cluster: examples/metro is loaded, the controller creates and
# evaluates the bindings, `kubectl get cpo,cpb` tells the story, /metrics and /readyz
# answer, SIGTERM stops it cleanly and releases the Lease. Skips when kubectl is absent.
set -euo pipefail

if ! command -v kubectl >/dev/null 2>&1; then
    echo "controller-smoke: kubectl not found; skipping"
    exit 0
fi

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cargo build -q -p edgeplane
bin="$root/target/debug/edgeplane"

work="$(mktemp -d)"
server_pid=""
controller_pid=""
cleanup() {
    for pid in "$controller_pid" "$server_pid"; do
        if [ -n "$pid" ]; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$work"
}
trap cleanup EXIT

fail() {
    echo "controller-smoke: FAIL: $*" >&2
    for log in server controller; do
        if [ -f "$work/$log.log" ]; then
            echo "--- $log log ---" >&2
            tail -n 40 "$work/$log.log" >&2 || true
        fi
    done
    exit 1
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
api_port="$(free_port)"
metrics_port="$(free_port)"
export KUBECONFIG="$work/kubeconfig"

metro="examples/metro"
"$bin" cluster serve --listen "127.0.0.1:$api_port" --kubeconfig "$KUBECONFIG" --nodes 0 \
    -f "$metro/nodes.yaml" -f "$metro/topology.yaml" -f "$metro/workloads.yaml" \
    -f "$metro/policies.yaml" -f "$metro/offers.yaml" >"$work/server.log" 2>&1 &
server_pid=$!

until_matches() { # until_matches <pattern> <command...>  (up to ~30 s)
    local pattern="$1"; shift
    local out=""
    for _ in $(seq 1 300); do
        out="$("$@" 2>&1 || true)"
        if grep -Eq -- "$pattern" <<<"$out"; then
            printf '%s' "$out"
            return 0
        fi
        sleep 0.1
    done
    fail "timed out waiting for /$pattern/ from '$*'; last output:
$out"
}

until_matches '^ok' kubectl get --raw /readyz >/dev/null
# `cluster serve` created edgeplane-system, where the controller takes its Lease by default.

RUST_LOG=info "$bin" controller --kubeconfig "$KUBECONFIG" \
    --metrics-addr "127.0.0.1:$metrics_port" --identity smoke-1 >"$work/controller.log" 2>&1 &
controller_pid=$!

# Twelve bindings, each with a compliance: 5 Compliant, 4 Limit, 3 Violation (columns: name,
# offer, targets, status, ...).
count_status() { kubectl get cpb -n ar --no-headers 2>/dev/null | awk -v s="$1" '$4 == s' | wc -l; }
for _ in $(seq 1 300); do
    if [ "$(count_status Compliant)" = 5 ] && [ "$(count_status Limit)" = 4 ] && [ "$(count_status Violation)" = 3 ]; then
        break
    fi
    kill -0 "$controller_pid" 2>/dev/null || fail "the controller exited"
    sleep 0.1
done
[ "$(count_status Violation)" = 3 ] || fail "bindings: $(kubectl get cpb -n ar 2>&1)"

offers="$(until_matches 'ar-stadium +3 +1' kubectl get cpo -n ar)"
echo "$offers"
kubectl get cpb -n ar
kubectl get ntop,cp -A

# The reason of a binding in Violation, and its event.
out="$(kubectl get cpb -n ar -l constraint.edgeplane.io/offer=ar-stadium)"
grep -q 'latency 11.5ms between renderer (edge-9-a) and users (stadium) is worse than the limit 5ms' <<<"$out" \
    || fail "expected the stadium violation in: $out"
until_matches 'ComplianceChanged' kubectl get events -n ar >/dev/null

# Operational endpoints and the Lease.
metrics="$(python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$metrics_port/metrics').read().decode())")"
grep -q 'edgeplane_bindings{namespace="ar",offer="ar-stadium",compliance="Violation"} 1' <<<"$metrics" || fail "metrics: $metrics"
python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$metrics_port/readyz')" || fail "/readyz"
until_matches 'smoke-1' kubectl get lease edgeplane-controller -n edgeplane-system -o jsonpath='{.spec.holderIdentity}' >/dev/null

# SIGTERM: clean exit, Lease released.
kill -TERM "$controller_pid"
wait "$controller_pid" || fail "the controller exited with $?"
controller_pid=""
holder="$(kubectl get lease edgeplane-controller -n edgeplane-system -o jsonpath='{.spec.holderIdentity}')"
[ -z "$holder" ] || fail "the Lease is still held by $holder"
echo "controller-smoke: ok"
