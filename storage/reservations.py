"""Reservations (ReserveNow / CancelReservation) and the reservationIds we hand out.

One row per reservationId (``reservations.id``). The row's ``status`` follows
the state machine of ``actors.ocpp.reservations``; this module stores what it is
told and only checks that the status is one of ``RESERVATION_STATUSES``.

Ids: ``next_reservation_id`` reads the AUTOINCREMENT key of
``reservation_ids``, so an id is never handed out twice, also after deletes
and restarts. Every id recorded by ``record_reservation_request`` (an explicit
one chosen by an operator included) is entered there too, which moves the
high-water mark past it: later ids never collide with it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from storage.base import Row, StoreBase
from storage.tags import check_id_tag, tag_key
from storage.timefmt import iso, parse_time

RESERVATION_STATUSES = (
    "Requested",
    "Accepted",
    "Faulted",
    "Occupied",
    "Rejected",
    "Unavailable",
    "Expired",
    "Used",
    "Cancelled",
    "Failed",
)
ACTIVE_RESERVATION_STATUSES = ("Requested", "Accepted")

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

_COLUMNS = (
    "id, station_id, connector_id, id_tag, parent_id_tag, expiry_date, status, "
    "created_at, updated_at, transaction_id, note"
)


def _check_int(value: object, what: str, minimum: int = INT32_MIN) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= INT32_MAX:
        raise ValueError(f"{what} must be an integer from {minimum} to {INT32_MAX}")
    return value


class ReservationsMixin(StoreBase):
    """Reservations the central system asked charge points to hold."""

    def next_reservation_id(self) -> int:
        """A reservationId never handed out or recorded before (> 0); read inside the
        writer's turn, and handed out by ``record_reservation_request`` with it."""
        return self._next_id("reservation_ids")

    def record_reservation_request(
        self, station_id: str, payload: dict[str, Any], now: datetime
    ) -> Row:
        """Store a ReserveNow.req about to be sent; the row has status Requested.

        # OCPP 1.6 §5.13: "If the reservationId matches an existing reservation
        # in the Charge Point, then the Charge Point SHALL replace that reservation
        # with the new reservation in the request."
        A re-used reservationId therefore overwrites the old row (a new
        reservation: created_at = now, transaction_id and note cleared),
        unless that row is still active (Requested/Accepted) on *another*
        station, which raises ValueError: that station still holds it.

        Raises ValueError when connectorId is not an integer >= 0, expiryDate
        not ISO 8601, idTag/parentIdTag not a CiString20 or reservationId not
        a 32-bit integer. The expiry is stored normalised (UTC, ms, Z).
        Returns the row as ``get_reservation``.
        """
        reservation_id = _check_int(payload.get("reservationId"), "reservationId")
        connector_id = _check_int(payload.get("connectorId"), "connectorId", 0)
        id_tag = check_id_tag(payload.get("idTag"))
        parent = payload.get("parentIdTag")
        if parent is not None:
            check_id_tag(parent, "parentIdTag")
        expiry = payload.get("expiryDate")
        if not isinstance(expiry, str):
            raise ValueError("expiryDate must be an ISO 8601 timestamp")
        expiry_iso = iso(parse_time(expiry))
        stamp = iso(now)
        with self.write() as conn:
            holder = conn.execute(
                "SELECT station_id FROM reservations WHERE id = ? AND status IN (?, ?)",
                [reservation_id, *ACTIVE_RESERVATION_STATUSES],
            ).fetchone()
            if holder is not None and holder[0] != station_id:
                raise ValueError(
                    f"reservationId {reservation_id} is active on station {holder[0]}"
                )
            # Moves the AUTOINCREMENT high-water mark past an explicit id.
            conn.execute(
                "INSERT OR IGNORE INTO reservation_ids (id) VALUES (?)", [reservation_id]
            )
            conn.execute(
                "INSERT INTO reservations (id, station_id, connector_id, id_tag, parent_id_tag, "
                "expiry_date, status, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, 'Requested', ?, ?) ON CONFLICT(id) DO UPDATE SET "
                "station_id = excluded.station_id, connector_id = excluded.connector_id, "
                "id_tag = excluded.id_tag, parent_id_tag = excluded.parent_id_tag, "
                "expiry_date = excluded.expiry_date, status = excluded.status, "
                "created_at = excluded.created_at, updated_at = excluded.updated_at, "
                "transaction_id = NULL, note = NULL",
                [reservation_id, station_id, connector_id, id_tag, parent, expiry_iso,
                 stamp, stamp],
            )
        found = self.get_reservation(reservation_id)
        assert found is not None
        return found

    def set_reservation_status(
        self,
        reservation_id: int,
        status: str,
        now: datetime,
        *,
        transaction_id: int | None = None,
        note: str | None = None,
    ) -> Row | None:
        """Set the status (and, when given, transaction_id / note); None when unknown.

        The caller checks the transition with ``actors.ocpp.reservations.next_status``;
        here only a status outside ``RESERVATION_STATUSES`` raises ValueError.
        transaction_id and note keep their value when not given.
        """
        if status not in RESERVATION_STATUSES:
            raise ValueError(f"status must be one of {RESERVATION_STATUSES}")
        cursor = self.conn.execute(
            "UPDATE reservations SET status = ?, updated_at = ?, "
            "transaction_id = COALESCE(?, transaction_id), note = COALESCE(?, note) "
            "WHERE id = ?",
            [status, iso(now), transaction_id, note, reservation_id],
        )
        if cursor.rowcount == 0:
            return None
        return self.get_reservation(reservation_id)

    def get_reservation(self, reservation_id: int) -> Row | None:
        """The reservation row, or None."""
        return self.row(f"SELECT {_COLUMNS} FROM reservations WHERE id = ?", [reservation_id])

    def list_reservations(
        self, *, station_id: str | None = None, active_only: bool = False
    ) -> list[Row]:
        """Reservations newest first (created_at, then id), optionally of one
        station and/or only the active ones (status Requested or Accepted)."""
        where: list[str] = ["1"]
        params: list[Any] = []
        if station_id is not None:
            where.append("station_id = ?")
            params.append(station_id)
        if active_only:
            where.append("status IN (?, ?)")
            params.extend(ACTIVE_RESERVATION_STATUSES)
        return self.rows(
            f"SELECT {_COLUMNS} FROM reservations WHERE {' AND '.join(where)} "
            "ORDER BY created_at DESC, id DESC",
            params,
        )

    def reservation_for_start(
        self, station_id: str, connector_id: int, reservation_id: int
    ) -> Row | None:
        """The Accepted reservation a StartTransaction.req with ``reservationId`` consumes.

        It must belong to ``station_id`` and be for ``connector_id`` or for
        connector 0 (OCPP 1.6 §5.13, paraphrased: a reservation with
        connectorId 0 reserves no specific connector, any one may serve it).
        The expiry is not checked: the charge point decided to use it.
        None otherwise.
        """
        return self.row(
            f"SELECT {_COLUMNS} FROM reservations WHERE id = ? AND station_id = ? "
            "AND status = 'Accepted' AND connector_id IN (0, ?)",
            [reservation_id, station_id, connector_id],
        )

    def reservation_parent_for(self, id_tag: str, now: datetime) -> str | None:
        """TC_053: the parentIdTag of an active reservation that ``id_tag``'s group holds.

        When the tag's parent (``tags.parent``) equals, case-insensitively,
        the parentIdTag of an active (Requested/Accepted) reservation whose
        expiryDate is after ``now``, that parentIdTag as the reservation has
        it; None otherwise (unknown tag, no parent, no such reservation).
        """
        found = self.row(
            "SELECT r.parent_id_tag FROM tags t JOIN reservations r "
            "ON lower(r.parent_id_tag) = lower(t.parent) "
            "WHERE t.id_key = ? AND t.parent IS NOT NULL AND r.status IN (?, ?) "
            "AND r.expiry_date > ? ORDER BY r.created_at DESC, r.id DESC LIMIT 1",
            [tag_key(id_tag), *ACTIVE_RESERVATION_STATUSES, iso(now)],
        )
        return found["parent_id_tag"] if found else None
