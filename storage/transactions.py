"""Transactions, stops we cannot match, and meter values.

Durability (ARCHITECTURE "Storage"): a StartTransaction's transactionId and a
StopTransaction are committed before the methods below return, hence before
the CALLRESULT leaves. Ids come from an AUTOINCREMENT key: unique positive
integers, never reused, also after deletes and restarts (OCPP 1.6 errata 3.54:
"Use unique positive integers for transactionId").
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from storage.base import Row, StoreBase
from storage.tags import tag_key
from storage.timefmt import iso, normalize

log = logging.getLogger(__name__)

_TX_COLUMNS = (
    "id, station_id, connector_id, id_tag, start_status, meter_start, start_timestamp, "
    "reservation_id, started_at, meter_stop, stop_timestamp, stop_reason, stop_id_tag, "
    "transaction_data, stopped_at, abandoned, energy_wh, flags"
)


def _transaction(row: Row) -> Row:
    """Decode JSON and flags; add ``active``."""
    row["abandoned"] = bool(row["abandoned"])
    row["active"] = row["stopped_at"] is None
    row["flags"] = row["flags"].split(",") if row.get("flags") else []
    if row["transaction_data"] is not None:
        row["transaction_data"] = json.loads(row["transaction_data"])
    return row


_COMPACT = json.JSONEncoder(separators=(",", ":"))  # one encoder, not one per call (json.dumps with options)


def _json(value: Any) -> str | None:
    return None if value is None else _COMPACT.encode(value)


class TransactionsMixin(StoreBase):
    """Charging sessions as the charge points report them."""

    def start_retry(self, station_id: str, payload: dict[str, Any]) -> int | None:
        """The id of an identical earlier start (same station, connector, idTag
        case-insensitively, meterStart and timestamp instant), or None."""
        found = self.conn.execute(
            "SELECT id FROM transactions WHERE station_id = ? AND connector_id = ? "
            "AND id_key = ? AND meter_start = ? AND start_timestamp = ? "
            "ORDER BY id DESC LIMIT 1",
            [station_id, payload["connectorId"], tag_key(payload["idTag"]), payload["meterStart"],
             normalize(payload["timestamp"])],
        ).fetchone()
        return int(found[0]) if found is not None else None

    def next_transaction_id(self) -> int:
        """The id the next new transaction gets. Read inside the writer's turn
        (which holds the write lock), so no other writer can take it meanwhile."""
        return self._next_id("transactions")

    def start_transaction(
        self, station_id: str, payload: dict[str, Any], start_status: str, now: datetime,
        *, transaction_id: int | None = None, flags: Sequence[str] = (),
    ) -> tuple[int, bool]:
        """Store a StartTransaction.req; return ``(transaction_id, is_retry)``.

        In one write transaction: an identical start (same station, connector,
        idTag case-insensitively, meterStart and timestamp instant) returns the
        existing id with is_retry True. Otherwise every transaction still open
        on that station and connector is closed as abandoned (stopped_at=now,
        no stop reason) and a new one is inserted. Committed before returning.
        """
        connector_id = payload["connectorId"]
        id_tag = payload["idTag"]
        meter_start = payload["meterStart"]
        timestamp = normalize(payload["timestamp"])
        match = [station_id, connector_id]
        with self.write() as conn:
            # With ``transaction_id`` the caller has looked for a retry (start_retry) already.
            retried = None if transaction_id is not None else self.start_retry(station_id, payload)
            if retried is not None:
                return retried, True
            stale = [
                int(r[0])
                for r in conn.execute(
                    "SELECT id FROM transactions WHERE station_id = ? AND connector_id = ? "
                    "AND stopped_at IS NULL",
                    match,
                )
            ]
            if stale:
                conn.execute(
                    "UPDATE transactions SET stopped_at = ?, abandoned = 1 "
                    "WHERE station_id = ? AND connector_id = ? AND stopped_at IS NULL",
                    [iso(now), *match],
                )
            cursor = conn.execute(
                "INSERT INTO transactions (id, station_id, connector_id, id_tag, id_key, "
                "start_status, meter_start, start_timestamp, reservation_id, started_at, flags) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [transaction_id, *match, id_tag, tag_key(id_tag), start_status, meter_start, timestamp,
                 payload.get("reservationId"), iso(now), ",".join(flags) or None],
            )
            tx_id = cursor.lastrowid
        assert tx_id is not None
        if stale:
            log.warning(
                "station %s connector %s: started transaction %d without stopping %s; "
                "marked abandoned", station_id, connector_id, tx_id, stale,
            )
        return tx_id, False

    def stop_transaction(self, station_id: str, payload: dict[str, Any], now: datetime,
                         flags: Sequence[str] = ()) -> bool:
        """Store a StopTransaction.req; True when the transaction was known.

        Known (id of a transaction of this station): stop fields are stored and
        energy_wh = meterStop - meterStart; an abandoned transaction receives
        its late stop the same way. A repeated identical stop changes nothing.
        A different second stop, an unknown id, or -1 are kept in
        unmatched_stops so that nothing is lost. Committed before returning.
        """
        tx_id = payload.get("transactionId")
        meter_stop = payload["meterStop"]
        timestamp = normalize(payload["timestamp"])
        # OCPP 1.6 JSON errata 2.5 / §6.50: reason is optional, "Local" when absent.
        reason = payload.get("reason") or "Local"
        data = _json(payload.get("transactionData"))
        with self.write() as conn:
            found = conn.execute(
                "SELECT station_id, meter_start, meter_stop, stop_timestamp "
                "FROM transactions WHERE id = ?",
                [tx_id],
            ).fetchone()
            if found is not None and found[0] == station_id and found[2] is None:
                conn.execute(
                    "UPDATE transactions SET meter_stop = ?, stop_timestamp = ?, "
                    "stop_reason = ?, stop_id_tag = ?, transaction_data = ?, stopped_at = ?, "
                    "energy_wh = ?, flags = CASE WHEN ?8 = '' THEN flags WHEN flags IS NULL THEN ?8 "
                    "ELSE flags || ',' || ?8 END WHERE id = ?",
                    [meter_stop, timestamp, reason, payload.get("idTag"), data, iso(now),
                     meter_stop - found[1], ",".join(flags), tx_id],
                )
                return True
            if found is not None and found[0] == station_id and (
                found[2] == meter_stop and found[3] == timestamp
            ):
                return True  # a retried identical stop
            if found is None or found[0] != station_id:
                # OCPP 1.6 errata 3.18: transactionId -1 "SHALL respond as if it were valid".
                note = "unknown transactionId"
            else:
                note = "second, different stop"
            conn.execute(
                "INSERT INTO unmatched_stops (station_id, transaction_id, id_tag, meter_stop, "
                "stop_timestamp, stop_reason, transaction_data, payload, note, received_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [station_id, tx_id, payload.get("idTag"), meter_stop, timestamp, reason, data,
                 _json(payload), note, iso(now)],
            )
        log.warning("station %s: StopTransaction for transaction %s: %s", station_id, tx_id, note)
        return note != "unknown transactionId"

    def get_transaction(self, tx_id: int) -> Row | None:
        """The transaction with ``active`` added and transaction_data decoded, or None."""
        found = self.row(f"SELECT {_TX_COLUMNS} FROM transactions WHERE id = ?", [tx_id])
        return _transaction(found) if found else None

    def list_transactions(
        self, *, station_id: str | None = None, active: bool = False, limit: int = 1000
    ) -> list[Row]:
        """Transactions newest first, optionally of one station and/or only open ones."""
        where, params = ["1"], []
        if station_id is not None:
            where.append("station_id = ?")
            params.append(station_id)
        if active:
            where.append("stopped_at IS NULL")
        rows = self.rows(
            f"SELECT {_TX_COLUMNS} FROM transactions WHERE {' AND '.join(where)} "
            "ORDER BY id DESC LIMIT ?",
            [*params, limit],
        )
        return [_transaction(r) for r in rows]

    def active_transactions_for_tag(self, id_tag: str) -> list[Row]:
        """Open transactions of the tag (case-insensitive), newest first."""
        rows = self.rows(
            f"SELECT {_TX_COLUMNS} FROM transactions WHERE id_key = ? AND stopped_at IS NULL "
            "ORDER BY id DESC",
            [tag_key(id_tag)],
        )
        return [_transaction(r) for r in rows]

    def active_transaction_for_tag(self, id_tag: str) -> Row | None:
        """The newest open transaction of the tag, or None."""
        found = self.active_transactions_for_tag(id_tag)
        return found[0] if found else None

    def unmatched_stops(self, *, station_id: str | None = None, limit: int = 1000) -> list[Row]:
        """StopTransactions we could not match, newest first (payload decoded)."""
        where = "station_id = ?" if station_id is not None else "1"
        params: list[Any] = [station_id] if station_id is not None else []
        rows = self.rows(
            f"SELECT * FROM unmatched_stops WHERE {where} ORDER BY id DESC LIMIT ?",
            [*params, limit],
        )
        for r in rows:
            r["payload"] = json.loads(r["payload"])
            if r["transaction_data"] is not None:
                r["transaction_data"] = json.loads(r["transaction_data"])
        return rows

    # -- meter values ------------------------------------------------------------

    def record_meter_values(self, station_id: str, payload: dict[str, Any], now: datetime,
                            flag: str | None = None) -> None:
        """Store a MeterValues.req: one row per meterValue element, with ``flag`` when suspect."""
        received = iso(now)
        rows = [
            (station_id, payload["connectorId"], payload.get("transactionId"),
             normalize(mv.get("timestamp")), _json(mv.get("sampledValue", [])), received, flag)
            for mv in payload.get("meterValue", [])
        ]
        sql = (
            "INSERT INTO meter_values (station_id, connector_id, transaction_id, timestamp, "
            "sampled_value, received_at, flag) VALUES (?, ?, ?, ?, ?, ?, ?)"
        )
        if len(rows) == 1:
            self.conn.execute(sql, rows[0])
        elif rows:
            with self.write() as conn:
                conn.executemany(sql, rows)

    def prune_meter_values(self, before: datetime, *, batch: int = 5000) -> int:
        """Delete up to ``batch`` of the oldest meter values received before ``before``; how many."""
        return self.prune_oldest("meter_values", "received_at", iso(before), batch=batch)

    def transaction_station(self, tx_id: int) -> str | None:
        """The charge point that started transaction ``tx_id``, or None if there is none."""
        found = self.conn.execute("SELECT station_id FROM transactions WHERE id = ?", [tx_id]).fetchone()
        return found[0] if found else None

    def meter_values_flagged(self, station_id: str, *, limit: int = 1000) -> list[Row]:
        """Meter values of ``station_id`` stored with a flag, oldest first."""
        rows = self.rows(
            "SELECT connector_id, transaction_id, timestamp, sampled_value, received_at, flag FROM meter_values "
            "WHERE station_id = ? AND flag IS NOT NULL ORDER BY id LIMIT ?",
            [station_id, limit],
        )
        for r in rows:
            r["sampled_value"] = json.loads(r["sampled_value"])
        return rows

    def meter_values_for(self, transaction_id: int, *, limit: int = 1000) -> list[Row]:
        """Meter values the transaction's own charge point reported with ``transaction_id``, oldest first.

        Another charge point naming the same id never adds to it (its rows are
        kept under its own station id, flagged: ``meter_values_flagged``).
        """
        rows = self.rows(
            "SELECT connector_id, timestamp, sampled_value, received_at FROM meter_values "
            "WHERE transaction_id = ? AND station_id = (SELECT station_id FROM transactions WHERE id = ?) "
            "ORDER BY id LIMIT ?",
            [transaction_id, transaction_id, limit],
        )
        for r in rows:
            r["sampled_value"] = json.loads(r["sampled_value"])
        return rows

    def latest_meter_values(self, transaction_id: int, count: int) -> list[Row]:
        """The ``count`` meter values stored last for ``transaction_id`` by its own charge point, newest first."""
        rows = self.rows(
            "SELECT connector_id, timestamp, sampled_value, received_at FROM meter_values "
            "WHERE transaction_id = ? AND station_id = (SELECT station_id FROM transactions WHERE id = ?) "
            "ORDER BY id DESC LIMIT ?",
            [transaction_id, transaction_id, count],
        )
        for r in rows:
            r["sampled_value"] = json.loads(r["sampled_value"])
        return rows
