"""The chart, rendered by Helm's engine offline for default values and for each autoscaling mode,
linted, and every rendered object validated: Kubernetes kinds against the bundled Kubernetes
schemas, the ServiceMonitor and ScaledObject against `schemas/`. Then what each object must hold."""

from __future__ import annotations

import json
import re
import subprocess
import time

import jsonschema
import kubernetes_validate
import pytest
import yaml

from conftest import (
    CHART,
    NAMESPACE,
    RELEASE,
    REQUIRED_VALUES,
    VALUE_FILES,
    SCHEMAS,
    chart_values,
    ci_values,
    helm,
    objects,
    odg_binary,
    one,
    render,
    validate,
)

FULLNAME = RELEASE  # the release is named like the chart


def kinds(found):
    return sorted(o["kind"] for o in found)


def test_helm_engine_is_the_real_one_and_works_offline():
    # Helm's Go library, not a reimplementation; no cluster or network is touched by rendering.
    assert helm().helm_sdk_version().startswith("v4.")
    assert render()


def test_lint_is_clean_for_defaults_and_every_mode():
    for values in [REQUIRED_VALUES] + [ci_values(name) for name in VALUE_FILES]:
        report = helm().lint(str(CHART), values, strict=True, namespace=NAMESPACE)
        problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
        assert not problems, (values, problems)


@pytest.mark.parametrize("mode", ["default"] + VALUE_FILES)
def test_every_rendered_object_is_valid(mode):
    values = {} if mode == "default" else ci_values(mode)
    found = objects(values)
    assert found
    for obj in found:
        try:
            how = validate(obj)
        except (kubernetes_validate.ValidationError, jsonschema.ValidationError) as error:
            pytest.fail(f"{mode}: {obj['kind']} {obj['metadata']['name']}: {error}")
        print(f"{mode}: {obj['kind']} {obj['metadata']['name']}: valid ({how})")


