"""Persistent timers: the pure TimerTable (actors/timers.py) and the SchedulerActor around it."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from thespian.actors import Actor, ActorSystem

from actors.messages import CancelTimer, SchedulerStarted, ScheduleTimer, StartScheduler, TimerFired
from actors.scheduler import SchedulerActor
from actors.settings import Settings
from actors.timers import Timer
from storage import Store, iso

T0 = datetime(2026, 11, 25, 10, 0, 0, tzinfo=timezone.utc)
ASK = 5.0


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def timer(key: str, seconds: float, kind: str = "reservation-expiry") -> Timer:
    return Timer(key, "CP1", kind, at(seconds), {"id": key})


# -- SchedulerActor (actor level, simpleSystemBase, injected clock) -------------------

CLOCK: dict[str, datetime] = {"now": T0}


class ClockedScheduler(SchedulerActor):
    """The scheduler with the test's clock."""

    clock = staticmethod(lambda: CLOCK["now"])  # type: ignore[assignment]


FIRED = "fired?"


class FakeRegistry(Actor):
    """Records TimerFired; answers FIRED with the list of TimerFired received so far."""

    def __init__(self) -> None:
        super().__init__()
        self.fired: list[TimerFired] = []

    def receiveMessage(self, message: Any, sender: Any) -> None:
        if isinstance(message, TimerFired):
            self.fired.append(message)
        elif message == FIRED:
            self.send(sender, list(self.fired))


@dataclass
class Harness:
    system: Any
    scheduler: Any
    registry: Any
    db: str

    def start(self) -> SchedulerStarted:
        Store(self.db).close()  # run.py creates and migrates the file before any actor opens it
        settings = Settings(db=self.db, log_level="WARNING")
        reply = self.system.ask(self.scheduler, StartScheduler(settings, self.registry), ASK)
        assert isinstance(reply, SchedulerStarted)
        return reply

    def fired(self) -> list[TimerFired]:
        reply = self.system.ask(self.registry, FIRED, ASK)
        assert isinstance(reply, list)
        return reply

    def fired_keys(self) -> list[str]:
        return [f.key for f in self.fired()]

    def schedule(self, key: str, seconds: float, **data: Any) -> None:
        self.system.tell(self.scheduler, ScheduleTimer(key, "CP1", "test", iso(at(seconds)), data))

    def poke(self) -> None:
        """Make the scheduler look at its clock: schedule an unrelated far-away timer."""
        self.schedule("poke", 10**7)

    def stored_keys(self) -> list[str]:
        store = Store(self.db)
        try:
            return [r["key"] for r in store.load_timers() if r["key"] != "poke"]
        finally:
            store.close()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    CLOCK["now"] = T0
    root_level = logging.getLogger().level  # StartScheduler sets the (shared) root level
    system = ActorSystem("simpleSystemBase", transientUnique=True)
    try:
        yield Harness(
            system=system,
            scheduler=system.createActor(ClockedScheduler),
            registry=system.createActor(FakeRegistry),
            db=str(tmp_path / "csms.db"),
        )
    finally:
        system.shutdown()
        logging.getLogger().setLevel(root_level)


def store_timers(db: str, *timers: Timer) -> None:
    store = Store(db)
    try:
        for t in timers:
            store.save_timer(t.key, t.station_id, t.kind, iso(t.due), t.data)
    finally:
        store.close()


def test_a_timer_that_came_due_while_the_system_was_down_fires_at_start(harness: Harness) -> None:
    store_timers(harness.db, timer("overdue", -60), timer("future", 600))
    assert harness.start() == SchedulerStarted(2)
    assert harness.fired() == [
        TimerFired("overdue", "CP1", "reservation-expiry", iso(at(-60)), {"id": "overdue"})
    ]
    assert harness.stored_keys() == ["future"]


def test_overdue_timers_fire_at_start_earliest_first(harness: Harness) -> None:
    store_timers(harness.db, timer("second", -10), timer("first", -3600))
    harness.start()
    assert harness.fired_keys() == ["first", "second"]


def test_a_future_timer_does_not_fire_until_the_clock_passes_it(harness: Harness) -> None:
    harness.start()
    harness.schedule("expiry", 600, reservationId=7)
    assert harness.fired_keys() == []
    CLOCK["now"] = at(599)
    harness.poke()
    assert harness.fired_keys() == []
    CLOCK["now"] = at(600)
    harness.poke()
    assert harness.fired() == [TimerFired("expiry", "CP1", "test", iso(at(600)), {"reservationId": 7})]


