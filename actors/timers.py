"""Persistent timers as a table, with no I/O: what is due now, and when to wake next.

Rules:
- a timer is identified by its key; scheduling a key again replaces it;
- at start, every stored timer is loaded; those already past due fire at once
  (they came due while the system was down);
- a fired timer is removed;
- the scheduler wakes at the earliest due time, but at least every
  ``MAX_SLEEP`` seconds (clock jumps, missed wake-ups).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

MAX_SLEEP = 60.0


@dataclass(frozen=True)
class Timer:
    key: str
    station_id: str
    kind: str
    due: datetime
    data: dict[str, Any] = field(default_factory=dict)


class TimerTable:
    def __init__(self, timers: list[Timer] | None = None):
        self.timers: dict[str, Timer] = {t.key: t for t in timers or []}

    def put(self, timer: Timer) -> None:
        self.timers[timer.key] = timer

    def cancel(self, key: str) -> bool:
        return self.timers.pop(key, None) is not None

    def pop_due(self, now: datetime) -> list[Timer]:
        """Remove and return the timers due at ``now``, earliest first."""
        due = sorted((t for t in self.timers.values() if t.due <= now), key=lambda t: (t.due, t.key))
        for timer in due:
            del self.timers[timer.key]
        return due

    def next_wait(self, now: datetime) -> float:
        """Seconds until the next timer is due (0 when one is due), capped at MAX_SLEEP."""
        if not self.timers:
            return MAX_SLEEP
        earliest = min(t.due for t in self.timers.values())
        return max(0.0, min(MAX_SLEEP, (earliest - now).total_seconds()))
