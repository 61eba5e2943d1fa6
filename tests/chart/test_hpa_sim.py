"""The HPA simulator against behaviour Kubernetes documents, on hand-made metric sequences
(not recorded data): tolerance, the default-burst scale-up rate, the scale-down window and rate,
bounds, and a flapping load."""

from __future__ import annotations

from hpa_sim import HpaSimulator, Policy, Rules

UP = Rules(0, "Max", (Policy("Percent", 100, 15), Policy("Pods", 4, 15)))
DOWN = Rules(300, "Max", (Policy("Percent", 25, 60),))


def simulator(minimum=2, maximum=20):
    return HpaSimulator(minimum, maximum, UP, DOWN)


def run(sim, current, ratio_at, seconds, period=15):
    """Replicas after each period; `ratio_at(t, replicas)` gives the usage ratio."""
    history = []
    for step in range(seconds // period):
        now = step * period
        current = sim.step(now, current, [ratio_at(now, current)])
        history.append(current)
    return history


def test_within_tolerance_nothing_moves():
    sim = simulator()
    assert run(sim, 4, lambda t, r: 1.09, 600) == [4] * 40
    assert run(simulator(), 4, lambda t, r: 0.91, 600) == [4] * 40


def test_scale_up_is_immediate_and_bounded_by_the_policies():
    sim = simulator(maximum=30)
    # A load worth 40 pods arrives on 2 pods: +4 pods or +100 % per 15 s, whichever is more.
    load = 40.0
    history = run(sim, 2, lambda t, r: load / r, 90)
    assert history[:4] == [6, 12, 24, 30], history


def test_scale_down_waits_for_the_window_then_goes_at_most_a_quarter_a_minute():
    sim = simulator()
    load = {"pods": 16.0}
    history = run(sim, 16, lambda t, r: (load["pods"] if t < 60 else 4.0) / r, 900)
    first_down = next(i for i, r in enumerate(history) if r < 16)
    # The load falls at t=60; the last high recommendation leaves the window 300 s later.
    assert first_down * 15 >= 60 + 300 - 15, history
    after = history[first_down:]
    assert all(b <= a for a, b in zip(after, after[1:])), history
    # 25 % per 60 s: 16 -> 12 -> 9 -> 6 -> 4 (the load's need), never below.
    assert [r for i, r in enumerate(history) if i == 0 or r != history[i - 1]] == [16, 12, 9, 6, 4], history


def test_bounds_hold():
    sim = simulator(minimum=2, maximum=5)
    assert run(sim, 1, lambda t, r: 0.0, 30)[0] == 2
    assert max(run(simulator(minimum=2, maximum=5), 2, lambda t, r: 100.0 / r, 300)) == 5


def test_a_flapping_load_does_not_make_the_replicas_flap():
    sim = simulator()
    # 10 pods' worth for 30 s, 2 pods' worth for 30 s, over and over.
    history = run(sim, 2, lambda t, r: (10.0 if (t // 30) % 2 == 0 else 2.0) / r, 900)
    peak_index = history.index(max(history))
    after = history[peak_index:]
    assert all(b <= a for a, b in zip(after, after[1:])), history
    assert min(after) == max(history), "the window holds the peak while peaks recur"