def test_a_timer_fires_only_once(harness: Harness) -> None:
    harness.start()
    harness.schedule("once", 10)
    CLOCK["now"] = at(20)
    harness.poke()
    harness.poke()
    assert harness.fired_keys() == ["once"]


def test_a_fired_timer_is_deleted_from_storage(harness: Harness) -> None:
    harness.start()
    harness.schedule("expiry", 60)
    assert harness.stored_keys() == ["expiry"]
    CLOCK["now"] = at(61)
    harness.poke()
    assert harness.fired_keys() == ["expiry"]
    assert harness.stored_keys() == []


def test_a_timer_scheduled_in_the_past_fires_at_once(harness: Harness) -> None:
    harness.start()
    harness.schedule("late", -1)
    assert harness.fired_keys() == ["late"]
    assert harness.stored_keys() == []


def test_cancel_timer_removes_it_from_storage_and_it_never_fires(harness: Harness) -> None:
    harness.start()
    harness.schedule("expiry", 60)
    harness.system.tell(harness.scheduler, CancelTimer("expiry"))
    assert harness.stored_keys() == []
    CLOCK["now"] = at(3600)
    harness.poke()
    assert harness.fired_keys() == []


def test_cancel_timer_removes_a_timer_loaded_at_start(harness: Harness) -> None:
    store_timers(harness.db, timer("stored", 60))
    harness.start()
    harness.system.tell(harness.scheduler, CancelTimer("stored"))
    assert harness.stored_keys() == []
    CLOCK["now"] = at(3600)
    harness.poke()
    assert harness.fired_keys() == []


def test_rescheduling_a_key_replaces_the_stored_timer(harness: Harness) -> None:
    harness.start()
    harness.schedule("expiry", 60)
    harness.schedule("expiry", 600)
    store = Store(harness.db)
    try:
        assert [(r["key"], r["due"]) for r in store.load_timers()] == [("expiry", iso(at(600)))]
    finally:
        store.close()
    CLOCK["now"] = at(120)
    harness.poke()
    assert harness.fired_keys() == []
    CLOCK["now"] = at(600)
    harness.poke()
    assert harness.fired_keys() == ["expiry"]


def test_a_second_start_scheduler_is_ignored(harness: Harness) -> None:
    store_timers(harness.db, timer("overdue", -1))
    harness.start()
    settings = Settings(db=harness.db, log_level="WARNING")
    reply = harness.system.ask(harness.scheduler, StartScheduler(settings, harness.registry), 0.5)
    assert reply is None
    assert harness.fired_keys() == ["overdue"]


def test_at_start_the_scheduler_prunes_history_past_its_retention_and_refits_the_frame_rings(harness: Harness) -> None:
    store = Store(harness.db)
    try:
        store.record_event("station.connected", "CP1", T0 - timedelta(hours=30), {})
        store.record_event("station.connected", "CP1", T0 - timedelta(hours=1), {})
        store.record_authorization("T1", "CP1", None, "Authorize", "Invalid", "unknown", T0 - timedelta(days=31))
        store.record_authorization("T1", "CP1", None, "Authorize", "Accepted", "accepted", T0 - timedelta(days=1))
        store.record_audit("local:ops", "Reset", "CP1", {}, T0 - timedelta(days=400), "result")
        store.log_frames([("CP1", seq % 10, seq, iso(T0), "in", str(seq)) for seq in range(1, 11)])
    finally:
        store.close()
    settings = Settings(db=harness.db, log_level="WARNING", frame_log_per_station=4)
    assert isinstance(harness.system.ask(harness.scheduler, StartScheduler(settings, harness.registry), ASK),
                      SchedulerStarted)
    harness.fired()  # the scheduler has handled its start
    store = Store(harness.db)
    try:
        assert [json.loads(data)["at"] for _, _, data in store.events_after(0)] == [iso(T0 - timedelta(hours=1))]
        assert [d["reason"] for d in store.authorization_decisions("T1")] == ["accepted"]
        assert store.audit_log() == []
        assert [f["frame"] for f in store.frame_log("CP1")] == ["7", "8", "9", "10"]
    finally:
        store.close()