def test_what_each_mode_renders():
    default = kinds(objects())
    assert default == sorted(
        ["ConfigMap", "ConfigMap", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service", "ServiceAccount"]
    ), default
    hpa = kinds(objects(ci_values("hpa")))
    for kind in ["HorizontalPodAutoscaler", "ServiceMonitor", "CronJob"]:
        assert kind in hpa
    assert hpa.count("CronJob") == 2 and "ScaledObject" not in hpa
    keda = kinds(objects(ci_values("keda")))
    assert "ScaledObject" in keda and "HorizontalPodAutoscaler" not in keda
    none = kinds(objects(ci_values("none")))
    assert "ScaledObject" not in none and "HorizontalPodAutoscaler" not in none


def test_deployment_is_hardened_probed_and_spread(default_objects):
    deployment = one(default_objects, "Deployment")
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "admin"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/live", "port": "admin"}
    assert container["resources"]["requests"]["cpu"] and container["resources"]["limits"]["memory"]
    # Every writable path is a volume.
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/etc/odg"]["readOnly"] is True
    volumes = {v["name"]: v for v in pod["volumes"]}
    values = chart_values()
    expected = values["cache"]["diskMiB"] + values["cache"]["diskHeadroomMiB"]
    assert volumes["cache"]["emptyDir"]["sizeLimit"] == f"{expected}Mi"
    keys = [c["topologyKey"] for c in pod["topologySpreadConstraints"]]
    assert keys == ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]
    assert one(default_objects, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1


def test_disk_tier_and_emptydir_follow_the_cache_config():
    found = objects({"cache": {"diskMiB": 4096, "diskHeadroomMiB": 256, "memoryMiB": 512}})
    pod = one(found, "Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["cache"]["emptyDir"]["sizeLimit"] == "4352Mi"
    config = yaml.safe_load(one(found, "ConfigMap", FULLNAME)["data"]["odg.yaml"])
    assert config["cache"]["disk_bytes"] == "4096MiB"
    assert config["cache"]["memory_bytes"] == "512MiB"
    assert config["cache_dir"] == "/var/cache/odg"


def test_secrets_are_referenced_never_inlined():
    found = objects(ci_values("hpa"))
    container = one(found, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["ODG_REDIS_URL"]["valueFrom"]["secretKeyRef"] == {"name": "odg-secrets", "key": "redis-url", "optional": False}
    assert env["ODG_ADMIN_TOKENS"]["valueFrom"]["secretKeyRef"]["key"] == "admin-tokens"
    assert env["REGISTRY_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "registry"
    assert not [o for o in found if o["kind"] == "Secret"]
    with pytest.raises(Exception, match="existingSecret"):
        render({"cache": {"redis": {"enabled": True}}, "database": {"mode": "sqlite"}, "replicas": 1, "autoscaling": {"mode": "none"}}, bare=True)


def test_hpa_scales_on_load_per_pod_and_cpu_with_the_burst_behaviour(default_objects):
    values = chart_values()["autoscaling"]
    hpa = one(default_objects, "HorizontalPodAutoscaler")["spec"]
    assert hpa["minReplicas"] == values["minReplicas"] == 2
    assert hpa["maxReplicas"] == values["maxReplicas"]
    metrics = {m.get("pods", m.get("resource", {})).get("metric", {}).get("name", m.get("resource", {}).get("name")): m for m in hpa["metrics"]}
    assert metrics["odg_http_in_flight_requests"]["pods"]["target"] == {
        "type": "AverageValue",
        "averageValue": str(values["targets"]["inFlightPerPod"]),
    }
    assert metrics["odg_request_queue_wait_p95_seconds"]["pods"]["target"]["averageValue"] == str(
        values["targets"]["queueWaitP95Seconds"]
    )
    assert metrics["cpu"]["resource"]["target"]["averageUtilization"] == values["targets"]["cpuUtilization"]
    behavior = hpa["behavior"]
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert behavior["scaleDown"]["policies"] == [{"type": "Percent", "value": 25, "periodSeconds": 60}]
    # CPU only when there is no prometheus-adapter.
    cpu_only = one(objects({"autoscaling": {"hpa": {"loadMetrics": False}}}), "HorizontalPodAutoscaler")
    assert [m["type"] for m in cpu_only["spec"]["metrics"]] == ["Resource"]


def test_prometheus_adapter_rules_serve_the_hpa_metrics(default_objects):
    config_map = one(default_objects, "ConfigMap", "-prometheus-adapter")
    config = yaml.safe_load(config_map["data"]["config.yaml"])
    jsonschema.validate(config, json.loads((SCHEMAS / "prometheus-adapter-config.json").read_text()))
    served = {rule["name"]["as"]: rule for rule in config["rules"]}
    hpa = one(default_objects, "HorizontalPodAutoscaler")["spec"]
    wanted = {m["pods"]["metric"]["name"] for m in hpa["metrics"] if m["type"] == "Pods"}
    assert wanted <= set(served), (wanted, set(served))
    in_flight = served["odg_http_in_flight_requests"]
    assert in_flight["resources"]["overrides"]["pod"] == {"resource": "pod"}
    assert 'route!~"/live|/ready|/metrics"' in in_flight["metricsQuery"], "probes and scrapes are not load"
    queue = served["odg_request_queue_wait_p95_seconds"]["metricsQuery"]
    assert "histogram_quantile(0.95" in queue and " or " in queue, "0 instead of NaN when idle"
    for rule in config["rules"]:
        assert "<<.LabelMatchers>>" in rule["metricsQuery"] and "<<.GroupBy>>" in rule["metricsQuery"]


def test_keda_scales_on_the_same_signals_with_the_same_behaviour():
    found = objects(ci_values("keda"))
    scaled = one(found, "ScaledObject")["spec"]
    values = chart_values()["autoscaling"]
    assert scaled["minReplicaCount"] == 2 and scaled["maxReplicaCount"] == values["maxReplicas"]
    assert scaled["scaleTargetRef"]["name"] == one(found, "Deployment")["metadata"]["name"]
    behavior = scaled["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior == {"scaleUp": values["behavior"]["scaleUp"], "scaleDown": values["behavior"]["scaleDown"]}
    # The behaviour is an HPA behaviour: validate it with Kubernetes' own schema.
    kubernetes_validate.validate(
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "behaviour-check"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"},
                "maxReplicas": 2,
                "behavior": behavior,
            },
        },
        kubernetes_validate.latest_version(),
        strict=True,
    )
    triggers = {(t["type"], t.get("metricType")): t for t in scaled["triggers"]}
    in_flight = triggers[("prometheus", "AverageValue")]["metadata"]
    assert in_flight["threshold"] == str(values["targets"]["inFlightPerPod"])
    assert f'namespace="{NAMESPACE}",service="{FULLNAME}"' in in_flight["query"]
    assert in_flight["query"].startswith("sum(http_server_active_requests{")
    queue = triggers[("prometheus", "Value")]["metadata"]
    assert queue["threshold"] == str(values["targets"]["queueWaitP95Seconds"])
    assert "odg_request_queue_wait_seconds_bucket" in queue["query"] and "or vector(0)" in queue["query"]
    assert triggers[("cpu", "Utilization")]["metadata"]["value"] == str(values["targets"]["cpuUtilization"])
    assert triggers[("prometheus", "Value")]["authenticationRef"] == {"name": "prometheus-auth"}


def test_servicemonitor_scrapes_the_admin_port():
    found = objects(ci_values("hpa"))
    monitor = one(found, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "metrics" and endpoint["path"] == "/metrics"
    service = one(found, "Service")
    assert {p["name"]: p["targetPort"] for p in service["spec"]["ports"]} == {"http": "http", "metrics": "admin"}


def test_cronjobs_run_the_extensions_with_their_own_resources_and_schedules():
    found = objects(ci_values("hpa"))
    values = chart_values()["extensions"]
    enumerate_job = one(found, "CronJob", "-enumerate")
    cache_manager = one(found, "CronJob", "-cache-manager")
    for job, name in [(enumerate_job, "enumerate"), (cache_manager, "cacheManager")]:
        spec = job["spec"]
        assert spec["schedule"] == values[name]["schedule"]
        assert spec["concurrencyPolicy"] == "Forbid"
        pod = spec["jobTemplate"]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["resources"] == values[name]["resources"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert pod["restartPolicy"] == "Never"
    args = enumerate_job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[0] == "enumerate" and f"http://{FULLNAME}.{NAMESPACE}.svc:5000" in args
    assert args[args.index("--max-start-jitter") + 1] == str(values["enumerate"]["maxStartJitterSeconds"])
    manager = cache_manager["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert manager["args"][manager["args"].index("--prune-budget") + 1] == "512MiB"
    assert {e["name"] for e in manager["env"]} >= {"ODG_REDIS_URL"}


def test_max_below_min_and_prune_without_redis_are_refused():
    with pytest.raises(Exception, match="maxReplicas"):
        render({"autoscaling": {"minReplicas": 5, "maxReplicas": 3}})
    with pytest.raises(Exception, match="pruneBudgetMiB"):
        render({"extensions": {"cacheManager": {"enabled": True, "pruneBudgetMiB": 10}}})
    with pytest.raises(Exception):
        render({"autoscaling": {"mode": "sometimes"}})


def test_rendered_config_files_are_accepted_by_the_real_binary(tmp_path):
    """The ConfigMap's odg.yaml starts `odg serve` (deny_unknown_fields), and its extensions.yaml
    is parsed by `odg enumerate`. Needs the built binary ($ODG_BIN or target/debug/odg)."""
    binary = odg_binary()
    if binary is None:
        pytest.skip("no odg binary built (cargo build -p odg, or set ODG_BIN)")
    data = one(objects(ci_values("hpa")), "ConfigMap", FULLNAME)["data"]
    config = yaml.safe_load(data["odg.yaml"])
    config["listen"] = "127.0.0.1:0"
    config["server"]["admin_listen"] = "127.0.0.1:0"
    config["cache_dir"] = str(tmp_path / "cache")
    (tmp_path / "odg.yaml").write_text(yaml.safe_dump(config))
    env = {"REGISTRY_PASSWORD": "x", "PATH": "/usr/bin:/bin", "ODG_LOG": "info"}
    serve = subprocess.Popen(
        [str(binary), "serve", "--config", str(tmp_path / "odg.yaml")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        log = ""
        while time.monotonic() < deadline and serve.poll() is None:
            time.sleep(0.2)
            break_out = False
            try:
                log += serve.stderr.readline()
                break_out = "listening" in log
            except ValueError:
                pass
            if break_out:
                break
        assert "listening" in log, f"odg serve did not start with the rendered config:\n{log}{serve.stderr.read() if serve.poll() is not None else ''}"
    finally:
        serve.kill()
        serve.wait()

    (tmp_path / "extensions.yaml").write_text(data["extensions.yaml"])
    result = subprocess.run(
        [str(binary), "enumerate", "--config", str(tmp_path / "extensions.yaml"), "--url", "http://127.0.0.1:9", "--no-metrics", "--summary", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0, "nothing listens there"
    assert "parsing" not in result.stderr, result.stderr
    summary = json.loads(result.stdout)
    assert summary["components"] == 2, summary

    # The CronJobs' command lines parse (clap exits 2 on a usage error); nothing listens at the
    # URLs, so each run fails at its first connection instead.
    for job in [o for o in objects(ci_values("hpa")) if o["kind"] == "CronJob"]:
        args = list(job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"])
        args[args.index("--config") + 1] = str(tmp_path / "extensions.yaml")
        args[args.index("--url") + 1] = "http://127.0.0.1:9"
        if "--max-start-jitter" in args:
            args[args.index("--max-start-jitter") + 1] = "0"
        run = subprocess.run(
            [str(binary), *args],
            env={**env, "ODG_REDIS_URL": "redis://127.0.0.1:9"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        name = job["metadata"]["name"]
        assert run.returncode == 1, f"{name}: exit {run.returncode}\n{run.stdout}\n{run.stderr}"
        assert "usage" not in run.stderr.lower(), f"{name}: {run.stderr}"


def test_values_schema_refuses_typos():
    # values.schema.json: an unknown autoscaling key is a mistake, not a silent no-op.
    with pytest.raises(Exception):
        render({"autoscaling": {"minReplica": 3}})
    assert re.match(r"^\d+\.\d+\.\d+$", helm().Chart.load(str(CHART)).version)
