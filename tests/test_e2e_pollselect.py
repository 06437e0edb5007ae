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
    assert TCPTransport.selectors.DefaultSelector is selectors.PollSelector  # type: ignore[attr-defined]
    assert TCPTransport.selectors.EVENT_READ == selectors.EVENT_READ  # type: ignore[attr-defined]
    assert TCPTransport.selectors.EVENT_WRITE == selectors.EVENT_WRITE  # type: ignore[attr-defined]


@pytest.mark.e2e
def test_a_station_actor_holds_no_epoll_descriptor_while_serving(csms: CentralSystem, cp: ChargePoint) -> None:
    pid = station_actor_pid(csms, cp)
    seen: list[list[str]] = []
    for _ in range(SAMPLES):
        cp.call("Heartbeat")  # the actor wakes up, serves, and waits again
        seen.append(open_descriptors(pid))
    assert all(EVENTPOLL not in links for links in seen), [links for links in seen if EVENTPOLL in links][:1]
    assert any(link.startswith("socket:") for link in seen[-1])  # the sampling did see the actor's sockets
