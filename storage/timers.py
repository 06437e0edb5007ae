"""Persistent timers of the scheduler actor: one row per timer key."""

from __future__ import annotations

import json
from typing import Any

from storage.base import Row, StoreBase


class TimersMixin(StoreBase):
    def save_timer(self, key: str, station_id: str, kind: str, due: str, data: dict[str, Any]) -> None:
        """Create or replace the timer ``key`` (``due``: ISO UTC)."""
        self.conn.execute(
            "INSERT INTO timers (key, station_id, kind, due, data) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET station_id=excluded.station_id, kind=excluded.kind, "
            "due=excluded.due, data=excluded.data",
            (key, station_id, kind, due, json.dumps(data)),
        )

    def delete_timer(self, key: str) -> bool:
        return self.conn.execute("DELETE FROM timers WHERE key = ?", (key,)).rowcount > 0

    def load_timers(self) -> list[Row]:
        """Every stored timer, earliest first, ``data`` decoded."""
        found = self.rows("SELECT key, station_id, kind, due, data FROM timers ORDER BY due, key")
        for row in found:
            row["data"] = json.loads(row["data"])
        return found
