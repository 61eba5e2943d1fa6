"""Replays the recorded scan burst (the scan-burst benchmark's series at
`charts/odg/ci/scan-burst-series.json`) through the HPA's replica computation (`hpa_sim.py`) with
the HPA the chart renders from its own values.yaml: targets, min/max, behaviour.

Series format: {"interval_seconds": N, "pods_at_start": P, "samples": [{"t": seconds,
"in_flight": requests in flight across all pods, "queue_wait_p95_seconds": x, "cpu_cores": y}]}.

How the replay reads it, every 15 s (the HPA's sync period), seeing the newest sample at least one
scrape interval old (Prometheus' lag):
- in flight per pod = in_flight / current replicas: a scanner's concurrency stays the same
  whatever the pod count, it only spreads over more pods;
- CPU utilisation = cpu_cores / current replicas / the Deployment's CPU request;
- queue wait p95 as recorded on `pods_at_start` pods: more pods would shorten it, so this can only
  make the replay scale up more and down later (conservative for the no-flapping claim).
"""

from __future__ import annotations

import json
import re

import pytest

from conftest import CHART, chart_values, objects, one
from hpa_sim import HpaSimulator

SERIES = CHART / "ci" / "scan-burst-series.json"
SYNC_PERIOD = 15


def load_series() -> dict:
    if not SERIES.is_file():
        pytest.fail(
            f"{SERIES.relative_to(CHART.parents[1])} is missing: it is the metric series recorded by the "
            "scan-burst benchmark (odg-bench); record it and commit it there. This test replays real "
            "recorded load only and generates nothing in its place."
        )
    series = json.loads(SERIES.read_text())
    for key in ["interval_seconds", "pods_at_start", "samples"]:
        assert key in series, f"{SERIES.name}: no {key!r}"
    samples = series["samples"]
    assert len(samples) >= 4, f"{SERIES.name}: too few samples"
    for sample in samples:
        for key in ["t", "in_flight", "queue_wait_p95_seconds", "cpu_cores"]:
            assert key in sample, f"{SERIES.name}: sample without {key!r}: {sample}"
    assert [s["t"] for s in samples] == sorted(s["t"] for s in samples), "samples out of order"
    return series


def cpu_cores(quantity: str) -> float:
    text = str(quantity)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def seconds(duration: str) -> int:
    match = re.fullmatch(r"(\d+)s", duration)
    assert match, duration
    return int(match.group(1))


