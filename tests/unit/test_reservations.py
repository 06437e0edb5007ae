"""The reservation state machine, driven through its table."""

from __future__ import annotations

import pytest

from actors.ocpp.reservations import (
    ACTIVE,
    EVENTS,
    NOT_PLACED,
    STATES,
    TERMINAL,
    ReservationError,
    is_active,
    next_status,
)
from storage.reservations import ACTIVE_RESERVATION_STATUSES, RESERVATION_STATUSES

LEGAL = [
    ("Requested", "answer:Accepted", "Accepted"),
    ("Requested", "answer:Faulted", "Faulted"),
    ("Requested", "answer:Occupied", "Occupied"),
    ("Requested", "answer:Rejected", "Rejected"),
    ("Requested", "answer:Unavailable", "Unavailable"),
    ("Requested", "error", "Failed"),
    ("Requested", "expired", "Expired"),
    ("Requested", "replaced", "Requested"),
    ("Accepted", "expired", "Expired"),
    ("Accepted", "used", "Used"),
    ("Accepted", "cancelled", "Cancelled"),
    ("Accepted", "replaced", "Requested"),
    *((state, "replaced", "Requested") for state in TERMINAL),
]


@pytest.mark.parametrize("current, event, expected", LEGAL)
def test_legal_transition_leads_to_the_table_state(current: str, event: str, expected: str) -> None:
    assert next_status(current, event) == expected


def test_every_other_state_event_pair_is_illegal() -> None:
    legal = {(c, e) for c, e, _ in LEGAL}
    for state in STATES:
        for event in EVENTS:
            if (state, event) in legal:
                continue
            with pytest.raises(ReservationError):
                next_status(state, event)


@pytest.mark.parametrize(
    "current, event",
    [
        ("Accepted", "answer:Accepted"),  # a second answer
        ("Requested", "used"),  # not placed yet
        ("Requested", "cancelled"),
        ("Expired", "used"),  # late use of an expired reservation
        ("Used", "cancelled"),
        ("Cancelled", "expired"),
        ("Failed", "answer:Accepted"),  # an answer after we gave up
        ("Rejected", "error"),
    ],
)
def test_illegal_transition_raises_reservation_error(current: str, event: str) -> None:
    with pytest.raises(ReservationError):
        next_status(current, event)


@pytest.mark.parametrize(
    "current, event",
    [("Nonsense", "expired"), ("Accepted", "answer:Maybe"), ("Accepted", "exploded")],
)
def test_unknown_status_or_event_raises_reservation_error(current: str, event: str) -> None:
    with pytest.raises(ReservationError):
        next_status(current, event)


def test_reservation_error_is_a_value_error() -> None:
    assert issubclass(ReservationError, ValueError)


def test_only_requested_and_accepted_are_active() -> None:
    assert [s for s in STATES if is_active(s)] == ["Requested", "Accepted"]
    assert not any(is_active(s) for s in (*NOT_PLACED, "Expired", "Used", "Cancelled", "Failed"))


def test_state_machine_and_storage_know_the_same_statuses() -> None:
    assert set(STATES) == set(RESERVATION_STATUSES)
    assert ACTIVE == ACTIVE_RESERVATION_STATUSES


def test_a_reservation_lives_through_replacement_and_use() -> None:
    status = "Requested"
    for event in ("answer:Accepted", "replaced", "answer:Accepted", "used", "replaced", "error"):
        status = next_status(status, event)
    assert status == "Failed"
