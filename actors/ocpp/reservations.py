"""The reservation state machine: pure, no I/O.

One reservation per reservationId, as stored in ``storage.reservations``.

States
  Requested    ReserveNow.req sent, no answer yet
  Accepted     ReserveNow.conf Accepted: the station holds it
  Faulted, Occupied, Rejected, Unavailable
               ReserveNow.conf with that status: not placed (terminal)
  Expired      expiryDate passed while Requested/Accepted (terminal)
  Used         a StartTransaction.req carried this reservationId (terminal)
  Cancelled    CancelReservation.conf Accepted (terminal)
  Failed       no answer, CALLERROR or station not connected (terminal)

Events
  answer:<status>  ReserveNow.conf with <status>
  error            the ReserveNow got no answer / a CALLERROR / could not be sent
  expired          the expiryDate passed (scheduler timer)
  used             StartTransaction.req with this reservationId
  cancelled        CancelReservation.conf Accepted
  replaced         ReserveNow.req with this reservationId sent again

Table (state x event -> state; a blank is an illegal transition)

  state        answer:Accepted  answer:<not placed>  error   expired  used  cancelled  replaced
  Requested    Accepted         <that status>        Failed  Expired  -     -          Requested
  Accepted     -                -                    -       Expired  Used  Cancelled  Requested
  (terminal)   -                -                    -       -        -     -          Requested

Rules
- # OCPP 1.6 §5.13: "If the reservationId matches an existing reservation in
  # the Charge Point, then the Charge Point SHALL replace that reservation with
  # the new reservation in the request." Hence ``replaced`` is legal in every
  # state, terminal ones included (a new reservation under an old id), and
  # leads back to Requested.
- A reservation is placed only by answer:Accepted; a StartTransaction can only
  use, and a CancelReservation only cancel, a placed one (a Requested one has
  no answer yet; OCPP-J answers a CALL before the charge point's next CALL).
- Expired is allowed from Requested too: the expiry timer may fire while the
  ReserveNow is still unanswered; a late answer is then illegal.
- Every other event in a terminal state raises ReservationError: a second
  answer, or a late use of an expired reservation, is the caller's to log.
"""

from __future__ import annotations

__all__ = [
    "ACTIVE",
    "EVENTS",
    "NOT_PLACED",
    "STATES",
    "TERMINAL",
    "ReservationError",
    "is_active",
    "next_status",
]

NOT_PLACED = ("Faulted", "Occupied", "Rejected", "Unavailable")
ACTIVE = ("Requested", "Accepted")
TERMINAL = (*NOT_PLACED, "Expired", "Used", "Cancelled", "Failed")
STATES = (*ACTIVE, *TERMINAL)

# ReserveNow.conf statuses (OCPP 1.6 §7.39 ReservationStatus).
_ANSWERS = ("Accepted", *NOT_PLACED)
EVENTS = (*(f"answer:{a}" for a in _ANSWERS), "error", "expired", "used", "cancelled", "replaced")

_TABLE: dict[str, dict[str, str]] = {
    "Requested": {
        **{f"answer:{a}": a for a in _ANSWERS},
        "error": "Failed",
        "expired": "Expired",
        "replaced": "Requested",
    },
    "Accepted": {
        "expired": "Expired",
        "used": "Used",
        "cancelled": "Cancelled",
        "replaced": "Requested",
    },
    **{state: {"replaced": "Requested"} for state in TERMINAL},
}


class ReservationError(ValueError):
    """Raised when an event is not legal in the reservation's current status
    (or the status or event is unknown)."""


def next_status(current: str, event: str) -> str:
    """The status after ``event`` in status ``current``; ReservationError if illegal."""
    if current not in _TABLE:
        raise ReservationError(f"unknown reservation status {current!r}")
    if event not in EVENTS:
        raise ReservationError(f"unknown reservation event {event!r}")
    try:
        return _TABLE[current][event]
    except KeyError:
        raise ReservationError(f"{event!r} is not legal in status {current}") from None


def is_active(status: str) -> bool:
    """True while the reservation is pending or held (Requested or Accepted)."""
    return status in ACTIVE
