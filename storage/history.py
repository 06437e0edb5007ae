"""History: the event stream, each station's last frames, the audit log, authorization
decisions and vendor DataTransfer data. Every table is bounded:

| table               | written by                         | bounded by                                   |
|---------------------|------------------------------------|----------------------------------------------|
| ``events``          | the hosts' writers (``record_event``), in the group commit | ``--event-retention-hours`` (scheduler) |
| ``frame_log``       | the hosts' writers, once per turn (``log_frames``, executemany) | a ring per station: slot = seq % N |
| ``audit_log``       | station machine (OCPP requests), registry (data commands) | ``--audit-retention-days`` (scheduler) |
| ``authorization_log``| the hosts' writers (``record_authorization``) | ``--authorization-log-days`` (scheduler)  |
| ``data_transfers``  | the hosts' writers (``record_data_transfer``) | ``--data-transfer-retention-days`` (scheduler) |

Pruning deletes the oldest rows in id order (the order they were written) in
batches and stops at the first recent one: no index on the time, and no scan
when nothing is old. The frame ring needs no pruning at all; only when
``--frame-log-per-station`` changed are the rings refitted once (``trim_frame_log``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from storage.base import Row, StoreBase
from storage.timefmt import iso

FrameRow = tuple[str, int, int, str, str, str]  # station_id, slot, seq, at, direction, frame

PRUNABLE = {"events": "at", "audit_log": "at", "authorization_log": "at", "data_transfers": "at"}


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class HistoryMixin(StoreBase):
    # -- events ---------------------------------------------------------------------

    def record_event(self, kind: str, station_id: str | None, at: datetime, data: dict[str, Any]) -> None:
        """One event of the stream; ``data`` gets ``station`` and ``at`` (the contract's fields)."""
        when = iso(at)
        document = {"station": station_id, "at": when, **data}
        self.conn.execute("INSERT INTO events (type, station_id, at, data) VALUES (?, ?, ?, ?)",
                          [kind, station_id, when, _json(document)])

    def events_after(self, last_id: int, *, limit: int = 500) -> list[tuple[int, str, str]]:
        """(id, type, data JSON text) of the events after ``last_id``, oldest first."""
        cursor = self.conn.execute("SELECT id, type, data FROM events WHERE id > ? ORDER BY id LIMIT ?",
                                   [last_id, limit])
        return [(int(i), str(t), str(d)) for i, t, d in cursor.fetchall()]

    def last_event_id(self) -> int:
        found = self.conn.execute("SELECT max(id) FROM events").fetchone()
        return int(found[0] or 0)

    # -- frames -----------------------------------------------------------------------

    def frame_seq(self, station_id: str) -> int:
        """The seq of the station's newest logged frame (0: none)."""
        found = self.conn.execute("SELECT max(seq) FROM frame_log WHERE station_id = ?", [station_id]).fetchone()
        return int(found[0] or 0)

    def log_frames(self, rows: Sequence[FrameRow]) -> None:
        """Put frames in their ring slots (one executemany per writer turn)."""
        self.conn.executemany(
            "INSERT OR REPLACE INTO frame_log (station_id, slot, seq, at, direction, frame) VALUES (?, ?, ?, ?, ?, ?)",
            rows)

    def frame_log(self, station_id: str, *, limit: int = 50) -> list[Row]:
        """The station's last ``limit`` frames, oldest first."""
        rows = self.rows("SELECT seq, at, direction, frame FROM frame_log WHERE station_id = ? "
                         "ORDER BY seq DESC LIMIT ?", [station_id, limit])
        return rows[::-1]

    def trim_frame_log(self, per_station: int) -> int:
        """Fit the rings to ``per_station`` (``--frame-log-per-station`` changed); frames dropped.

        Rows of another ring size sit in slots ``seq % old``: new frames would overwrite
        the wrong ones. If a sample of rows shows that, each station keeps its newest
        ``per_station`` frames, moved to slots ``seq % per_station``, in one transaction
        (once, at the scheduler's start after the change). 0 drops every frame.
        """
        with self.write() as conn:
            if per_station <= 0:
                return int(conn.execute("DELETE FROM frame_log").rowcount)
            sample = conn.execute("SELECT count(*) FROM (SELECT slot, seq FROM frame_log LIMIT 1000) "
                                  "WHERE slot != seq % ?", [per_station]).fetchone()
            if not sample[0]:
                return 0
            before = int(conn.execute("SELECT count(*) FROM frame_log").fetchone()[0])
            conn.execute("CREATE TEMP TABLE frame_keep AS SELECT station_id, seq, at, direction, frame FROM "
                         "(SELECT *, row_number() OVER (PARTITION BY station_id ORDER BY seq DESC) AS r "
                         "FROM frame_log) WHERE r <= ?", [per_station])
            conn.execute("DELETE FROM frame_log")
            conn.execute("INSERT INTO frame_log (station_id, slot, seq, at, direction, frame) "
                         "SELECT station_id, seq % ?, seq, at, direction, frame FROM frame_keep", [per_station])
            conn.execute("DROP TABLE temp.frame_keep")
            after = int(conn.execute("SELECT count(*) FROM frame_log").fetchone()[0])
            return before - after

    # -- audit ------------------------------------------------------------------------

    def record_audit(self, who: str, command: str, station_id: str | None, payload: Any, at: datetime,
                     outcome: str, answer: Any = None) -> None:
        self.conn.execute(
            "INSERT INTO audit_log (at, who, command, station_id, payload, outcome, answer) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [iso(at), who, command, station_id, _json(payload), outcome, None if answer is None else _json(answer)])

    def audit_log(self, *, station_id: str | None = None, limit: int = 50) -> list[Row]:
        """The newest ``limit`` operator actions (of one station), newest first."""
        where, params = ("WHERE station_id = ? ", [station_id]) if station_id is not None else ("", [])
        rows = self.rows(f"SELECT id, at, who, command, station_id, payload, outcome, answer FROM audit_log {where}"  # noqa: S608
                         "ORDER BY id DESC LIMIT ?", [*params, limit])
        for row in rows:
            row["payload"], row["answer"] = _loads(row["payload"]), _loads(row["answer"])
        return rows

    # -- authorization decisions ---------------------------------------------------------

    def record_authorization(self, id_tag: str, station_id: str, connector_id: int | None, action: str,
                             status: str, reason: str, at: datetime) -> None:
        self.conn.execute(
            "INSERT INTO authorization_log (at, id_tag, station_id, connector_id, action, status, reason) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)", [iso(at), id_tag, station_id, connector_id, action, status, reason])

    def record_authorizations(self, rows: Sequence[tuple[str, str, int | None, str, str, str, datetime]]) -> None:
        """Several decisions at once (a SendLocalList's entries)."""
        self.conn.executemany(
            "INSERT INTO authorization_log (id_tag, station_id, connector_id, action, status, reason, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)", [(*r[:6], iso(r[6])) for r in rows])

    def authorization_decisions(self, id_tag: str, *, limit: int = 20) -> list[Row]:
        """The newest decisions about ``id_tag`` (case-insensitive), newest first."""
        return self.rows("SELECT at, id_tag, station_id, connector_id, action, status, reason FROM authorization_log "
                         "WHERE id_tag = ? ORDER BY id DESC LIMIT ?", [id_tag, limit])

    # -- DataTransfer ---------------------------------------------------------------------

    def record_data_transfer(self, station_id: str, vendor_id: str, message_id: str | None, data: str | None,
                             at: datetime) -> None:
        self.conn.execute("INSERT INTO data_transfers (station_id, at, vendor_id, message_id, data) VALUES (?, ?, ?, ?, ?)",
                          [station_id, iso(at), vendor_id, message_id, data])

    def data_transfers(self, station_id: str, *, limit: int = 20) -> list[Row]:
        return self.rows("SELECT id, at, vendor_id, message_id, data FROM data_transfers WHERE station_id = ? "
                         "ORDER BY id DESC LIMIT ?", [station_id, limit])

    # -- pruning ------------------------------------------------------------------------

    def prune_history(self, table: str, before: datetime, *, batch: int = 5000) -> int:
        """Delete up to ``batch`` of the oldest rows of ``table`` written before ``before``; how many."""
        return self.prune_oldest(table, PRUNABLE[table], iso(before), batch=batch)  # KeyError: not ours to prune
