#!/usr/bin/env bash
# Lints and renders the Helm chart (deploy/helm/edgeplane) with the default values (gate
# mode) and in bind mode, and checks the rendered manifests: every document parses and
# names its kind and object, the expected kinds are there, the webhook never blocks pods,
# the pods run non-root on a read-only root filesystem with probes and resource requests,
# replicated components have PodDisruptionBudgets, no RBAC rule grants `*`, the chart's
# CRDs are the generated ones in deploy/crds, and the README lists the values
# (scripts/chart-readme.py). With monitoring on and the network controller, it renders and
# lints too. crates/cli/tests/chart.rs validates the monitoring objects against the
# prometheus-operator CRDs and checks the dashboard's and alerts' metrics.
# Helm comes from scripts/install-helm.sh (installed into .tools/ when missing).
# crates/runtime/tests/rbac.rs checks the RBAC rules against the calls the code makes.
set -euo pipefail
cd "$(dirname "$0")/.."
chart=deploy/helm/edgeplane
helm=$(scripts/install-helm.sh)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "helm-check: $("$helm" version --short)"

# The chart carries copies of the generated CRDs (Helm reads crds/ from the chart only).
for crd in deploy/crds/*.yaml; do
  if ! cmp -s "$crd" "$chart/crds/$(basename "$crd")"; then
    echo "helm-check: $chart/crds/$(basename "$crd") differs from $crd; copy it again" >&2
    exit 1
  fi
done
if [ "$(ls "$chart"/crds | wc -l)" != "$(ls deploy/crds | wc -l)" ]; then
  echo "helm-check: $chart/crds and deploy/crds hold different files" >&2
  exit 1
fi

"$helm" lint --strict "$chart"
"$helm" lint --strict "$chart" --set scheduler.mode=bind
"$helm" lint --strict "$chart" --set descheduler.dryRun=true \
  --set descheduler.networkController=http://netctl.edgeplane-system.svc:50052
"$helm" lint --strict "$chart" --set monitoring.enabled=true --set netctl.enabled=true
for mode in direct karmada karmada-policy; do
  "$helm" lint --strict "$chart" --set hub.enabled=true --set hub.mode=$mode
done
"$helm" lint --strict "$chart" --set monitoring.enabled=true --set netctl.enabled=true \
  --set agent.enabled=true
"$helm" template edgeplane "$chart" --namespace edgeplane-system --include-crds >"$out/gate.yaml"
"$helm" template edgeplane "$chart" --namespace edgeplane-system \
  --set monitoring.enabled=true --set netctl.enabled=true --set agent.enabled=true >"$out/full.yaml"
"$helm" template edgeplane "$chart" --namespace edgeplane-system --include-crds \
  --set scheduler.mode=bind >"$out/bind.yaml"
# Two renders of the defaults are the same: nothing random (GitOps tools sync them).
"$helm" template edgeplane "$chart" --namespace edgeplane-system --include-crds \
  --set monitoring.enabled=true --set netctl.enabled=true >"$out/again.yaml"
"$helm" template edgeplane "$chart" --namespace edgeplane-system --include-crds \
  --set monitoring.enabled=true --set netctl.enabled=true >"$out/again2.yaml"
if ! cmp -s "$out/again.yaml" "$out/again2.yaml"; then
  echo "helm-check: two renders of the same values differ:" >&2
  diff "$out/again.yaml" "$out/again2.yaml" | head -20 >&2
  exit 1
fi
# A certificate given in the values: a throwaway CA and certificate made with openssl
# (installed from Debian's packages when missing).
if ! command -v openssl >/dev/null; then
  apt-get install -y -qq openssl >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq openssl >/dev/null; }
fi
given_dir="$out/given"
mkdir -p "$given_dir"
python3 - "$given_dir" <<'PY'
import subprocess, sys
d = sys.argv[1]
# A self-signed CA and a certificate for the webhook's names, by openssl.
names = ",".join(f"DNS:{n}" for n in ["edgeplane-webhook", "edgeplane-webhook.edgeplane-system",
                                        "edgeplane-webhook.edgeplane-system.svc"])
run = lambda *a: subprocess.run(a, check=True, capture_output=True)
run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=ca",
    "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.crt")
run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=edgeplane-webhook.edgeplane-system.svc",
    "-keyout", f"{d}/tls.key", "-out", f"{d}/tls.csr")
with open(f"{d}/ext", "w") as f:
    f.write(f"subjectAltName={names}\n")
run("openssl", "x509", "-req", "-in", f"{d}/tls.csr", "-CA", f"{d}/ca.crt", "-CAkey", f"{d}/ca.key",
    "-CAcreateserial", "-days", "30", "-extfile", f"{d}/ext", "-out", f"{d}/tls.crt")
PY
"$helm" template edgeplane "$chart" --namespace edgeplane-system \
  --set-file webhook.certificate.cert="$given_dir/tls.crt" \
  --set-file webhook.certificate.key="$given_dir/tls.key" \
  --set-file webhook.certificate.ca="$given_dir/ca.crt" >"$out/given.yaml"
# Invalid values are refused.
if "$helm" template edgeplane "$chart" --set scheduler.mode=later >/dev/null 2>&1; then
  echo "helm-check: scheduler.mode=later was accepted" >&2
  exit 1
fi
for bad in descheduler.maxEvictionsPerCycle=0 netctl.replicas=2 monitoring.enabeld=true podAntiAffinity=sometimes hub.mode=kubefed; do
  if "$helm" lint --strict "$chart" --set "$bad" >/dev/null 2>&1; then
    echo "helm-check: $bad was accepted" >&2
    exit 1
  fi
done
if ! "$helm" template edgeplane "$chart" --set descheduler.enabled=false | grep -q "kind: Deployment"; then
  echo "helm-check: the chart without the descheduler renders no Deployment" >&2
  exit 1
fi

if ! python3 -c 'import yaml' 2>/dev/null; then
  echo "helm-check: python3 with PyYAML is not available; rendered manifests not inspected" >&2
  echo "helm-check: lint and render ok"
  exit 0
fi

python3 scripts/chart-readme.py --check

python3 - "$out/gate.yaml" "$out/bind.yaml" "$out/full.yaml" "$out/given.yaml" <<'PY'
import base64, os, collections, sys, yaml

def load(path):
    docs = [d for d in yaml.safe_load_all(open(path)) if d is not None]
    for i, d in enumerate(docs):
        for field in ("apiVersion", "kind"):
            assert d.get(field), f"{path}[{i}]: no {field}"
        assert d.get("metadata", {}).get("name"), f"{path}[{i}] {d['kind']}: no metadata.name"
    return docs

def kinds(docs):
    return collections.Counter(d["kind"] for d in docs)

def check_common(name, docs):
    for d in docs:
        if d["kind"] in ("ClusterRole", "Role"):
            for rule in d.get("rules", []):
                for key in ("apiGroups", "resources", "verbs"):
                    assert not any("*" in v for v in rule.get(key, [])), \
                        f"{name}: {d['kind']} {d['metadata']['name']} grants * in {key}"
        if d["kind"] == "Deployment":
            spec = d["spec"]["template"]["spec"]
            assert spec["securityContext"]["runAsNonRoot"] is True, f"{name}: {d['metadata']['name']} may run as root"
            for c in spec["containers"]:
                sc = c["securityContext"]
                assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False, \
                    f"{name}: container {c['name']} is not locked down"
                assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
                assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
                assert "resources" in c and c["resources"].get("requests"), f"{name}: {c['name']} has no requests"
        if d["kind"] == "DaemonSet":
            # The measurement agent: host network, locked down, at most NET_BIND_SERVICE
            # (for the STAMP port 862; docs/agent.md says why it then runs as uid 0).
            spec = d["spec"]["template"]["spec"]
            assert spec.get("hostNetwork") is True, f"{name}: {d['metadata']['name']} is not on the host network"
            for c in spec["containers"]:
                sc = c["securityContext"]
                assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False, \
                    f"{name}: container {c['name']} is not locked down"
                assert sc["capabilities"]["drop"] == ["ALL"], f"{name}: {c['name']} keeps capabilities"
                assert sc["capabilities"].get("add", []) in ([], ["NET_BIND_SERVICE"]), \
                    f"{name}: {c['name']} adds {sc['capabilities']['add']}"
                assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
                assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
                assert c["resources"].get("requests"), f"{name}: {c['name']} has no requests"
    services = [d for d in docs if d["kind"] == "Service"]
    assert any(p["name"] == "metrics" for s in services for p in s["spec"]["ports"]), f"{name}: no metrics Service"

def arg(deployment, flag):
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    return [a.split("=", 1)[1] for a in args if a.startswith(flag + "=")]

gate = load(sys.argv[1])
bind = load(sys.argv[2])
crds = len([f for f in os.listdir("deploy/crds") if f.endswith(".yaml")])
expected = {"CustomResourceDefinition": crds, "ServiceAccount": 3, "ClusterRole": 3,
            "ClusterRoleBinding": 3, "Role": 3, "RoleBinding": 3, "Deployment": 3,
            "Service": 4, "MutatingWebhookConfiguration": 1, "PodDisruptionBudget": 3,
            # The keeper's CA, the webhook's certificate, the scheduler's and the
            # descheduler's gRPC certificates (mutual TLS is the default).
            "Secret": 4,
            "ValidatingAdmissionPolicy": 1, "ValidatingAdmissionPolicyBinding": 1}
assert kinds(gate) == expected, f"gate mode renders {dict(kinds(gate))}, expected {expected}"
check_common("gate", gate)
check_common("bind", bind)

webhook = next(d for d in gate if d["kind"] == "MutatingWebhookConfiguration")["webhooks"][0]
assert webhook["failurePolicy"] == "Ignore" and webhook["sideEffects"] == "None"
assert webhook["rules"][0]["operations"] == ["CREATE"] and webhook["rules"][0]["resources"] == ["pods"]
# By default the controller's certificate keeper issues the webhook's certificate: the
# chart's Secret is empty and the caBundle is the keeper's to write, so that two renders
# are the same (GitOps); with a certificate in the values, Helm writes both.
secret = next(d for d in gate if d["kind"] == "Secret" and d["metadata"]["name"].endswith("-webhook-cert"))
assert "data" not in secret and "caBundle" not in webhook["clientConfig"], "the keeper's Secret is rendered with data"
given = load(sys.argv[4])
given_webhook = next(d for d in given if d["kind"] == "MutatingWebhookConfiguration")["webhooks"][0]
given_secret = next(d for d in given if d["kind"] == "Secret" and d["metadata"]["name"].endswith("-webhook-cert"))
assert given_secret["type"] == "kubernetes.io/tls"
assert given_webhook["clientConfig"]["caBundle"] == given_secret["data"]["ca.crt"], "caBundle is not the Secret's CA"
assert base64.b64decode(given_secret["data"]["tls.crt"]).startswith(b"-----BEGIN CERTIFICATE-----")
service = webhook["clientConfig"]["service"]
assert any(d["kind"] == "Service" and d["metadata"]["name"] == service["name"]
           and d["spec"]["ports"][0]["port"] == 443 for d in gate), "no webhook Service on 443"
deployments = {d["metadata"]["labels"]["app.kubernetes.io/component"]: d
               for d in gate if d["kind"] == "Deployment"}
assert arg(deployments["scheduler"], "--mode") == ["gate"]
assert arg(deployments["scheduler"], "--quiet-period") == ["2s"]
assert arg(deployments["scheduler"], "--max-wait") == ["30s"]
assert arg(deployments["controller"], "--webhook-addr") == ["0.0.0.0:9443"]
assert arg(deployments["descheduler"], "--interval") == ["10s"]
assert arg(deployments["descheduler"], "--max-evictions-per-offer") == ["1"]
assert "--dry-run" not in deployments["descheduler"]["spec"]["template"]["spec"]["containers"][0]["args"]
descheduler_role = next(d for d in gate if d["kind"] == "ClusterRole" and d["metadata"]["name"].endswith("-descheduler"))
assert any("pods/eviction" in rule["resources"] for rule in descheduler_role["rules"]), "the descheduler cannot evict"
assert not any("delete" in rule["verbs"] for rule in descheduler_role["rules"]), "the descheduler may delete"

bind_kinds = kinds(bind)
assert "MutatingWebhookConfiguration" not in bind_kinds and not any(
    d["kind"] == "Secret" and d["metadata"]["name"].endswith("-webhook-cert") for d in bind), \
    f"bind mode renders a webhook: {dict(bind_kinds)}"
assert arg(deployments["controller"], "--webhook-certificate-secret") == ["edgeplane-webhook-cert"]
assert arg(bind_deployments_ := {d["metadata"]["labels"]["app.kubernetes.io/component"]: d
           for d in bind if d["kind"] == "Deployment"}["controller"], "--webhook-certificate-secret") == []
roles = {d["metadata"]["name"]: d for d in bind if d["kind"] == "ClusterRole"}
scheduler_role = next(r for n, r in roles.items() if n.endswith("-scheduler"))
assert any("pods/binding" in rule["resources"] for rule in scheduler_role["rules"]), "bind mode cannot bind"
gate_roles = [d for d in gate if d["kind"] == "ClusterRole" and d["metadata"]["name"].endswith("-scheduler")]
assert not any("pods/binding" in rule["resources"] for rule in gate_roles[0]["rules"]), "gate mode may bind"
bind_deployments = {d["metadata"]["labels"]["app.kubernetes.io/component"]: d
                    for d in bind if d["kind"] == "Deployment"}
assert arg(bind_deployments["scheduler"], "--mode") == ["bind"]
assert arg(bind_deployments["controller"], "--webhook-addr") == []
full = load(sys.argv[3])
check_common("full", full)
full_kinds = kinds(full)
for kind, n in {"ServiceMonitor": 1, "PodMonitor": 1, "PrometheusRule": 1, "Deployment": 4, "DaemonSet": 1, "ServiceAccount": 5}.items():
    assert full_kinds[kind] == n, f"monitoring, netctl and agent on: {n} {kind} expected, got {dict(full_kinds)}"
dashboards = [d for d in full if d["kind"] == "ConfigMap" and d["metadata"]["labels"].get("grafana_dashboard") == "1"]
assert len(dashboards) == 1, "no dashboard ConfigMap for the Grafana sidecar"
import json
json.loads(dashboards[0]["data"]["edgeplane.json"])
netctl = [d for d in full if d["kind"] == "Service" and d["metadata"]["labels"].get("network.edgeplane.io/controller") == "enabled"]
assert len(netctl) == 1 and netctl[0]["spec"]["ports"][0]["name"] == "grpcs", "no network controller Service on grpcs (mutual TLS)"
print(f"helm-check: gate mode {len(gate)} documents, bind mode {len(bind)} documents, "
      f"monitoring, netctl and agent {len(full)} documents: ok")
PY
