"""Make Thespian's TCP transport wait with poll(2) instead of a new epoll set per wake-up.

Thespian 4.0.1's ``TCPTransport._runWithExpiry`` builds a
``selectors.DefaultSelector()`` on every pass of its loop, registers each
descriptor it waits on, selects once and closes it. On Linux DefaultSelector is
epoll, so every wake-up of an actor costs epoll_create1, one epoll_ctl per
descriptor, epoll_wait and close: for a station actor (its Thespian listener,
its charge point's socket, the hand-off and an actor connection or two) that
is six system calls where poll(2) needs one. A station wakes up once per OCPP
message, so this is on the hottest path of the central system (strace of a
station at 480 messages/s: 2,388 epoll_create1, 9,548 epoll_ctl, 2,388 close
and 2,388 epoll_wait in 5 s).

The loop only uses ``DefaultSelector``, ``EVENT_READ`` and ``EVENT_WRITE``
from the module, so the adapter gives the transport module a ``selectors``
whose DefaultSelector is a ``PollSelector``: same interface, same semantics,
and no descriptor limit (unlike select). It also merges a descriptor
registered twice, for reading and for writing, instead of raising (see
MergingPollSelector). It is tied to the pinned Thespian version, like
``actors.loopback``; ``install()`` must run before the ActorSystem is created
so that every actor process, forked from there, inherits it.
"""

from __future__ import annotations

import selectors
import types
from importlib.metadata import version as package_version

from thespian.system.transport import TCPTransport

PINNED_THESPIAN = "4.0.1"


class MergingPollSelector(selectors.PollSelector):
    """PollSelector that takes a descriptor registered twice as one with both events.

    Thespian's loop registers each descriptor of its read list and then each of its
    write list; one socket can be on both (a transmit waiting for its ack and
    another ready to send on the same connection). The stock selectors raise
    KeyError on the second register, which ends the actor's process: seen at
    shutdown under load, in the metrics exporter ("13 (FD 13) is already
    registered", raised from TCPTransport._runWithExpiry).
    """

    def register(self, fileobj, events, data=None):  # type: ignore[no-untyped-def]
        try:
            key = self.get_key(fileobj)
        except KeyError:
            return super().register(fileobj, events, data)
        return self.modify(fileobj, key.events | events, key.data)


POLL_SELECTORS = types.SimpleNamespace(
    DefaultSelector=MergingPollSelector,
    EVENT_READ=selectors.EVENT_READ,
    EVENT_WRITE=selectors.EVENT_WRITE,
)


def install() -> None:
    """Point Thespian's TCP transport at poll(2)."""
    version = package_version("thespian")
    if version != PINNED_THESPIAN:  # pragma: no cover
        raise RuntimeError(f"actors.pollselect is written for Thespian {PINNED_THESPIAN}, found {version}")
    TCPTransport.selectors = POLL_SELECTORS  # type: ignore[attr-defined]


def installed() -> bool:
    return TCPTransport.selectors is POLL_SELECTORS  # type: ignore[attr-defined]
