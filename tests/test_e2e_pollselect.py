"""End to end: station actors wait with poll(2), not with an epoll set built per wake-up.

``actors.pollselect`` points Thespian's TCP transport at ``PollSelector``. Without it,
a station actor blocked in Thespian's loop holds an epoll descriptor it created
for that one wait (``anon_inode:[eventpoll]`` in /proc/<pid>/fd), and creates and
closes another for every message. The station actor is found from outside, as the
process that holds the server end of the charge point's connection.
"""

from __future__ import annotations

import os
import selectors
import socket

import pytest

from actors import pollselect
from tests.support.chargepoint import ChargePoint
from tests.support.system import CentralSystem, station_actor_pid

EVENTPOLL = "anon_inode:[eventpoll]"
SAMPLES = 50


def open_descriptors(pid: int) -> list[str]:
    links = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            links.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:  # closed between listdir and readlink
            pass
    return links


def test_install_gives_the_transport_a_poll_selector(monkeypatch: pytest.MonkeyPatch) -> None:
    from thespian.system.transport import TCPTransport

    monkeypatch.setattr(TCPTransport, "selectors", selectors)  # undone after the test
    assert not pollselect.installed()
    pollselect.install()
    assert pollselect.installed()
    assert issubclass(TCPTransport.selectors.DefaultSelector, selectors.PollSelector)  # type: ignore[attr-defined]
    assert TCPTransport.selectors.EVENT_READ == selectors.EVENT_READ  # type: ignore[attr-defined]
    assert TCPTransport.selectors.EVENT_WRITE == selectors.EVENT_WRITE  # type: ignore[attr-defined]


def test_a_descriptor_registered_for_reading_and_then_writing_is_one_key_with_both_events() -> None:
    # Thespian's loop registers its read list, then its write list; one socket may be on both.
    left, right = socket.socketpair()
    right.send(b"x")  # left is readable; an empty socket buffer makes it writable
    selector, stock = pollselect.MergingPollSelector(), selectors.PollSelector()
    try:
        selector.register(left, selectors.EVENT_READ)
        selector.register(left, selectors.EVENT_WRITE)
        assert selector.get_key(left).events == selectors.EVENT_READ | selectors.EVENT_WRITE
        ((key, events),) = selector.select(1.0)
        assert key.fd == left.fileno() and events == selectors.EVENT_READ | selectors.EVENT_WRITE
        stock.register(left, selectors.EVENT_READ)
        with pytest.raises(KeyError):  # where the stock selector ends the actor
            stock.register(left, selectors.EVENT_WRITE)
    finally:
        selector.close()
        stock.close()
        left.close()
        right.close()


@pytest.mark.e2e
def test_a_station_actor_holds_no_epoll_descriptor_while_serving(csms: CentralSystem, cp: ChargePoint) -> None:
    pid = station_actor_pid(csms, cp)
    seen: list[list[str]] = []
    for _ in range(SAMPLES):
        cp.call("Heartbeat")  # the actor wakes up, serves, and waits again
        seen.append(open_descriptors(pid))
    assert all(EVENTPOLL not in links for links in seen), [links for links in seen if EVENTPOLL in links][:1]
    assert any(link.startswith("socket:") for link in seen[-1])  # the sampling did see the actor's sockets
