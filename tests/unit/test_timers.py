"""Persistent timers: the pure TimerTable (actors/timers.py) and the SchedulerActor around it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from actors.timers import MAX_SLEEP, Timer, TimerTable

T0 = datetime(2026, 11, 25, 10, 0, 0, tzinfo=timezone.utc)
ASK = 5.0


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def timer(key: str, seconds: float, kind: str = "reservation-expiry") -> Timer:
    return Timer(key, "CP1", kind, at(seconds), {"id": key})


# -- TimerTable (pure) ---------------------------------------------------------------


def test_pop_due_returns_the_due_timers_earliest_first_and_removes_them() -> None:
    table = TimerTable([timer("late", 30), timer("early", 10), timer("future", 100)])
    assert [t.key for t in table.pop_due(at(30))] == ["early", "late"]
    assert list(table.timers) == ["future"]
    assert table.pop_due(at(30)) == []


def test_pop_due_includes_a_timer_due_exactly_now() -> None:
    table = TimerTable([timer("a", 10)])
    assert [t.key for t in table.pop_due(at(9.999))] == []
    assert [t.key for t in table.pop_due(at(10))] == ["a"]


def test_timers_due_at_the_same_instant_pop_in_key_order() -> None:
    table = TimerTable([timer("b", 5), timer("a", 5)])
    assert [t.key for t in table.pop_due(at(5))] == ["a", "b"]


def test_putting_the_same_key_again_replaces_the_timer() -> None:
    table = TimerTable([timer("a", 10)])
    table.put(timer("a", 50))
    assert table.pop_due(at(10)) == []
    assert [t.due for t in table.pop_due(at(50))] == [at(50)]


def test_cancel_removes_a_timer_and_says_whether_it_existed() -> None:
    table = TimerTable([timer("a", 10)])
    assert table.cancel("a") is True
    assert table.cancel("a") is False
    assert table.pop_due(at(1000)) == []


def test_next_wait_is_the_time_to_the_earliest_timer() -> None:
    table = TimerTable([timer("a", 25), timer("b", 12)])
    assert table.next_wait(at(2)) == 10.0


def test_next_wait_is_capped_at_max_sleep() -> None:
    assert TimerTable([timer("a", MAX_SLEEP * 10)]).next_wait(T0) == MAX_SLEEP
    assert TimerTable().next_wait(T0) == MAX_SLEEP


def test_next_wait_is_zero_when_a_timer_is_due_or_overdue() -> None:
    table = TimerTable([timer("a", 10)])
    assert table.next_wait(at(10)) == 0.0
    assert table.next_wait(at(3600)) == 0.0


