#!/usr/bin/env bash
# Renders the simulator's HTML reports in headless Chromium and checks what they show:
# runs each scenario with --html and --report, then scripts/html_report_check.py drives
# Chromium over the DevTools protocol (a pipe, no network) and checks the drawn page:
# marks in their lanes with their counts, nothing covering a mark or a label, site names
# inside their boxes, the map's slider showing each example's incident (pixel colours in
# the regions of its nodes), the timeline's filters and links, the table by offer against
# the JSON report. Installs Chromium (Debian package `chromium`) with apt-get when it is
# missing; skips with a message when it cannot.
#
#   scripts/html-report-check.sh [SCENARIO.yaml ...]
#
# Default: the examples (examples/scenarios/*/scenario.yaml). Leaves NAME.html,
# NAME.json and screenshots (NAME.png, NAME-map.png, NAME-map-*.png, NAME-events.png, NAME-links.png) in
# target/html-report-check/ for a person to look at.
set -euo pipefail
cd "$(dirname "$0")/.."

out="target/html-report-check"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
if [ "$#" -gt 0 ]; then
    scenarios=("$@")
else
    scenarios=(examples/scenarios/stadium-ar/scenario.yaml examples/scenarios/eviction/scenario.yaml
        examples/scenarios/node-failure/scenario.yaml examples/scenarios/burst/scenario.yaml
        examples/scenarios/broadcast/scenario.yaml examples/scenarios/multicluster-outage/scenario.yaml
        examples/scenarios/multicluster-degraded-link/scenario.yaml
        examples/scenarios/5g-upf/scenario.yaml)
fi

find_chromium() {
    for c in chromium chromium-browser google-chrome google-chrome-stable; do
        if command -v "$c" >/dev/null 2>&1; then
            command -v "$c"
            return 0
        fi
    done
    return 1
}

if ! browser="$(find_chromium)"; then
    echo "html-report-check: chromium not found; installing the Debian package chromium" >&2
    as_root=()
    if [ "$(id -u)" != 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            as_root=(sudo -n)
        else
            echo "html-report-check: SKIPPED: chromium is missing and cannot be installed (not root, no sudo)" >&2
            exit 0
        fi
    fi
    if ! { "${as_root[@]}" apt-get update -qq >/dev/null 2>&1 || true; } ||
        ! DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq chromium >/dev/null 2>&1; then
        echo "html-report-check: SKIPPED: apt-get install chromium failed" >&2
        exit 0
    fi
    if ! browser="$(find_chromium)"; then
        echo "html-report-check: SKIPPED: chromium still not found after installing" >&2
        exit 0
    fi
fi
echo "html-report-check: using $browser ($("$browser" --version 2>/dev/null || echo unknown version))"

cargo build --quiet --locked -p edgeplane
reports=()
for scenario in "${scenarios[@]}"; do
    # examples/scenarios/stadium-ar/scenario.yaml -> stadium-ar; other files by their name.
    name="$(basename "$scenario" .yaml)"
    if [ "$name" = scenario ]; then
        name="$(basename "$(dirname "$scenario")")"
    fi
    target/debug/edgeplane sim "$scenario" --quiet --report "$out/$name.json" \
        --html "$out/$name.html" >/dev/null
    reports+=("$name=$out/$name.html:$out/$name.json")
done

timeout 600 python3 scripts/html_report_check.py "$browser" "$out" "${reports[@]}"
