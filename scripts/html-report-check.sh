#!/usr/bin/env bash
# Renders the simulator's HTML report in headless Chromium and checks the screenshot:
# runs a scenario with --html, takes a screenshot, and checks that the PNG exists, is not
# tiny and is not one flat colour. Installs Chromium (Debian package `chromium`) with
# apt-get when it is missing; skips with a message when it cannot.
#
#   scripts/html-report-check.sh [SCENARIO] [OUTPUT-DIR]
#
# Defaults: examples/scenarios/stadium-ar/scenario.yaml, target/html-report-check/.
# Leaves report.html and report.png in OUTPUT-DIR for a person to look at.
set -euo pipefail
cd "$(dirname "$0")/.."

scenario="${1:-examples/scenarios/stadium-ar/scenario.yaml}"
out="${2:-target/html-report-check}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

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
target/debug/edgeplane sim "$scenario" --quiet --report "$out/report.json" --html "$out/report.html" >/dev/null

profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
rm -f "$out/report.png"
# --virtual-time-budget lets layout finish; the page needs no network and runs no script.
timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run --hide-scrollbars \
    --user-data-dir="$profile" --window-size=1400,2000 --virtual-time-budget=2000 \
    --screenshot="$out/report.png" "file://$out/report.html" >/dev/null 2>&1 || true

if [ ! -s "$out/report.png" ]; then
    echo "html-report-check: FAILED: no screenshot was written" >&2
    exit 1
fi

python3 - "$out/report.png" <<'EOF'
import struct, sys, zlib

path = sys.argv[1]
data = open(path, "rb").read()
if data[:8] != b"\x89PNG\r\n\x1a\n":
    sys.exit("html-report-check: FAILED: not a PNG")
if len(data) < 20_000:
    sys.exit(f"html-report-check: FAILED: screenshot is only {len(data)} bytes")
pos, idat, width, height, ctype, depth = 8, b"", 0, 0, 0, 0
while pos < len(data):
    length, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + length]
    if kind == b"IHDR":
        width, height, depth, ctype = struct.unpack(">IIBB", body[:10])
    elif kind == b"IDAT":
        idat += body
    pos += 12 + length
if depth != 8 or ctype not in (2, 6):
    sys.exit(f"html-report-check: FAILED: unexpected PNG format (depth {depth}, colour type {ctype})")
bpp = 3 if ctype == 2 else 4
raw = zlib.decompress(idat)
stride = width * bpp
rows, prev, i = [], bytearray(stride), 0
for _ in range(height):
    f = raw[i]; line = bytearray(raw[i + 1:i + 1 + stride]); i += 1 + stride
    for x in range(stride):
        a = line[x - bpp] if x >= bpp else 0
        b = prev[x]
        c = prev[x - bpp] if x >= bpp else 0
        if f == 1: line[x] = (line[x] + a) & 255
        elif f == 2: line[x] = (line[x] + b) & 255
        elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    rows.append(bytes(line)); prev = line
colours = set()
for y in range(0, height, 7):
    row = rows[y]
    for x in range(0, width, 5):
        colours.add(row[x * bpp:x * bpp + 3])
if len(colours) < 20:
    sys.exit(f"html-report-check: FAILED: screenshot has only {len(colours)} colours (blank page?)")
print(f"html-report-check: OK: {path} is {width}x{height}, {len(data)} bytes, {len(colours)}+ colours")
EOF
