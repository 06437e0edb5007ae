"""The central system's memory of each station's configuration keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from storage.base import Row, StoreBase
from storage.timefmt import iso


class ConfigurationMixin(StoreBase):
    """What GetConfiguration reported and ChangeConfiguration changed."""

    def record_configuration(
        self,
        station_id: str,
        configuration_key: list[dict[str, Any]],
        unknown_key: list[str],
        now: datetime,
    ) -> None:
        """Store a GetConfiguration.conf: known keys (value, readonly) and unknown keys.

        A key reported known is no longer unknown, and vice versa. Keys not
        mentioned keep what we knew of them.
        """
        stamp = iso(now)
        known = [
            (station_id, k["key"], k.get("value"), int(bool(k.get("readonly", False))), stamp)
            for k in configuration_key
        ]
        with self.write() as conn:
            conn.executemany(
                "INSERT INTO configuration (station_id, key, value, readonly, updated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(station_id, key) DO UPDATE SET "
                "value = excluded.value, readonly = excluded.readonly, "
                "updated_at = excluded.updated_at",
                known,
            )
            conn.executemany(
                "DELETE FROM unknown_config_keys WHERE station_id = ? AND key = ?",
                [(station_id, k[1]) for k in known],
            )
            conn.executemany(
                "INSERT INTO unknown_config_keys (station_id, key, reported_at) VALUES (?, ?, ?) "
                "ON CONFLICT(station_id, key) DO UPDATE SET reported_at = excluded.reported_at",
                [(station_id, key, stamp) for key in unknown_key],
            )
            conn.executemany(
                "DELETE FROM configuration WHERE station_id = ? AND key = ?",
                [(station_id, key) for key in unknown_key],
            )

    def set_configuration_value(
        self, station_id: str, key: str, value: str | None, now: datetime
    ) -> None:
        """Remember a value the station accepted (ChangeConfiguration Accepted/RebootRequired).

        ``None`` records the key without its value (write-only secrets).
        """
        self.conn.execute(
            "INSERT INTO configuration (station_id, key, value, readonly, updated_at) "
            "VALUES (?, ?, ?, 0, ?) ON CONFLICT(station_id, key) DO UPDATE SET "
            "value = excluded.value, updated_at = excluded.updated_at",
            [station_id, key, value, iso(now)],
        )

    def get_configuration(self, station_id: str) -> list[Row]:
        """Known keys of the station, sorted by key; readonly as bool."""
        rows = self.rows(
            "SELECT key, value, readonly, updated_at FROM configuration "
            "WHERE station_id = ? ORDER BY key",
            [station_id],
        )
        for r in rows:
            r["readonly"] = bool(r["readonly"])
        return rows

    def unknown_configuration_keys(self, station_id: str) -> list[str]:
        """Keys the station reported as unknown, sorted."""
        return [
            r["key"]
            for r in self.rows(
                "SELECT key FROM unknown_config_keys WHERE station_id = ? ORDER BY key",
                [station_id],
            )
        ]
