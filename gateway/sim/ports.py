"""Pick free TCP ports for a central system started by a test or the benchmark.

Asking the kernel for port 0 returns a port from the ephemeral range, the same
range it hands out for the local end of every outbound connection and for
every Thespian actor's own listener. A port picked that way and released can
be taken again by one of those before ``run.py serve`` binds it, and the start
fails with "Address already in use" (seen in CI: an actor of the very system
being started took the OCPP port). Ports outside the ephemeral range are only
ever taken by an explicit bind, so picking from there closes that race.
"""

from __future__ import annotations

import random
import socket

EPHEMERAL_RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range"
# Well above the ports that daemons are configured on, and never ephemeral.
LOWEST = 20000
HIGHEST = 65535


def ephemeral_range(path: str = EPHEMERAL_RANGE_FILE) -> tuple[int, int]:
    """The kernel's ephemeral range; Linux's default if it cannot be read."""
    try:
        with open(path) as f:
            low, high = (int(part) for part in f.read().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def candidate_ports(ephemeral: tuple[int, int] | None = None) -> list[int]:
    """Every port from LOWEST to HIGHEST that is not ephemeral, in random order."""
    low, high = ephemeral or ephemeral_range()
    ports = [p for p in range(LOWEST, HIGHEST + 1) if not low <= p <= high]
    random.shuffle(ports)
    return ports


def free_ports(count: int, host: str = "127.0.0.1", ephemeral: tuple[int, int] | None = None) -> list[int]:
    """``count`` distinct ports outside the ephemeral range that ``host`` could bind a moment ago.

    The probe sockets do not set SO_REUSEADDR, so a port with a connection still
    in TIME_WAIT is skipped as well. Falls back to port 0 (ephemeral) only if
    no other port is free.
    """
    chosen: list[socket.socket] = []
    try:
        for port in candidate_ports(ephemeral):
            if len(chosen) == count:
                break
            s = socket.socket()
            try:
                s.bind((host, port))
            except OSError:
                s.close()
                continue
            chosen.append(s)
        while len(chosen) < count:
            s = socket.socket()
            s.bind((host, 0))
            chosen.append(s)
        return [s.getsockname()[1] for s in chosen]
    finally:
        for s in chosen:
            s.close()


def free_port(host: str = "127.0.0.1") -> int:
    """One port, as :func:`free_ports`."""
    return free_ports(1, host)[0]
