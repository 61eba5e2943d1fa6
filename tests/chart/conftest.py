"""Shared helpers of the chart checks: the chart rendered by Helm's own engine (helm-python-sdk,
offline), its objects parsed, validated against the Kubernetes schemas (kubernetes-validate,
bundled) and, for the CRDs the chart may create, against the schemas in `schemas/`."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "odg"
SCHEMAS = Path(__file__).resolve().parent / "schemas"
RELEASE = "odg"
NAMESPACE = "delivery"
# The newest Kubernetes schema kubernetes-validate bundles; the chart needs nothing newer than 1.25.
KUBE_VERSION = kubernetes_validate.latest_version()

# Custom resources: (apiVersion, kind) -> our schema of the fields the chart may set.
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor.monitoring.coreos.com_v1.json",
    ("keda.sh/v1alpha1", "ScaledObject"): "scaledobject.keda.sh_v1alpha1.json",
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): "httproute.gateway.networking.k8s.io_v1.json",
}

# The values files of each autoscaling mode (chart-testing's convention: charts/odg/ci/*-values.yaml).
MODES = ["hpa", "keda", "none"]
# Every CI values file: the modes, the single-pod SQLite trial, and the exposed, policed release.
VALUE_FILES = MODES + ["sqlite", "exposed"]

# What an installation must set at least: the Secret with the database URL (the default
# database.mode is postgres, and the chart refuses to render without it). `render` and
# `objects` merge it under the values they are given unless asked for the bare defaults.
REQUIRED_VALUES = {"secrets": {"existingSecret": "odg-secrets"}}


def helm():
    import helm_python

    return helm_python


def chart_values() -> dict[str, Any]:
    """The chart's values.yaml, as written."""
    return yaml.safe_load((CHART / "values.yaml").read_text())


def ci_values(mode: str) -> dict[str, Any]:
    return yaml.safe_load((CHART / "ci" / f"{mode}-values.yaml").read_text()) or {}


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def render(values: dict[str, Any] | None = None, bare: bool = False) -> dict[str, str]:
    """Template path -> rendered text, by Helm's engine; `values` over REQUIRED_VALUES unless `bare`."""
    values = values or {}
    if not bare:
        values = deep_merge(REQUIRED_VALUES, values)
    chart = helm().Chart.load(str(CHART))
    try:
        return chart.render(values=values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    finally:
        chart.close()


def objects(values: dict[str, Any] | None = None, bare: bool = False) -> list[dict[str, Any]]:
    """Every Kubernetes object the chart renders with `values` (see `render`)."""
    found = []
    for path, text in sorted(render(values, bare).items()):
        if path.endswith("NOTES.txt"):
            continue
        for document in yaml.safe_load_all(text):
            if document:
                document.setdefault("metadata", {}).setdefault("annotations", {})
                document["metadata"]["annotations"]["test/source"] = path
                found.append(document)
    return found


def one(found: list[dict[str, Any]], kind: str, name_suffix: str = "") -> dict[str, Any]:
    matches = [o for o in found if o["kind"] == kind and o["metadata"]["name"].endswith(name_suffix)]
    assert len(matches) == 1, f"{kind} *{name_suffix}: {[o['metadata']['name'] for o in matches]}"
    return matches[0]


def validate(obj: dict[str, Any]) -> str:
    """Validates one object; returns how ('kubernetes <version>' or 'crd schema <file>')."""
    obj = copy.deepcopy(obj)
    obj["metadata"].get("annotations", {}).pop("test/source", None)
    if not obj["metadata"].get("annotations"):
        obj["metadata"].pop("annotations", None)
    key = (obj["apiVersion"], obj["kind"])
    if key in CRD_SCHEMAS:
        schema = json.loads((SCHEMAS / CRD_SCHEMAS[key]).read_text())
        jsonschema.validate(obj, schema, cls=jsonschema.Draft7Validator)
        return f"crd schema {CRD_SCHEMAS[key]}"
    kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
    return f"kubernetes {KUBE_VERSION}"


@pytest.fixture(scope="session")
def default_objects() -> list[dict[str, Any]]:
    return objects()


def odg_binary() -> Path | None:
    """The odg binary to check rendered config files with: $ODG_BIN, else target/debug/odg."""
    candidate = Path(os.environ.get("ODG_BIN", REPO / "target" / "debug" / "odg"))
    return candidate if candidate.is_file() and os.access(candidate, os.X_OK) else None
