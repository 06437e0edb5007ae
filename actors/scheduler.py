"""SchedulerActor: persistent timers (one per node).

Timers live in storage (table ``timers``) so they survive restarts: on start
the scheduler reloads them and fires at once those that came due while the
system was down. A fired timer goes to the registry as TimerFired, which routes
it to the station actor (starting it when needed). Reservation expiry and
charging-profile validTo are driven from here, and the pruning of meter values
older than ``--meter-values-retention-days`` and of the history (``storage.history``:
events older than ``--event-retention-hours``, operator actions, authorization
decisions and DataTransfer data older than their ``--...-days``), hourly, in small
batches; at start, frame-log slots beyond ``--frame-log-per-station`` are dropped.

The clock is injectable (``clock`` attribute) so tests drive time without sleeps.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from thespian.actors import Actor, WakeupMessage

from actors.messages import CancelTimer, SchedulerStarted, ScheduleTimer, StartScheduler, TimerFired
from actors.settings import Settings
from actors.timers import Timer, TimerTable
from storage import Store, iso, parse_time

log = logging.getLogger(__name__)

TICK = "scheduler-tick"
PRUNE = "scheduler-prune"
PRUNE_EVERY = 3600.0  # seconds between prunes of old meter values (with a retention set)
PRUNE_BATCHES = 20  # batches per wake-up; more waiting: again in a second (hosts write meanwhile)


class SchedulerActor(Actor):
    clock: Callable[[], datetime] = staticmethod(lambda: datetime.now(timezone.utc))  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.store: Store | None = None
        self.registry: Any = None
        self.table = TimerTable()
        self.wake_at: datetime | None = None
        self.retention_days = 0.0
        self.history: dict[str, timedelta] = {}  # table -> how long its rows are kept

    def receiveMessage(self, message: Any, sender: Any) -> None:
        try:
            if isinstance(message, WakeupMessage):
                if message.payload == TICK:
                    self.wake_at = None
                    self._fire_due()
                elif message.payload == PRUNE:
                    self._prune()
            elif isinstance(message, ScheduleTimer):
                self._schedule(message)
            elif isinstance(message, CancelTimer):
                self.table.cancel(message.key)
                assert self.store is not None
                self.store.delete_timer(message.key)
            elif isinstance(message, StartScheduler):
                self._start(message, sender)
        except Exception:
            log.exception("scheduler: error handling %s", type(message).__name__)

    def _start(self, message: StartScheduler, sender: Any) -> None:
        if self.store is not None:
            return
        logging.getLogger().setLevel(message.settings.log_level)
        self.store = Store(message.settings.db, migrate_schema=False)
        self.registry = message.registry
        self.table = TimerTable(
            [Timer(r["key"], r["station_id"], r["kind"], parse_time(r["due"]), r["data"]) for r in self.store.load_timers()]
        )
        self.send(sender, SchedulerStarted(len(self.table.timers)))
        self._fire_due()
        settings = message.settings
        self.retention_days = settings.meter_values_retention_days
        self.history = history_retention(settings)
        trimmed = self.store.trim_frame_log(settings.frame_log_per_station)
        if trimmed:
            log.info("scheduler: dropped %d logged frames beyond --frame-log-per-station %d",
                     trimmed, settings.frame_log_per_station)
        if self.retention_days > 0 or self.history:
            self._prune()

    def _prune(self) -> None:
        """Delete meter values and history older than their retention, a few batches at a time."""
        store = self.store
        assert store is not None
        now = self.clock()
        more = False
        if self.retention_days > 0:
            cutoff = now - timedelta(days=self.retention_days)
            deleted, left = _batches(lambda: store.prune_meter_values(cutoff))
            more = more or left
            if deleted:
                log.info("scheduler: pruned %d meter values received before %s (retention %g days)",
                         deleted, iso(cutoff), self.retention_days)
        for table, keep in self.history.items():
            cutoff = now - keep
            deleted, left = _batches(lambda t=table, c=cutoff: store.prune_history(t, c))  # type: ignore[misc]
            more = more or left
            if deleted:
                log.info("scheduler: pruned %d rows of %s written before %s", deleted, table, iso(cutoff))
        self.wakeupAfter(1.0 if more else PRUNE_EVERY, payload=PRUNE)

    def _schedule(self, message: ScheduleTimer) -> None:
        assert self.store is not None
        timer = Timer(message.key, message.station_id, message.kind, parse_time(message.due), dict(message.data))
        self.store.save_timer(timer.key, timer.station_id, timer.kind, iso(timer.due), timer.data)
        self.table.put(timer)
        self._fire_due()

    def _fire_due(self) -> None:
        assert self.store is not None
        now = self.clock()
        for timer in self.table.pop_due(now):
            self.store.delete_timer(timer.key)
            self.send(self.registry, TimerFired(timer.key, timer.station_id, timer.kind, iso(timer.due), timer.data))
        wait = max(0.05, self.table.next_wait(now))
        wake_at = now + timedelta(seconds=wait)
        if self.wake_at is None or wake_at < self.wake_at:
            self.wake_at = wake_at
            self.wakeupAfter(wait, payload=TICK)


def history_retention(settings: Settings) -> dict[str, timedelta]:
    """How long each history table keeps its rows (tables kept for ever left out)."""
    kept = {
        "events": timedelta(hours=settings.event_retention_hours),
        "audit_log": timedelta(days=settings.audit_retention_days),
        "authorization_log": timedelta(days=settings.authorization_log_days),
        "data_transfers": timedelta(days=settings.data_transfer_retention_days),
    }
    return {table: keep for table, keep in kept.items() if keep > timedelta(0)}


def _batches(prune: Callable[[], int]) -> tuple[int, bool]:
    """Run ``prune`` up to PRUNE_BATCHES times; rows deleted, and whether more may be waiting."""
    deleted = 0
    for _ in range(PRUNE_BATCHES):
        n = prune()
        deleted += n
        if n == 0:
            return deleted, False
    return deleted, True
