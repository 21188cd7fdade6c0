#!/usr/bin/env bash
# Runs every shell command shown in docs/embedded-cluster.md ("kubectl") and
# docs/runtime.md ("`edgeplane controller`"), as written: each ```sh block is taken from
# the page itself, so a command that stops working, or a block that changes, is caught.
#
# What is rewritten, so that the run is isolated: `edgeplane` and `target/debug/edgeplane`
# become this checkout's binary, the kubeconfig paths under /tmp become files in a scratch
# directory, and the cluster's port 127.0.0.1:8080 becomes a free one when 8080 is taken.
# A command ending in `&`, and every `cluster serve`, runs in the background (a `cluster
# serve` is waited for until it answers /readyz); a foreground command must exit 0, and a `kubectl get` must list
# something (it is retried for up to 30 s while controllers catch up). Skips without
# kubectl.
set -euo pipefail

if ! command -v kubectl >/dev/null 2>&1; then
    echo "docs-commands: kubectl not found; skipping"
    exit 0
fi

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cargo build -q -p edgeplane
bin="$root/target/debug/edgeplane"

work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    pids=()
}
trap 'cleanup; rm -rf "$work"' EXIT

fail() {
    echo "docs-commands: FAIL: $*" >&2
    for log in "$work"/bg-*.log; do
        [ -f "$log" ] || continue
        echo "--- $log ---" >&2
        tail -n 20 "$log" >&2 || true
    done
    exit 1
}

port_free() {
    python3 -c 'import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1]))); s.close()' "$1" 2>/dev/null
}
if port_free 8080; then
    port=8080
else
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
    echo "docs-commands: 127.0.0.1:8080 is taken here; the cluster listens on $port instead"
fi

# The ```sh blocks of a page, one command a line (continuations joined).
blocks() { # blocks <file>
    awk '
        /^```sh$/ { inside = 1; n++; next }
        /^```/ && inside { inside = 0; if (cmd != "") print n "\t" cmd; cmd = ""; next }
        inside {
            line = $0
            sub(/^[ \t]+/, "", line)
            if (line ~ /^#/ || line == "") next
            cont = (line ~ /\\$/)
            sub(/[ \t]*\\$/, "", line)
            cmd = (cmd == "" ? line : cmd " " line)
            if (!cont) { print n "\t" cmd; cmd = "" }
        }
    ' "$1"
}

rewrite() { # rewrite <command>
    sed -E \
        -e "s#^(target/debug/)?edgeplane #$bin #" \
        -e "s#/tmp/kubeconfig#$work/kubeconfig#g" \
        -e "s#/tmp/kc#$work/kc#g" \
        -e "s#127\.0\.0\.1:8080#127.0.0.1:$port#g" <<<"$1"
}

kubeconfig_of() { # the kubeconfig a command names, if any
    grep -oE -- "--kubeconfig [^ ]+|KUBECONFIG=[^ ]+" <<<"$1" | head -n 1 | sed -E 's/^--kubeconfig //; s/^KUBECONFIG=//'
}

run_page() { # run_page <file> <section>
    local file="$1" section="$2" count=0 current="" kc=""
    while IFS=$'\t' read -r block cmd; do
        if [ "$block" != "$current" ]; then
            cleanup # each block starts from nothing
            current="$block"
        fi
        local real
        real="$(rewrite "$cmd")"
        count=$((count + 1))
        echo "docs-commands: $file ($section) \$ $cmd"
        if [[ "$real" == *"&" || "$real" == *"cluster serve"* ]]; then
            local log="$work/bg-$count.log"
            bash -c "exec ${real%&}" >"$log" 2>&1 &
            pids+=($!)
            if [[ "$real" == *"cluster serve"* ]]; then
                kc="$(kubeconfig_of "$real")"
                local ready=""
                for _ in $(seq 1 200); do
                    if [ -f "$kc" ] && kubectl --kubeconfig "$kc" get --raw /readyz >/dev/null 2>&1; then
                        ready=yes
                        break
                    fi
                    kill -0 "${pids[-1]}" 2>/dev/null || fail "'$cmd' exited"
                    sleep 0.1
                done
                [ -n "$ready" ] || fail "'$cmd' did not become ready"
            else
                sleep 1
                kill -0 "${pids[-1]}" 2>/dev/null || fail "'$cmd' exited at once"
            fi
            continue
        fi
        local out="" ok=""
        for _ in $(seq 1 60); do
            if out="$(bash -c "$real" 2>&1)"; then
                if [[ "$real" != *"kubectl"*" get "* ]] || ! grep -q "No resources found" <<<"$out"; then
                    ok=yes
                    break
                fi
            fi
            [[ "$real" == *"kubectl"* ]] || break
            sleep 0.5
        done
        [ -n "$ok" ] || fail "'$cmd' failed:
$out"
        printf '%s\n' "$out" | head -n 8
    done < <(blocks "$file")
    cleanup
    [ "$count" -gt 0 ] || fail "no commands found in $file"
}

# docs/embedded-cluster.md, section "kubectl".
run_page docs/embedded-cluster.md "kubectl"
# docs/runtime.md, section "`edgeplane controller`".
run_page docs/runtime.md "edgeplane controller"

echo "docs-commands: OK"
