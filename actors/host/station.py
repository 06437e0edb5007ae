"""The station actor as its host runs it: a ``StationMachine`` and the glue to carry out its effects.

One per connected charge point (or per command or timer that needs one),
an object inside its station host. The host's writer (``actors.host.worker``)
calls it one event at a time, inside the turn's group-commit transaction;
the station hands the event to its machine (``actors.ocpp.machine``, no I/O)
and carries out the ``Step`` that comes back:

| effect       | carried out here                                                       |
|--------------|------------------------------------------------------------------------|
| ``Write``    | the ``Store`` method, all of the step's writes in one savepoint, first |
|              | (one write alone needs none: each Store write is atomic by itself)     |
| ``Count``    | the ``metrics`` function                                               |
| ``Tell``     | ``Effects.tell``: an actor message, after the commit                   |
| ``Send``     | ``Effects.send``: a frame on that connection, after the commit         |
| ``Close``    | ``Effects.close``: that connection closed, after the commit            |
| ``ArmTimeout``| ``Effects.call_timeout``, armed after the commit                      |

If a write raises, the savepoint is rolled back and the step's ``fallback``
is carried out instead (for a CALL: an InternalError CALLERROR, so the
charge point retries what was not stored).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, Protocol

import metrics
from actors.messages import SendCall, StationStateReply, TimerFired
from actors.ocpp import ocppj
from actors.ocpp.effects import ArmTimeout, Close, Count, Send, Step, Tell, Write
from actors.ocpp.machine import StationMachine
from actors.settings import Settings
from storage import Store

log = logging.getLogger(__name__)


class Link(Protocol):
    """A charge point's connection, as its station actor sees it."""

    station_id: str
    peer: str


class Effects(Protocol):
    """What a station actor asks its host to do once the turn has committed."""

    def send(self, link: Link, text: str) -> None: ...

    def close(self, link: Link, code: int, reason: str) -> None: ...

    def tell(self, address: Any, message: Any) -> None: ...

    def call_timeout(self, station_id: str, message_id: str, seconds: float) -> None: ...


class Station:
    """The central system's side of one charge point, inside a station host."""

    def __init__(self, station_id: str, *, settings: Settings, store: Store, effects: Effects, pid: int = 0,
                 authority: Callable[[], Any] = lambda: None) -> None:
        self.station_id = station_id
        self.store = store
        self.out = effects
        self.machine = StationMachine(station_id, settings=settings, view=store, pid=pid, authority=authority)
        self.links: dict[int, Link] = {}  # connection number -> link, while the machine may name it
        self.numbered = 0

    @property
    def idle(self) -> bool:
        return self.machine.idle

    def state(self) -> StationStateReply:
        return self.machine.state()

    def _conn(self, link: Link) -> int | None:
        return next((n for n, known in self.links.items() if known is link), None)

    # -- events -----------------------------------------------------------------------

    def connected(self, link: Link) -> None:
        self.numbered += 1
        self.links[self.numbered] = link
        self._apply(self.machine.connected(self.numbered, link.peer, _now(), time.perf_counter()))

    def disconnected(self, link: Link, reason: str) -> None:
        """The connection ``link`` ended (an older, replaced one is ignored)."""
        conn = self._conn(link)
        if conn is not None:
            self._apply(self.machine.disconnected(conn, reason, _now()))

    def close(self, code: int, reason: str) -> None:
        """Close the connection from the central system's side (revoked lease, removal, shutdown)."""
        self._apply(self.machine.close(code, reason, _now()))

    def on_message(self, link: Link, message: str | bytes, received: float, parsed: ocppj.Parsed | None = None) -> None:
        conn = self._conn(link)
        if conn is not None:
            self._apply(self.machine.received(conn, message, _now(), time.perf_counter(), received, parsed))

    def on_timer(self, timer: TimerFired) -> None:
        self._apply(self.machine.timer(timer, _now()))

    def on_send_call(self, message: SendCall, requester: Any) -> None:
        self._apply(self.machine.send_call(message, requester, _now(), time.perf_counter()))

    def on_call_timeout(self, message_id: str) -> None:
        self._apply(self.machine.call_timed_out(message_id, _now(), time.perf_counter()))

    # -- effects ------------------------------------------------------------------------

    def _apply(self, step: Step) -> None:
        effects = step.effects
        writes = [e for e in effects if type(e) is Write]
        if writes:
            try:
                if len(writes) == 1:
                    # Each Store write is atomic by itself (one statement, or its own
                    # savepoint: tests/unit/test_storage_writes_atomic.py): a savepoint
                    # around it would be two statements more for every frame.
                    write = writes[0]
                    getattr(self.store, write.op)(*write.args, **write.kwargs)
                else:
                    with self.store.savepoint():
                        for write in writes:
                            getattr(self.store, write.op)(*write.args, **write.kwargs)
            except Exception:
                log.exception("station %s: storing %s failed", self.station_id, ", ".join(w.op for w in writes))
                effects = step.fallback()
        for effect in effects:
            _CARRY_OUT[type(effect)](self, effect)
        if len(self.links) > 1 or (self.links and self.machine.conn is None):
            # Forget connections the machine no longer names.
            current = self.machine.conn
            for conn in [n for n in self.links if n != current]:
                del self.links[conn]

    def _count(self, effect: Count) -> None:
        getattr(metrics, effect.op)(*effect.args)

    def _send(self, effect: Send) -> None:
        link = self.links.get(effect.conn)
        if link is not None:
            self.out.send(link, effect.text)

    def _close(self, effect: Close) -> None:
        link = self.links.get(effect.conn)
        if link is not None:
            self.out.close(link, effect.code, effect.reason)

    def _tell(self, effect: Tell) -> None:
        self.out.tell(effect.to, effect.message)

    def _arm(self, effect: ArmTimeout) -> None:
        self.out.call_timeout(self.station_id, effect.message_id, effect.seconds)

    def _written(self, effect: Write) -> None:
        pass  # carried out first, in the savepoint


_CARRY_OUT: dict[type, Callable[[Station, Any], None]] = {
    Write: Station._written, Count: Station._count, Send: Station._send, Close: Station._close,
    Tell: Station._tell, ArmTimeout: Station._arm,
}


def _now() -> datetime:
    return datetime.now(timezone.utc)
