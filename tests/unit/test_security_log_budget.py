"""The node's own security log is bounded per host and minute (actors.host.worker.SecurityLogBudget)."""

from __future__ import annotations

from actors.host.worker import SecurityLogBudget


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_past_the_budget_events_are_dropped_and_the_count_said_once_in_the_next_minute() -> None:
    clock = Clock()
    budget = SecurityLogBudget(per_minute=2, clock=clock)
    assert [budget.admit() for _ in range(4)] == [(True, 0), (True, 0), (False, 0), (False, 0)]
    clock.now += 60.0
    assert budget.admit() == (True, 2)
    assert budget.admit() == (True, 0)
