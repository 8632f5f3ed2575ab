"""The alerts (deploy/components/monitoring) and the Grafana dashboard (deploy/grafana) query only metrics the code
exports, under their real names (a renamed metric would leave an alert that never fires)."""
import json
import re

import yaml
from prometheus_client import REGISTRY

from gateway.api import metrics
from gateway.collector import metrics as collector_metrics

from tests.support.harness import ROOT

NAME = re.compile(r"\b(tenx_[a-z_]+)")


def exported() -> set[str]:
    """Every series name the two registries expose: a counter's ``_total``, a histogram's ``_bucket``, ``_count``
    and ``_sum``, a gauge's own name (whether or not a sample exists yet)."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    return {family.name + suffix for registry in (REGISTRY, collector_metrics.REGISTRY)
            for family in registry.collect() if family.name.startswith("tenx_")
            for suffix in suffixes[family.type]}


def queried(expressions: list[str]) -> set[str]:
    return {name for expr in expressions for name in NAME.findall(expr)}


def rule_expressions() -> list[str]:
    rule = yaml.safe_load((ROOT / "deploy/components/monitoring/prometheusrule.yaml").read_text())
    return [r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]]


def dashboard_expressions() -> list[str]:
    dashboard = json.loads((ROOT / "deploy/grafana/tenx-gateway.json").read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert panels and all(p["targets"] for p in panels)
    variables = [v["query"]["query"] for v in dashboard["templating"]["list"] if isinstance(v.get("query"), dict)]
    return [t["expr"] for p in panels for t in p["targets"]] + variables


def test_the_alerts_query_exported_metrics():
    names = queried(rule_expressions())
    assert names and names <= exported(), names - exported()


def test_the_dashboard_queries_exported_metrics_and_shows_every_one():
    names = queried(dashboard_expressions())
    assert names <= exported(), names - exported()
    family = re.compile(r"_(total|bucket|count|sum)$")
    assert {family.sub("", n) for n in exported()} == {family.sub("", n) for n in names}


def test_the_dashboard_is_importable():
    dashboard = json.loads((ROOT / "deploy/grafana/tenx-gateway.json").read_text())
    assert dashboard["uid"] == "tenx-gateway" and dashboard["schemaVersion"] >= 36
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert all(p["datasource"] == {"type": "prometheus", "uid": "${datasource}"} for p in dashboard["panels"]
               if p["type"] != "row")
