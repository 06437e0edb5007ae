"""The queue of CALLs the central system sends to one charge point, with no I/O.

Rules (OCPP-J 1.6 §4.1.1, errata JE 3.4):

| event                  | state before          | effect                                                 |
|------------------------|-----------------------|--------------------------------------------------------|
| submit                 | nothing outstanding   | the call becomes outstanding and is sent now           |
| submit                 | a call outstanding    | the call waits in the queue (FIFO)                     |
| answer (matching id)   | outstanding           | the outstanding call ends; the next queued one is sent |
| answer (other id)      | any                   | ignored (late or unknown answer), logged by the caller |
| timeout (matching id)  | outstanding           | like an answer, outcome "timeout"                      |
| disconnect             | any                   | outstanding and queued calls all end "not-connected"   |
| withdraw (matching id) | outstanding or queued | forgotten unsent (its bookkeeping could not be stored); an outstanding one's successor is sent |

"The Central System SHOULD NOT send a CALL until its previous CALL was answered
or timed out": at most one call is outstanding per connection.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass
class OutgoingCall:
    """One CALL from the central system, with whoever asked for it."""

    message_id: str
    action: str
    payload: dict[str, Any]
    requester: Any = None
    request_id: int = 0  # the SendCall's, echoed in the CallReply
    sent_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class CallQueue:
    """At most one outstanding CALL, the rest queued in order."""

    def __init__(self) -> None:
        self.outstanding: OutgoingCall | None = None
        self.queued: deque[OutgoingCall] = deque()

    def submit(self, call: OutgoingCall) -> OutgoingCall | None:
        """Queue ``call``; return it when it must be sent now."""
        if self.outstanding is None:
            self.outstanding = call
            return call
        self.queued.append(call)
        return None

    def finish(self, message_id: str) -> tuple[OutgoingCall | None, OutgoingCall | None]:
        """End the outstanding call if ``message_id`` matches.

        Returns (the ended call or None, the next call to send or None).
        """
        current = self.outstanding
        if current is None or current.message_id != message_id:
            return None, None
        self.outstanding = self.queued.popleft() if self.queued else None
        return current, self.outstanding

    def withdraw(self, message_id: str) -> OutgoingCall | None:
        """Forget the call ``message_id`` (it was never sent); the next call to send now, or None."""
        if self.outstanding is not None and self.outstanding.message_id == message_id:
            self.outstanding = self.queued.popleft() if self.queued else None
            return self.outstanding
        self.queued = deque(c for c in self.queued if c.message_id != message_id)
        return None

    def drain(self) -> list[OutgoingCall]:
        """Remove and return every call, outstanding first (the connection is gone)."""
        calls = ([self.outstanding] if self.outstanding else []) + list(self.queued)
        self.outstanding = None
        self.queued.clear()
        return calls
