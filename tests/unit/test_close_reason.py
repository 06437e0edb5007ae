"""How a connection's end is said in the log (``station ID: connection <reason>``) and to waiting CALLs.

Each says who closed it, the code with its meaning, and the reason when there is
one; never ``None`` or an empty pair of parentheses.
"""

from __future__ import annotations

from websockets.exceptions import ConnectionClosed
from websockets.frames import Close

from actors.host.loop import _close_reason


def test_a_charge_point_that_closes_normally_is_said_to_have_closed_it() -> None:
    closed = ConnectionClosed(Close(1000, ""), Close(1000, ""), rcvd_then_sent=True)
    assert _close_reason(closed) == "closed by the charge point: 1000 (OK)"


def test_the_charge_points_reason_is_given_after_the_code() -> None:
    closed = ConnectionClosed(Close(1001, "rebooting"), Close(1001, "rebooting"), rcvd_then_sent=True)
    assert _close_reason(closed) == "closed by the charge point: 1001 (going away): rebooting"


def test_a_close_frame_without_a_code_says_so() -> None:
    closed = ConnectionClosed(Close(1005, ""), Close(1000, ""), rcvd_then_sent=True)
    assert _close_reason(closed) == "closed by the charge point: no status code (1005)"


def test_a_connection_dropped_without_a_close_frame_is_lost() -> None:
    assert _close_reason(ConnectionClosed(None, None)) == "lost: the TCP connection ended without a close frame (1006)"


def test_a_close_by_the_central_system_names_it_and_what_came_back() -> None:
    answered = ConnectionClosed(Close(1000, "bye"), Close(1009, "over the limit"), rcvd_then_sent=False)
    assert _close_reason(answered) == "closed by the central system: 1009 (message too big): over the limit"
    unanswered = ConnectionClosed(None, Close(1011, "keepalive ping timeout"))
    assert _close_reason(unanswered) == ("closed by the central system: 1011 (internal error): keepalive ping timeout; "
                                         "no close frame came back")


def test_a_charge_point_that_closes_and_goes_before_the_answer_says_so() -> None:
    closed = ConnectionClosed(Close(4000, ""), None)
    assert _close_reason(closed) == "closed by the charge point: 4000 (private); the TCP connection ended before the answer"


def test_no_reason_says_none_or_leaves_empty_parentheses() -> None:
    cases = [ConnectionClosed(None, None), ConnectionClosed(Close(1000, ""), None),
             ConnectionClosed(None, Close(1000, "")), ConnectionClosed(Close(3000, ""), Close(3000, ""), True)]
    for case in cases:
        said = _close_reason(case)
        assert "None" not in said and "()" not in said and " )" not in said, said
