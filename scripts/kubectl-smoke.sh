#!/usr/bin/env bash
# kubectl against `edgeplane cluster serve`: get, describe, apply (create, then update),
# delete and watch, with assertions on the output. Skips when kubectl is absent.
set -euo pipefail

if ! command -v kubectl >/dev/null 2>&1; then
    echo "kubectl-smoke: kubectl not found; skipping"
    exit 0
fi

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cargo build -q -p edgeplane
bin="$root/target/debug/edgeplane"

work="$(mktemp -d)"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

fail() {
    echo "kubectl-smoke: FAIL: $*" >&2
    if [ -f "$work/server.log" ]; then
        echo "--- server log ---" >&2
        tail -n 50 "$work/server.log" >&2 || true
    fi
    exit 1
}

# A free loopback port: ask the kernel for one.
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()' 2>/dev/null || echo 18443)"
export KUBECONFIG="$work/kubeconfig"

"$bin" cluster serve --listen "127.0.0.1:$port" --kubeconfig "$KUBECONFIG" --nodes 2 >"$work/server.log" 2>&1 &
server_pid=$!

ready=""
for _ in $(seq 1 100); do
    if [ -f "$KUBECONFIG" ] && kubectl get --raw /readyz >/dev/null 2>&1; then
        ready=yes
        break
    fi
    kill -0 "$server_pid" 2>/dev/null || fail "the server exited"
    sleep 0.1
done
[ -n "$ready" ] || fail "the server did not become ready"

expect() { # expect <what> <pattern> <output>
    grep -Eq -- "$2" <<<"$3" || fail "$1: expected /$2/ in:
$3"
}

