"""deploy/components/ postgresql, ingress, monitoring and multi-region, one by one and together: each builds with
kubectl's kustomize into what it says, and the real apiserver accepts it in a server-side dry run. The
ServiceMonitor and PrometheusRule are checked against the Prometheus Operator's own CRDs (from its Go module, pinned),
applied to the local cluster; the alert rules load in promtool (Debian's: make promtool) and
fire as their unit tests (alerts_test.yaml) say."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.harness import ROOT, kubectl
from tests.support.deployed import DEPLOY, NAMESPACE, kustomize, one

COMPONENTS = DEPLOY / "components"
OPERATOR_MODULE = "github.com/prometheus-operator/prometheus-operator@v0.85.0"
OPERATOR_CRDS = ("monitoring.coreos.com_servicemonitors.yaml", "monitoring.coreos.com_prometheusrules.yaml")
ALERTS = {"TenxGatewayErrorRate", "TenxGatewayArchiveLagging", "TenxGatewayCollectorDown",
          "TenxGatewayCollectorUnreachable", "TenxGatewayLogLinesLost", "TenxGatewayStreamSlotsFull"}


def overlay(path: Path, components: list[str], **kustomization) -> list[dict]:
    """An operator's overlay of deploy/ with ``components``, built by kubectl's kustomize."""
    (path / "kustomization.yaml").write_text(yaml.safe_dump({
        "resources": [os.path.relpath(DEPLOY, path)],
        "components": [os.path.relpath(COMPONENTS / name, path) for name in components], **kustomization}))
    return kustomize(path)


def dry_run(path: Path) -> subprocess.CompletedProcess:
    result = kubectl("apply", "--dry-run=server", "-k", str(path), check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    return result


def containers(manifests: list[dict]) -> dict[str, dict]:
    return {c["name"]: c for c in one(manifests, "Deployment")["spec"]["template"]["spec"]["containers"]}


@pytest.fixture(scope="session")
def operator_crds(local_cluster) -> None:
    """The Prometheus Operator's ServiceMonitor and PrometheusRule CRDs, from its Go module (the proxy's zip, pinned
    and checksummed by go), applied server-side (they are too big for a last-applied annotation)."""
    found = subprocess.run(["go", "mod", "download", "-json", OPERATOR_MODULE], capture_output=True, text=True,
                           timeout=600, check=True, env={**os.environ, "GOFLAGS": "-mod=mod"})
    crds = Path(json.loads(found.stdout)["Dir"]) / "example" / "prometheus-operator-crd"
    for name in OPERATOR_CRDS:
        kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crds / name), timeout=120)
    for name in ("servicemonitors", "prometheusrules"):
        kubectl("wait", "--for=condition=Established", f"crd/{name}.monitoring.coreos.com", "--timeout=60s",
                timeout=90)


def test_postgresql_takes_the_archive_url_from_a_secret_and_scales_out(rbac_applied, tmp_path):
    built = overlay(tmp_path, ["postgresql"])
    assert not [m for m in built if m["kind"] == "PersistentVolumeClaim"]
    deployment = one(built, "Deployment")
    assert deployment["spec"]["replicas"] == 2 and deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["data"] == {"name": "data", "emptyDir": {}}
    for container in containers(built).values():
        assert {"name": "GATEWAY_ARCHIVE_URL", "valueFrom": {"secretKeyRef": {"name": "tenx-gateway-archive",
                                                                              "key": "url"}}} in container["env"]
    dry_run(tmp_path)


def test_ingress_publishes_v1_only_and_trusts_one_proxy(rbac_applied, tmp_path):
    built = overlay(tmp_path, ["ingress"], patches=[{"target": {"kind": "Ingress", "name": "tenx-gateway"}, "patch": (
        "- {op: replace, path: /spec/rules/0/host, value: jobs.mycompany.com}")}])
    ingress = one(built, "Ingress")
    rule = ingress["spec"]["rules"][0]
    assert rule["host"] == "jobs.mycompany.com"
    assert [(p["path"], p["backend"]["service"]) for p in rule["http"]["paths"]] == [
        ("/v1", {"name": "tenx-gateway", "port": {"name": "http"}})]
    settings = one(built, "ConfigMap")
    assert settings["data"]["GATEWAY_TRUSTED_PROXY_HOPS"] == "1" and settings["data"]["GATEWAY_BIND"] == "0.0.0.0:8080"
    assert settings["metadata"]["name"] in json.dumps(one(built, "Deployment"))  # the pods roll onto it
    from gateway import settings as config
    assert config.from_env({**settings["data"], "GATEWAY_NAMESPACE": NAMESPACE}).trusted_proxy_hops == 1
    assert "ingress.networking.k8s.io/tenx-gateway" in dry_run(tmp_path).stdout


def test_multi_region_mounts_the_kubeconfig_secret_into_both_containers(rbac_applied, tmp_path):
    built = overlay(tmp_path, ["multi-region"], configMapGenerator=[{
        "name": "tenx-gateway", "namespace": NAMESPACE, "behavior": "merge",
        "literals": ["GATEWAY_REGIONS=us=@in-cluster,eu=eu"]}])
    for container in containers(built).values():
        assert {"name": "KUBECONFIG", "value": "/etc/tenx-gateway/regions/kubeconfig"} in container["env"]
        assert {"name": "regions-kubeconfig", "mountPath": "/etc/tenx-gateway/regions",
                "readOnly": True} in container["volumeMounts"]
    volume = next(v for v in one(built, "Deployment")["spec"]["template"]["spec"]["volumes"]
                  if v["name"] == "regions-kubeconfig")
    assert volume["secret"] == {"secretName": "regions-kubeconfig", "items": [{"key": "kubeconfig",
                                                                               "path": "kubeconfig"}]}
    from gateway import settings as config
    settings = config.from_env({**one(built, "ConfigMap")["data"], "GATEWAY_NAMESPACE": NAMESPACE})
    assert list(settings.regions) == ["us", "eu"]
    dry_run(tmp_path)


def test_monitoring_scrapes_both_listeners_and_its_objects_pass_the_operators_schemas(rbac_applied, operator_crds,
                                                                                    tmp_path):
    built = overlay(tmp_path, ["monitoring"])
    monitor = one(built, "ServiceMonitor")
    selected = [m for m in built if m["kind"] == "Service" and
                monitor["spec"]["selector"]["matchLabels"].items() <= m["metadata"]["labels"].items()]
    ports = {port["name"]: port for service in selected for port in service["spec"]["ports"]}
    assert {e["port"] for e in monitor["spec"]["endpoints"]} == set(ports) == {"metrics", "collector"}
    pod_ports = {p["name"] for c in containers(built).values() for p in c.get("ports", [])}
    assert {ports["metrics"]["targetPort"], ports["collector"]["targetPort"]} <= pod_ports
    assert "tenx-gateway" not in {s["metadata"]["name"] for s in selected}  # never the API Service
    rules = one(built, "PrometheusRule")["spec"]["groups"][0]["rules"]
    assert {rule["alert"] for rule in rules} == ALERTS
    result = dry_run(tmp_path)
    assert "servicemonitor.monitoring.coreos.com/tenx-gateway" in result.stdout
    assert "prometheusrule.monitoring.coreos.com/tenx-gateway" in result.stdout
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "rule.yaml").write_text(yaml.safe_dump({**one(built, "PrometheusRule"), "spec": {"groups": [
        {"name": "x", "rules": [{"alert": "X", "expr": {"not": "a string"}}]}]}}))
    refused = kubectl("apply", "--dry-run=server", "-f", str(broken / "rule.yaml"), check=False)
    assert refused.returncode != 0 and "expr" in refused.stderr  # the schema is really checked


def test_every_component_at_once(rbac_applied, operator_crds, tmp_path):
    names = ["postgresql", "ingress", "monitoring", "multi-region", "networkpolicy", "networkpolicy-postgresql"]
    built = overlay(tmp_path, names)
    assert {m["kind"] for m in built} >= {"Ingress", "ServiceMonitor", "PrometheusRule", "NetworkPolicy"}
    dry_run(tmp_path)


@pytest.fixture(scope="session")
def promtool() -> str:
    """Prometheus' promtool from Debian's package: unpacked once by `make promtool` (into .local/tools/),
    then reused."""
    built = subprocess.run(["make", "--no-print-directory", "-s", "-C", str(ROOT), "promtool"], capture_output=True,
                           text=True, timeout=1800)
    assert built.returncode == 0, built.stdout + built.stderr
    path = subprocess.run(["make", "--no-print-directory", "-s", "-C", str(ROOT), "promtool-path"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert Path(path).is_file(), path
    return path


def test_the_alert_rules_load_in_promtool_and_fire_as_their_tests_say(promtool, tmp_path):
    rule = yaml.safe_load((COMPONENTS / "monitoring" / "prometheusrule.yaml").read_text())
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule["spec"]))
    checked = subprocess.run([promtool, "check", "rules", str(tmp_path / "rules.yaml")], capture_output=True,
                             text=True, timeout=60)
    assert checked.returncode == 0 and f"SUCCESS: {len(ALERTS)} rules found" in checked.stdout, checked.stdout + checked.stderr
    tests = tmp_path / "alerts_test.yaml"
    tests.write_text((Path(__file__).parent / "alerts_test.yaml").read_text())
    tested = subprocess.run([promtool, "test", "rules", str(tests)], capture_output=True, text=True, timeout=120,
                            cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    tested_alerts = {case["alertname"] for t in yaml.safe_load(tests.read_text())["tests"]
                     for case in t["alert_rule_test"]}
    assert tested_alerts == ALERTS
