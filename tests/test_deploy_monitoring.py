"""The shipped Prometheus rules and Grafana dashboard parse and use only metrics /metrics exports."""

from __future__ import annotations

import json
import re

import yaml
from prometheus_client.parser import text_string_to_metric_families

from controlplane.telemetry.metrics import Metrics, Readings
from tests.conftest import ROOT


def exported_names() -> set[str]:
    """Metric names (with their sample suffixes) a running control plane exports."""
    metrics = Metrics(
        Readings(lambda: 1, lambda: 0, lambda: True, lambda: {"files": 0.0, "kubernetes": 0.0}, lambda: 0, lambda: 0)
    )
    metrics.alert_counts = lambda: {"EnvoyDisconnected": 1}
    metrics.pushed("type.googleapis.com/envoy.config.cluster.v3.Cluster")
    metrics.acked("type.googleapis.com/envoy.config.cluster.v3.Cluster", 0.001, 0.002)
    metrics.nacked("type.googleapis.com/envoy.config.cluster.v3.Cluster")
    metrics.build.observe(0.01)
    metrics.rejected.inc()
    text = metrics.render().decode()
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


def referenced(expression: str) -> set[str]:
    return set(re.findall(r"\bcontrolplane_[a-z0-9_]+", expression))


def test_alert_rules_parse_and_use_exported_metrics() -> None:
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yaml").read_text(encoding="utf-8"))
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    assert len(exprs) >= 6
    used = set().union(*(referenced(e) for e in exprs))
    assert used <= exported_names(), used - exported_names()


def test_dashboard_parses_and_uses_exported_metrics() -> None:
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "controlplane-dashboard.json").read_text(encoding="utf-8"))
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    used = set().union(*(referenced(e) for e in exprs))
    assert used and used <= exported_names(), used - exported_names()