# Poll a command until its output matches (up to ~15 s).
until_matches() { # until_matches <pattern> <command...>
    local pattern="$1"; shift
    local out=""
    for _ in $(seq 1 150); do
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

cat >"$work/pod.yaml" <<'YAML'
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  containers:
  - name: web
    image: nginx:1.27
    ports:
    - containerPort: 80
YAML

# get nodes,pods -A
out="$(kubectl get nodes,pods -A)"
expect "get nodes" 'node/node-0 +Ready' "$out"
expect "get nodes" 'node/node-1 +Ready' "$out"

# apply: create
out="$(kubectl apply -f "$work/pod.yaml")"
expect "apply create" 'pod/web created' "$out"
out="$(until_matches 'web +1/1 +Running' kubectl get pods)"
expect "pod running" 'web +1/1 +Running +0' "$out"

# apply: update the same file (label and image)
sed -i 's/app: web}/app: web, tier: front}/; s/nginx:1.27/nginx:1.28/' "$work/pod.yaml"
out="$(kubectl apply -f "$work/pod.yaml")"
expect "apply update" 'pod/web configured' "$out"
out="$(kubectl get pod web -o jsonpath='{.metadata.labels.tier} {.spec.containers[0].image}')"
expect "apply update result" '^front nginx:1.28$' "$out"

# describe pod: spec, conditions and events from the scheduler and the kubelet
out="$(kubectl describe pod web)"
expect "describe" 'Status: +Running' "$out"
expect "describe" 'Node: +node-[01]/' "$out"
expect "describe" 'Scheduled +.*default-scheduler +Successfully assigned default/web' "$out"
expect "describe" 'Started +.*kubelet' "$out"

# a ConstraintPolicyBinding and its printer columns
cat >"$work/cpb.yaml" <<'YAML'
apiVersion: constraint.edgeplane.io/v1alpha1
kind: ConstraintPolicyBinding
metadata:
  name: ar-latency-1
  labels: {constraint.edgeplane.io/offer: ar-latency}
spec:
  offer: ar-latency
  targets:
    client: {apiVersion: v1, kind: Pod, namespace: default, name: web}
YAML
out="$(kubectl apply -f "$work/cpb.yaml")"
expect "apply cpb" 'constraintpolicybinding.constraint.edgeplane.io/ar-latency-1 created' "$out"
kubectl patch cpb ar-latency-1 --subresource=status --type=merge \
    -p '{"status":{"compliance":"Violation","firstReason":"latency 12ms > 10ms","targets":"client=web"}}' >/dev/null
out="$(kubectl get cpb)"
expect "get cpb header" '^NAME +OFFER +TARGETS +STATUS +REASON +AGE' "$out"
expect "get cpb row" 'ar-latency-1 +ar-latency +client=web +Violation +latency 12ms > 10ms +[0-9]+s' "$out"

# a schema violation is rejected by the server with 422 and the field named
cat >"$work/bad.yaml" <<'YAML'
apiVersion: constraint.edgeplane.io/v1alpha1
kind: ConstraintPolicyBinding
metadata: {name: bad}
spec: {offer: "Not_A_Name", targets: {}}
YAML
out="$(kubectl apply -f "$work/bad.yaml" 2>&1 || true)"
expect "invalid cpb" 'is invalid.*spec.offer' "$out"

# watch: a second pod shows up in `get -w`
kubectl get pods -w >"$work/watch.out" 2>&1 &
watch_pid=$!
sleep 1
kubectl run db --image=postgres:16 >/dev/null
until_matches 'db +1/1 +Running' cat "$work/watch.out" >/dev/null
kill "$watch_pid" 2>/dev/null || true
wait "$watch_pid" 2>/dev/null || true
out="$(cat "$work/watch.out")"
expect "watch header" '^NAME +READY +STATUS' "$out"
expect "watch pending" 'db +0/1 +(Pending|ContainerCreating)' "$out"

# delete: graceful, the kubelet finishes it
out="$(kubectl delete pod web --wait=true --timeout=30s)"
expect "delete" 'pod "web" deleted' "$out"
out="$(kubectl get pods)"
grep -q '^web ' <<<"$out" && fail "web still listed after delete: $out"
out="$(kubectl delete -f "$work/cpb.yaml")"
expect "delete cpb" 'deleted' "$out"
out="$(kubectl get cpb 2>&1)"
expect "no cpb" 'No resources found' "$out"

# kubectl's imperative commands send protobuf bodies (client-go's typed clients) and read
# protobuf answers: the server decodes and answers them as a real API server does.
out="$(kubectl create namespace shop)"
expect "create namespace" 'namespace/shop created' "$out"
out="$(kubectl create deployment web --image=nginx -n shop)"
expect "create deployment" 'deployment.apps/web created' "$out"
out="$(kubectl create configmap settings --from-literal=colour=blue -n shop)"
expect "create configmap" 'configmap/settings created' "$out"
out="$(kubectl create secret generic creds --from-literal=password=s3cret -n shop)"
expect "create secret generic" 'secret/creds created' "$out"
out="$(kubectl get secret creds -n shop -o jsonpath='{.data.password}')"
expect "secret data" '^czNjcmV0$' "$out"
out="$(kubectl run cache --image=redis -n shop --labels=tier=cache --port=6379)"
expect "run" 'pod/cache created' "$out"
out="$(kubectl scale deployment web --replicas=3 -n shop)"
expect "scale" 'deployment.apps/web scaled' "$out"
out="$(until_matches 'web +3/3' kubectl get deployment web -n shop)"
out="$(kubectl expose deployment web --port=80 -n shop)"
expect "expose" 'service/web exposed' "$out"
out="$(kubectl get service web -n shop -o jsonpath='{.spec.ports[0].port} {.spec.selector.app}')"
expect "exposed service" '^80 web$' "$out"
out="$(until_matches 'cache +1/1 +Running' kubectl get pods -n shop)"

# kubectl explain reads the OpenAPI v3 schemas: built-in kinds and CRDs.
out="$(kubectl explain pods.spec.containers)"
expect "explain pods.spec.containers" 'FIELD: containers <\[\]Container>' "$out"
expect "explain pods.spec.containers" 'List of containers belonging to the pod' "$out"
out="$(kubectl explain cpb.spec)"
expect "explain cpb.spec" 'KIND: +ConstraintPolicyBinding' "$out"
expect "explain cpb.spec" 'offer.*<string> -required-' "$out"

# apply --validate=strict: the server refuses unknown fields and takes known ones.
cat >"$work/strict.yaml" <<'YAML'
apiVersion: v1
kind: ConfigMap
metadata: {name: strict, namespace: shop}
data: {a: b}
colour: blue
YAML
out="$(kubectl apply --validate=strict -f "$work/strict.yaml" 2>&1 || true)"
expect "apply --validate=strict" 'strict decoding error: unknown field "colour"' "$out"
sed -i '/^colour/d' "$work/strict.yaml"
out="$(kubectl apply --validate=strict -f "$work/strict.yaml")"
expect "apply --validate=strict" 'configmap/strict created' "$out"

# cluster serve creates the namespace the components' Leases live in.
out="$(kubectl get namespace edgeplane-system)"
expect "edgeplane-system" 'edgeplane-system +Active' "$out"

echo "kubectl-smoke: OK ($(kubectl version 2>/dev/null | head -n 1))"
