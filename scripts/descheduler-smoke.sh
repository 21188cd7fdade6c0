#!/usr/bin/env bash
# `edgeplane descheduler`, `edgeplane netctl serve` and `edgeplane controller` against
# `edgeplane cluster serve`, by kubeconfig, as on a real cluster, in real time. On
# examples/metro the renderer at edge-9 is 11.5ms from the stadium (limit 5ms):
#
#   1. with examples/metro/catalogue.yaml, the descheduler asks the network controller to
#      mitigate, slice-a is activated, the binding leaves Violation and `kubectl describe
#      cpb` shows the Mitigated event and status.lastMitigatedTimestamp;
#   2. with no catalogue, the mitigation fails and, after mitigationGrace, the renderer is
#      evicted through the Eviction API; the binding's events show MitigationFailed, then
#      Evicted.
#
# The offer's grace and mitigationGrace are shortened to 2s so that the script takes
# seconds. Skips when kubectl is absent.
set -euo pipefail

if ! command -v kubectl >/dev/null 2>&1; then
    echo "descheduler-smoke: kubectl not found; skipping"
    exit 0
fi

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cargo build -q -p edgeplane
bin="$root/target/debug/edgeplane"
metro="examples/metro"

work="$(mktemp -d)"
pids=()
stop_all() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    pids=()
}
cleanup() {
    stop_all
    rm -rf "$work"
}
trap cleanup EXIT

fail() {
    echo "descheduler-smoke: FAIL: $*" >&2
    for log in server controller netctl descheduler; do
        if [ -f "$work/$log.log" ]; then
            echo "--- $log log ---" >&2
            tail -n 30 "$work/$log.log" >&2 || true
        fi
    done
    exit 1
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

until_matches() { # until_matches <pattern> <command...>  (up to ~40 s)
    local pattern="$1"; shift
    local out=""
    for _ in $(seq 1 400); do
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

# start <extra cluster serve args...>: the cluster, the controller, the network
# controller and the descheduler; the stadium offer's grace and mitigation grace at 2s.
start() {
    local api_port netctl_port
    api_port="$(free_port)"
    netctl_port="$(free_port)"
    export KUBECONFIG="$work/kubeconfig"
    "$bin" cluster serve --listen "127.0.0.1:$api_port" --kubeconfig "$KUBECONFIG" --nodes 0 \
        -f "$metro/nodes.yaml" -f "$metro/topology.yaml" -f "$metro/workloads.yaml" \
        -f "$metro/policies.yaml" -f "$metro/offers.yaml" "$@" >"$work/server.log" 2>&1 &
    pids+=($!)
    until_matches '^ok' kubectl get --raw /readyz >/dev/null
    kubectl patch cpo ar-stadium -n ar --type merge \
        -p '{"spec":{"grace":"2s","mitigationGrace":"2s"}}' >/dev/null
    "$bin" controller --kubeconfig "$KUBECONFIG" --metrics-addr "127.0.0.1:$(free_port)" \
        --identity smoke >"$work/controller.log" 2>&1 &
    pids+=($!)
    netctl_metrics_port="$(free_port)"
    "$bin" netctl serve --kubeconfig "$KUBECONFIG" --listen "127.0.0.1:$netctl_port" \
        --metrics-addr "127.0.0.1:$netctl_metrics_port" >"$work/netctl.log" 2>&1 &
    pids+=($!)
    "$bin" descheduler --kubeconfig "$KUBECONFIG" --metrics-addr "127.0.0.1:$(free_port)" \
        --identity smoke --interval 1s --min-pod-age 0s \
        --network-controller "http://127.0.0.1:$netctl_port" >"$work/descheduler.log" 2>&1 &
    pids+=($!)
}

# The stadium binding of the renderer at edge-9.
binding() {
    kubectl get cpb -n ar -l constraint.edgeplane.io/offer=ar-stadium -o json \
        | python3 -c 'import json,sys
for b in json.load(sys.stdin)["items"]:
    if b["spec"]["targets"].get("renderer", {}).get("name") == "ar-render-2":
        print(b["metadata"]["name"])'
}

# 1. Mediation repairs the path.
start -f "$metro/catalogue.yaml"
name="$(until_matches 'ar-stadium-' binding)"
echo "binding of ar-render-2 to the stadium: $name"
until_matches 'Mitigated' kubectl get events -n ar --field-selector "involvedObject.name=$name" >/dev/null
described="$(until_matches 'Last Mitigated Timestamp' kubectl describe cpb -n ar "$name")"
grep -q 'activated slice-a' <<<"$described" || fail "no mitigation in: $described"
until_matches "^$name +ar-stadium +[^ ]+ +Limit" kubectl get cpb -n ar --no-headers >/dev/null
kubectl get pod ar-render-2 -n ar >/dev/null || fail "ar-render-2 was evicted although the network was repaired"
echo "$described" | sed -n '/^Events:/,$p'
# The network controller counts the Mitigate call it answered.
netctl_metrics() { python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$netctl_metrics_port/metrics').read().decode())"; }
until_matches 'edgeplane_network_controller_requests_total\{method="mitigate",outcome="ok"\} [1-9]' netctl_metrics >/dev/null
stop_all

# 2. No catalogue: the mitigation fails, the renderer is evicted. The binding goes with its
# pod (a binding is one combination of objects), so its history is read from the events
# about it, which outlive it.
start
name="$(until_matches 'ar-stadium-' binding)"
history="$(until_matches 'Evicted' kubectl get events -n ar --field-selector "involvedObject.name=$name" \
    -o custom-columns=REASON:.reason,FROM:.reportingComponent,MESSAGE:.message)"
grep -q 'MitigationFailed' <<<"$history" || fail "no failed mitigation before the eviction: $history"
[ "$(grep -c '^Evicted' <<<"$history")" = 1 ] || fail "expected one eviction: $history"
until_matches 'NotFound' kubectl get pod ar-render-2 -n ar >/dev/null
echo "$history"
stop_all
echo "descheduler-smoke: ok"