def chart_hpa():
    """The HPA and CPU request the chart renders from values.yaml, checked against values.yaml."""
    found = objects()
    hpa = one(found, "HorizontalPodAutoscaler")["spec"]
    values = chart_values()
    assert hpa["behavior"]["scaleUp"] == values["autoscaling"]["behavior"]["scaleUp"]
    assert hpa["behavior"]["scaleDown"] == values["autoscaling"]["behavior"]["scaleDown"]
    container = one(found, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    targets = {}
    for metric in hpa["metrics"]:
        if metric["type"] == "Pods":
            targets[metric["pods"]["metric"]["name"]] = float(metric["pods"]["target"]["averageValue"])
        elif metric["type"] == "Resource":
            targets["cpu"] = float(metric["resource"]["target"]["averageUtilization"])
    return hpa, targets, cpu_cores(container["resources"]["requests"]["cpu"]), values


def replay(series, hpa, targets, cpu_request, lag):
    sim = HpaSimulator.from_hpa_spec(hpa)
    samples = series["samples"]
    # Until the sync that first sees the last sample.
    start, end = samples[0]["t"], samples[-1]["t"] + lag + SYNC_PERIOD
    replicas = series["pods_at_start"]
    steps = []
    now = start
    while now <= end:
        seen = [s for s in samples if s["t"] <= now - lag + 1e-6]
        if seen:
            sample = seen[-1]
            ratios = [
                sample["in_flight"] / replicas / targets["odg_http_in_flight_requests"],
                sample["queue_wait_p95_seconds"] / targets["odg_request_queue_wait_p95_seconds"],
            ]
            if "cpu" in targets:
                ratios.append(sample["cpu_cores"] / replicas / cpu_request * 100 / targets["cpu"])
            proposal = max(sim.proposal(replicas, ratio) for ratio in ratios)
            new = sim.step(now, replicas, ratios)
        else:
            sample, ratios, proposal, new = None, [], replicas, sim.step(now, replicas, [1.0])
        steps.append({"t": now, "sample": sample, "before": replicas, "proposal": proposal, "after": new})
        replicas = new
        now += SYNC_PERIOD
    return steps


@pytest.fixture(scope="module")
def replayed():
    series = load_series()
    hpa, targets, cpu_request, values = chart_hpa()
    lag = seconds(values["metrics"]["serviceMonitor"]["interval"])
    steps = replay(series, hpa, targets, cpu_request, lag)
    print(f"targets {targets}, CPU request {cpu_request} cores, metric lag {lag} s, min {hpa['minReplicas']}, max {hpa['maxReplicas']}")
    print("   t  in_flight  queue_p95  cpu   replicas  proposal  ->")
    for step in steps:
        sample = step["sample"] or {"in_flight": "-", "queue_wait_p95_seconds": "-", "cpu_cores": "-"}
        print(
            f"{step['t']:5.0f}  {sample['in_flight']!s:>9}  {sample['queue_wait_p95_seconds']!s:>9}  "
            f"{sample['cpu_cores']!s:>4}  {step['before']:>8}  {step['proposal']:>8}  {step['after']:>3}"
        )
    return {"series": series, "hpa": hpa, "targets": targets, "cpu_request": cpu_request, "lag": lag, "steps": steps}


def test_the_replay_stays_in_bounds_scales_up_at_once_and_never_flaps(replayed):
    hpa, steps = replayed["hpa"], replayed["steps"]
    down_window = hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"]
    minimum, maximum = hpa["minReplicas"], hpa["maxReplicas"]

    # Bounds (the first sync lifts the benchmark's single pod to minReplicas).
    assert all(minimum <= s["after"] <= maximum for s in steps), "replicas left [min, max]"

    # Scale up at once: whenever the metrics ask for more pods (below max), the same period adds some.
    for step in steps:
        if step["before"] >= minimum and step["proposal"] > step["before"] and step["before"] < maximum:
            assert step["after"] > step["before"], f"t={step['t']}: asked for {step['proposal']}, stayed at {step['before']}"

    # No flapping: no scale-up within the scale-down window after a scale-down, and a scale-down
    # only to a count every recommendation of the past window allows.
    downs = [s for s in steps if s["after"] < s["before"]]
    for down in downs:
        recent = [s["proposal"] for s in steps if down["t"] - down_window < s["t"] <= down["t"]]
        assert max(recent) <= down["after"], f"t={down['t']}: scaled down to {down['after']} though {max(recent)} was asked within {down_window} s"
        again = [s for s in steps if down["t"] < s["t"] <= down["t"] + down_window and s["after"] > s["before"]]
        assert not again, f"flapping: down at {down['t']} s, up again at {again[0]['t']} s"
        # The chart's rate limits, as the HPA applies them: from the count at each period's start,
        # at most `value` % fewer (rounded down to whole pods, as Kubernetes does).
        for policy in hpa["behavior"]["scaleDown"]["policies"]:
            assert policy["type"] == "Percent", policy
            earlier = [s["after"] for s in steps if s["t"] <= down["t"] - policy["periodSeconds"]]
            period_start = earlier[-1] if earlier else steps[0]["before"]
            floor = int(period_start * (1 - policy["value"] / 100))
            assert down["after"] >= min(floor, period_start), (
                f"t={down['t']}: {period_start} -> {down['after']} within {policy['periodSeconds']} s"
            )
    peak = max(s["after"] for s in steps)
    peak_t = next(s["t"] for s in steps if s["after"] == peak)
    quiet_tail = [s for s in steps if s["t"] > peak_t and s["proposal"] < peak]
    if quiet_tail and quiet_tail[-1]["t"] - quiet_tail[0]["t"] > down_window + 60:
        assert downs, "the load fell for longer than the scale-down window, yet nothing scaled down"
    print(f"peak {peak} replicas at t={peak_t} s; scale-downs: {[(s['t'], s['before'], s['after']) for s in downs]}")


def test_the_recorded_burst_is_met_within_the_first_periods(replayed):
    series, steps, lag, targets = replayed["series"], replayed["steps"], replayed["lag"], replayed["targets"]
    minimum = replayed["hpa"]["minReplicas"]
    over = [s for s in steps if s["sample"] and s["proposal"] > max(s["before"], minimum)]
    if not over:
        samples = series["samples"]
        pods = series["pods_at_start"]
        pytest.fail(
            "the recorded burst never exceeds a target at any HPA sync, so it cannot show a scale-up: "
            f"it spans {samples[-1]['t'] - samples[0]['t']:.1f} s on {pods} pod(s) with peaks of "
            f"{max(s['in_flight'] for s in samples)} requests in flight, a queue-wait p95 of "
            f"{max(s['queue_wait_p95_seconds'] for s in samples)} s and {max(s['cpu_cores'] for s in samples):.2f} cores; "
            f"the chart's targets are {targets} (CPU as % of {replayed['cpu_request']} cores), and the HPA acts every "
            f"{SYNC_PERIOD} s on metrics about {lag} s old. Record a burst that keeps the pods past a target for "
            "several sync periods, with a quiet tail longer than the scale-down window to show the way down."
        )
    onset = over[0]["sample"]["t"]
    first_up = next(s for s in steps if s["t"] >= onset and s["after"] > s["before"])
    assert first_up["t"] - onset <= lag + max(SYNC_PERIOD, series["interval_seconds"]), (
        f"first scale-up at {first_up['t']} s, load over target from {onset} s"
    )
    print(f"burst over target from t={onset} s; first scale-up at t={first_up['t']} s")
