"""The reservation state table is the code path: bookkeeping moves a reservation
only along ``actors.ocpp.reservations.next_status`` and leaves it alone otherwise."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from actors.ocpp import bookkeeping
from actors.ocpp.core import Context
from actors.settings import Settings
from storage import Store, iso
from tests.support.effects import carry_out

NOW = datetime(2026, 12, 3, 8, 0, 0, tzinfo=timezone.utc)


def _ctx(store: Store) -> Context:
    return Context(view=store, station_id="CP1", settings=Settings(), now=NOW)


def _reserve(store: Store, reservation_id: int) -> dict:
    store.upsert_station("CP1")
    request = {"connectorId": 1, "expiryDate": iso(NOW + timedelta(minutes=5)), "idTag": "TAG1",
               "reservationId": reservation_id}
    store.record_reservation_request("CP1", request, NOW)
    return request


def test_a_cancel_accepted_after_expiry_leaves_the_reservation_expired(store: Store) -> None:
    ctx = _ctx(store)
    request = _reserve(store, 7)
    bookkeeping.result(ctx, "ReserveNow", request, {"status": "Accepted"}, {})
    carry_out(store, ctx)
    bookkeeping.on_timer(ctx, bookkeeping.RESERVATION_EXPIRY, {"reservation_id": 7})
    carry_out(store, ctx)
    assert store.get_reservation(7)["status"] == "Expired"
    ctx.effects.clear()
    bookkeeping.result(ctx, "CancelReservation", {"reservationId": 7}, {"status": "Accepted"}, {})
    carry_out(store, ctx)
    assert store.get_reservation(7)["status"] == "Expired"  # was overwritten with Cancelled
    assert ctx.effects == []  # and no timer is cancelled for it


def test_a_late_reserve_now_answer_does_not_revive_an_expired_reservation(store: Store) -> None:
    ctx = _ctx(store)
    request = _reserve(store, 8)
    bookkeeping.on_timer(ctx, bookkeeping.RESERVATION_EXPIRY, {"reservation_id": 8})
    carry_out(store, ctx)
    bookkeeping.result(ctx, "ReserveNow", request, {"status": "Accepted"}, {})
    carry_out(store, ctx)
    assert store.get_reservation(8)["status"] == "Expired"
    assert ctx.effects == []  # no expiry timer scheduled for a dead reservation


def test_legal_events_still_move_the_reservation(store: Store) -> None:
    ctx = _ctx(store)
    request = _reserve(store, 9)
    bookkeeping.result(ctx, "ReserveNow", request, {"status": "Accepted"}, {})
    carry_out(store, ctx)
    assert store.get_reservation(9)["status"] == "Accepted"
    bookkeeping.result(ctx, "CancelReservation", {"reservationId": 9}, {"status": "Accepted"}, {})
    carry_out(store, ctx)
    assert store.get_reservation(9)["status"] == "Cancelled"
    request = _reserve(store, 10)
    bookkeeping.failure(ctx, "ReserveNow", request, "timeout")
    carry_out(store, ctx)
    assert store.get_reservation(10)["status"] == "Failed"
