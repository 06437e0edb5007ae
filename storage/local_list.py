"""What we believe each station's Local Authorization List holds, and its history.

``local_lists`` has one row per station: ``version`` and ``entries`` (JSON
``{idTag: idTagInfo}``) are what the station holds after our last Accepted
SendLocalList; ``reported_version`` is what GetLocalListVersion answered last
(OCPP 1.6 §5.10: 0 = empty list, -1 = not supported), cleared by the next
Accepted update because that one tells us again what the station holds.
``local_list_updates`` keeps every SendLocalList outcome.
Planning the next update is ``actors.ocpp.local_list`` (pure).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from storage.base import StoreBase
from storage.timefmt import iso

UPDATE_TYPES = ("Full", "Differential")
# SendLocalList.conf statuses, plus "Error": no answer, CALLERROR or not connected.
SEND_LOCAL_LIST_STATUSES = ("Accepted", "Failed", "NotSupported", "VersionMismatch", "Error")


class LocalListMixin(StoreBase):
    """Local Authorization Lists of the stations (OCPP 1.6 §3.5, §5.15)."""

    def local_list_state(self, station_id: str) -> dict[str, Any]:
        """``{"version", "entries", "reported_version", "last_status", "updated_at",
        "reported_at"}``; a station never sent a list has version 0 and no entries."""
        found = self.row(
            "SELECT version, entries, reported_version, last_status, updated_at, reported_at "
            "FROM local_lists WHERE station_id = ?",
            [station_id],
        )
        if found is None:
            return {"version": 0, "entries": {}, "reported_version": None,
                    "last_status": None, "updated_at": None, "reported_at": None}
        found["entries"] = json.loads(found["entries"])
        return found

    def record_local_list_result(
        self,
        station_id: str,
        *,
        version: int,
        update_type: str,
        entries_after: dict[str, Any],
        status: str,
        entry_count: int,
        now: datetime,
    ) -> None:
        """Store the outcome of one SendLocalList.req.

        Always: a history row and ``last_status``. Accepted only: ``version``
        and ``entries_after`` become what the station holds, and
        ``reported_version`` is cleared. Failed, VersionMismatch, NotSupported
        and Error leave version and entries unchanged.
        Raises ValueError for an unknown update_type or status.
        """
        if update_type not in UPDATE_TYPES:
            raise ValueError(f"update_type must be one of {UPDATE_TYPES}")
        if status not in SEND_LOCAL_LIST_STATUSES:
            raise ValueError(f"status must be one of {SEND_LOCAL_LIST_STATUSES}")
        stamp = iso(now)
        with self.write() as conn:
            conn.execute(
                "INSERT INTO local_list_updates (station_id, version, update_type, "
                "entry_count, status, at) VALUES (?, ?, ?, ?, ?, ?)",
                [station_id, version, update_type, entry_count, status, stamp],
            )
            if status == "Accepted":
                conn.execute(
                    "INSERT INTO local_lists (station_id, version, entries, updated_at, "
                    "last_status) VALUES (?, ?, ?, ?, ?) ON CONFLICT(station_id) DO UPDATE SET "
                    "version = excluded.version, entries = excluded.entries, "
                    "updated_at = excluded.updated_at, last_status = excluded.last_status, "
                    "reported_version = NULL",
                    [station_id, version, json.dumps(entries_after, sort_keys=True), stamp,
                     status],
                )
            else:
                conn.execute(
                    "INSERT INTO local_lists (station_id, last_status) VALUES (?, ?) "
                    "ON CONFLICT(station_id) DO UPDATE SET last_status = excluded.last_status",
                    [station_id, status],
                )

    def record_local_list_version(self, station_id: str, version: int, now: datetime) -> None:
        """Store a GetLocalListVersion.conf listVersion (-1 not supported, 0 empty).

        Our believed version and entries stay; ``actors.ocpp.local_list`` plans a
        Full update while the reported version differs from the believed one.
        """
        self.conn.execute(
            "INSERT INTO local_lists (station_id, reported_version, reported_at) "
            "VALUES (?, ?, ?) ON CONFLICT(station_id) DO UPDATE SET "
            "reported_version = excluded.reported_version, reported_at = excluded.reported_at",
            [station_id, version, iso(now)],
        )

    def local_list_history(self, station_id: str, *, limit: int = 100) -> list[dict[str, Any]]:
        """SendLocalList outcomes of the station, newest first."""
        return self.rows(
            "SELECT version, update_type, entry_count, status, at FROM local_list_updates "
            "WHERE station_id = ? ORDER BY id DESC LIMIT ?",
            [station_id, limit],
        )
