"""The HorizontalPodAutoscaler's replica computation (autoscaling/v2, with `behavior`), as the
Kubernetes controller does it (pkg/controller/podautoscaler: horizontal.go, replica_calculator.go):

- per metric: usage ratio = current / target; within the tolerance (|1 - ratio| <= 0.1) the
  proposal is the current count, else ceil(ratio * current); the largest proposal wins;
- outside [min, max]: the bound;
- stabilisation: the recommendation is held between the lowest recommendation of the scale-up
  window and the highest of the scale-down window (each window's recommendations plus this one);
- rate policies: per direction, the replicas changed within each policy's period are subtracted
  to find the count at the period's start; `Pods` adds/removes `value`, `Percent` multiplies
  (up: ceil; down: truncated); `selectPolicy` Max picks the largest change, Min the smallest,
  Disabled none; the result is bounded by min/max.

Simplifications, which the replay reports: every pod reports its metrics at once (no missing or
unready pods), and a new replica serves from the sync period after it was requested.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Policy:
    type: str  # "Pods" | "Percent"
    value: int
    period_seconds: int


@dataclass(frozen=True)
class Rules:
    stabilization_window_seconds: int
    select_policy: str  # "Max" | "Min" | "Disabled"
    policies: tuple[Policy, ...]

    @staticmethod
    def from_spec(spec: dict[str, Any]) -> "Rules":
        return Rules(
            stabilization_window_seconds=int(spec.get("stabilizationWindowSeconds", 0)),
            select_policy=spec.get("selectPolicy", "Max"),
            policies=tuple(
                Policy(p["type"], int(p["value"]), int(p["periodSeconds"])) for p in spec["policies"]
            ),
        )


@dataclass
class HpaSimulator:
    min_replicas: int
    max_replicas: int
    scale_up: Rules
    scale_down: Rules
    tolerance: float = 0.1
    # (time, unstabilised recommendation)
    recommendations: list[tuple[float, int]] = field(default_factory=list)
    # (time, replicas added) and (time, replicas removed)
    scale_up_events: list[tuple[float, int]] = field(default_factory=list)
    scale_down_events: list[tuple[float, int]] = field(default_factory=list)
    _initialised: bool = False

    @staticmethod
    def from_hpa_spec(spec: dict[str, Any], tolerance: float = 0.1) -> "HpaSimulator":
        return HpaSimulator(
            min_replicas=int(spec.get("minReplicas", 1)),
            max_replicas=int(spec["maxReplicas"]),
            scale_up=Rules.from_spec(spec["behavior"]["scaleUp"]),
            scale_down=Rules.from_spec(spec["behavior"]["scaleDown"]),
            tolerance=tolerance,
        )

    def proposal(self, current: int, usage_ratio: float) -> int:
        """One metric's replica count: the controller's calcPlainMetricReplicas."""
        if math.isnan(usage_ratio) or abs(1.0 - usage_ratio) <= self.tolerance:
            return current
        return int(math.ceil(usage_ratio * current))

    def step(self, now: float, current: int, usage_ratios: list[float]) -> int:
        """One reconciliation at `now` with `current` replicas; returns the new count."""
        if current > self.max_replicas:
            desired = self.max_replicas
        elif current < self.min_replicas:
            desired = self.min_replicas
        else:
            metric_desired = max(self.proposal(current, ratio) for ratio in usage_ratios)
            stabilised = self._stabilise(now, current, metric_desired)
            desired = self._limit_rate(now, current, stabilised)
        if desired > current:
            self.scale_up_events.append((now, desired - current))
        elif desired < current:
            self.scale_down_events.append((now, current - desired))
        return desired

    def _stabilise(self, now: float, current: int, desired: int) -> int:
        # A new HPA holds the current count for its first scale-down window
        # (maybeInitScaleDownStabilizationWindow).
        if not self._initialised:
            self._initialised = True
            if self.scale_down.stabilization_window_seconds > 0:
                self.recommendations.append((now, current))
        up_cutoff = now - self.scale_up.stabilization_window_seconds
        down_cutoff = now - self.scale_down.stabilization_window_seconds
        up_recommendation = desired
        down_recommendation = desired
        for timestamp, recommendation in self.recommendations:
            if timestamp > up_cutoff:
                up_recommendation = min(recommendation, up_recommendation)
            if timestamp > down_cutoff:
                down_recommendation = max(recommendation, down_recommendation)
        # Forget what no window can see any more, then remember this one.
        oldest = min(up_cutoff, down_cutoff)
        self.recommendations = [(t, r) for t, r in self.recommendations if t > oldest]
        self.recommendations.append((now, desired))
        recommendation = current
        if recommendation < up_recommendation:
            recommendation = up_recommendation
        if recommendation > down_recommendation:
            recommendation = down_recommendation
        return recommendation

    @staticmethod
    def _changed_within(events: list[tuple[float, int]], now: float, period: int) -> int:
        return sum(change for timestamp, change in events if timestamp > now - period)

    def _limit_rate(self, now: float, current: int, desired: int) -> int:
        if desired > current:
            rules = self.scale_up
            if rules.select_policy == "Disabled":
                return current
            limit = -math.inf if rules.select_policy != "Min" else math.inf
            for policy in rules.policies:
                start = (
                    current
                    - self._changed_within(self.scale_up_events, now, policy.period_seconds)
                    + self._changed_within(self.scale_down_events, now, policy.period_seconds)
                )
                if policy.type == "Pods":
                    proposed = start + policy.value
                else:
                    proposed = int(math.ceil(start * (1 + policy.value / 100)))
                limit = max(limit, proposed) if rules.select_policy != "Min" else min(limit, proposed)
            limit = max(int(limit), current)
            return min(desired, limit, self.max_replicas)
        if desired < current:
            rules = self.scale_down
            if rules.select_policy == "Disabled":
                return current
            limit = math.inf if rules.select_policy != "Min" else -math.inf
            for policy in rules.policies:
                start = (
                    current
                    - self._changed_within(self.scale_up_events, now, policy.period_seconds)
                    + self._changed_within(self.scale_down_events, now, policy.period_seconds)
                )
                if policy.type == "Pods":
                    proposed = start - policy.value
                else:
                    proposed = int(start * (1 - policy.value / 100))
                limit = min(limit, proposed) if rules.select_policy != "Min" else max(limit, proposed)
            limit = min(int(limit), current)
            return max(desired, limit, self.min_replicas)
        return desired
