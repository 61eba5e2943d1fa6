"""The Grafana dashboard shipped with the chart: valid JSON, a panel for each thing an operator of a
bursty fleet needs, and only metric names the service (or Kubernetes' exporters) really has — read
from the Rust sources, so a renamed metric breaks this test, not the dashboard in production."""

from __future__ import annotations

import json
import re

from conftest import CHART, REPO, ci_values, objects, one

DASHBOARD = CHART / "dashboards" / "odg.json"
# Series from outside odg: Prometheus itself, kube-state-metrics, and the process collector.
EXTERNAL = {"up", "kube_horizontalpodautoscaler_status_desired_replicas", "kube_deployment_status_replicas_available", "kube_pod_container_resource_limits", "process_cpu_seconds_total", "process_resident_memory_bytes"}
PROMQL_WORDS = {"sum", "by", "rate", "histogram_quantile", "max", "min", "avg", "count", "le", "or", "vector", "on", "without"}


def service_metric_names() -> set[str]:
    """Every metric name constant in the crates' metrics.rs files."""
    names = set()
    for path in REPO.glob("crates/*/src/metrics.rs"):
        names |= set(re.findall(r'pub const [A-Z_]+: &str = "([a-z_]+)";', path.read_text()))
    return names


def expressions(dashboard) -> list[tuple[str, str]]:
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_the_dashboard_covers_what_scaling_and_caching_need():
    dashboard = json.loads(DASHBOARD.read_text())
    titles = " | ".join(panel["title"] for panel in dashboard["panels"]).lower()
    for topic in ["request rate", "latency", "queue wait", "in flight per pod", "cache hit ratio per tier", "what would a bigger cache give", "origin fetches", "memory against the configured bound", "replicas"]:
        assert topic in titles, topic
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24


def test_every_metric_in_the_dashboard_exists():
    known = service_metric_names()
    assert {"http_server_active_requests", "odg_request_queue_wait_seconds", "odg_cache_lookups_total", "odg_registry_requests_total"} <= known
    dashboard = json.loads(DASHBOARD.read_text())
    for title, expr in expressions(dashboard):
        without_labels = re.sub(r"\b(?:by|without)\s*\([^)]*\)", "", expr)
        without_labels = re.sub(r"\{[^}]*\}", "", without_labels)
        without_labels = re.sub(r"\[[^\]]*\]", "", without_labels)
        for name in re.findall(r"\b([a-z_][a-z0-9_]*)\b", without_labels):
            if name in PROMQL_WORDS or name in EXTERNAL:
                continue
            base = re.sub(r"_(bucket|count|sum)$", "", name)
            assert name in known or base in known, f"{title}: unknown metric {name!r} in {expr}"


def test_the_dashboard_configmap_carries_the_file():
    found = objects({"dashboard": {"enabled": True}})
    config_map = one(found, "ConfigMap", "-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(config_map["data"]["odg.json"]) == json.loads(DASHBOARD.read_text())
    assert one(objects(ci_values("hpa")), "ConfigMap", "-dashboard")
