"""The lease directory: which station host serves each charge point, and which handshake gets the 101.

Pure bookkeeping, no I/O; the registry (``actors.registry``) owns one and
carries out what it returns. A station host asks for a lease when a
handshake has passed admission, *before* it answers 101, with a ticket
number of its own; the charge point is upgraded only once the lease is
granted. The rules:

| event                                          | result                                                        |
|------------------------------------------------|---------------------------------------------------------------|
| request (host, ticket) for S                   | S settles for ``SETTLE`` seconds; an older request of S still settling is refused at once ("a newer connection ... is being accepted") |
| its settle time is over, still the newest of S | granted; the host that held S before (another host) is told to close that connection (revoked) |
| its settle time is over, not the newest        | nothing (it was refused when the newer one came)              |
| release (host, ticket) of S                    | S is no longer held, if that host holds it with that ticket or an older one |
| host lost                                      | its leases and its requests still settling are dropped        |

Why the settle time: handshakes of one identity that overlap (a charger
that opens several sockets at once, two chargers configured with the same
identity, an attacker) reach the registry a few milliseconds apart, often
from different hosts. Granted at once, the first would get its 101 and be
closed a moment later, when the next one's request arrives ("newest wins").
Holding each grant for ``SETTLE`` seconds lets the newest of overlapping
handshakes win before anyone is upgraded: the others are answered 409 and
never see a 101. A connection that arrives after another one was upgraded
still replaces it, closed 1000 "replaced by a new connection".

Tickets are numbered by each host, so a grant or a release names one
handshake exactly: a release that crosses a newer grant in flight does not
drop the newer lease.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

__all__ = ["REFUSED", "SETTLE", "LeaseDirectory", "Settled"]

# Seconds a lease request waits for a newer handshake of the same charge point.
# Overlapping handshakes reach the registry within a few milliseconds of each other
# (20 ms apart at the most on a loaded 2-core machine); every upgrade is this much later.
SETTLE = 0.1
REFUSED = "a newer connection of this charge point is being accepted"

Ticket = tuple[str, int]  # (station id, the host's ticket number)


@dataclass
class Settled:
    """What a settled batch asks of the registry."""

    granted: dict[int, list[Ticket]] = field(default_factory=dict)  # host index -> its tickets granted
    revoked: dict[int, list[str]] = field(default_factory=dict)  # host index -> stations it must close


class LeaseDirectory:
    """Station id -> the host holding it (and with which ticket); requests still settling."""

    def __init__(self) -> None:
        self.held: dict[str, tuple[int, int]] = {}  # station -> (host index, ticket)
        self.settling: dict[str, tuple[int, int]] = {}  # station -> (host index, ticket) of its newest request
        self.batches: dict[int, list[tuple[str, int, int]]] = {}
        self.numbers = itertools.count(1)

    def holder(self, station_id: str) -> int | None:
        held = self.held.get(station_id)
        return held[0] if held is not None else None

    def request(self, index: int, tickets: tuple[Ticket, ...]) -> tuple[int, dict[int, list[Ticket]]]:
        """Host ``index`` asks for these leases. Returns the batch number to settle
        after ``SETTLE`` seconds, and the older requests refused now, by host."""
        refused: dict[int, list[Ticket]] = {}
        batch = []
        for station_id, ticket in tickets:
            older = self.settling.get(station_id)
            if older is not None:
                refused.setdefault(older[0], []).append((station_id, older[1]))
            self.settling[station_id] = (index, ticket)
            batch.append((station_id, index, ticket))
        number = next(self.numbers)
        self.batches[number] = batch
        return number, refused

    def settle(self, number: int) -> Settled:
        """The settle time of batch ``number`` is over: grant what is still the newest."""
        out = Settled()
        for station_id, index, ticket in self.batches.pop(number, []):
            if self.settling.get(station_id) != (index, ticket):
                continue  # refused when a newer request came, or its host was lost
            del self.settling[station_id]
            before = self.held.get(station_id)
            if before is not None and before[0] != index:
                out.revoked.setdefault(before[0], []).append(station_id)
            self.held[station_id] = (index, ticket)
            out.granted.setdefault(index, []).append((station_id, ticket))
        return out

    def release(self, index: int, tickets: tuple[Ticket, ...]) -> None:
        """Host ``index`` serves these stations no more; each names the newest ticket it was granted."""
        for station_id, ticket in tickets:
            held = self.held.get(station_id)
            if held is not None and held[0] == index and held[1] <= ticket:
                del self.held[station_id]

    def host_lost(self, index: int) -> list[str]:
        """Host ``index`` died: drop its leases (returned) and its requests still settling."""
        for station_id in [s for s, (i, _) in self.settling.items() if i == index]:
            del self.settling[station_id]
        lost = [s for s, (i, _) in self.held.items() if i == index]
        for station_id in lost:
            del self.held[station_id]
        return lost
