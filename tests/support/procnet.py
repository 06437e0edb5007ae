"""Who listens where, and which process holds a TCP connection: read from /proc.

Linux only. ``/proc/net/tcp`` and ``/proc/net/tcp6`` list every TCP socket of
the network namespace with its inode; ``/proc/<pid>/fd/*`` links
``socket:[inode]`` tie those inodes to processes. End-to-end tests use this to
prove what an instance of the central system exposes, and to find the station
actor that owns a charge point's connection without asking the product.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass

LISTEN = "0A"
ESTABLISHED = "01"


@dataclass(frozen=True)
class TcpSocket:
    family: str  # "tcp" or "tcp6"
    local_address: ipaddress.IPv4Address | ipaddress.IPv6Address
    local_port: int
    remote_address: ipaddress.IPv4Address | ipaddress.IPv6Address
    remote_port: int
    state: str
    inode: int

    @property
    def is_loopback(self) -> bool:
        address = self.local_address
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return address.is_loopback


def _address(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    raw = bytes.fromhex(hex_address)
    if len(raw) == 4:  # one host-order 32-bit word
        return ipaddress.IPv4Address(raw[::-1])
    # IPv6: four host-order 32-bit words
    return ipaddress.IPv6Address(b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4)))


def tcp_sockets() -> list[TcpSocket]:
    """Every IPv4 and IPv6 TCP socket of this network namespace."""
    found = []
    for family in ("tcp", "tcp6"):
        try:
            with open(f"/proc/net/{family}") as f:
                lines = f.read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            parts = line.split()
            local, remote, state, inode = parts[1], parts[2], parts[3], int(parts[9])
            local_host, local_port = local.split(":")
            remote_host, remote_port = remote.split(":")
            found.append(
                TcpSocket(
                    family,
                    _address(local_host),
                    int(local_port, 16),
                    _address(remote_host),
                    int(remote_port, 16),
                    state,
                    inode,
                )
            )
    return found


def socket_inodes(pid: int) -> set[int]:
    """Inodes of the sockets process ``pid`` holds open (empty when it is gone)."""
    inodes: set[int] = set()
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for name in names:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[len("socket:[") : -1]))
    return inodes


def listening_sockets(pids: Iterable[int]) -> dict[TcpSocket, list[int]]:
    """Listening TCP sockets (IPv4 and IPv6) held by any of ``pids`` -> the pids holding each."""
    owners: dict[int, list[int]] = {}
    for pid in pids:
        for inode in socket_inodes(pid):
            owners.setdefault(inode, []).append(pid)
    return {s: owners[s.inode] for s in tcp_sockets() if s.state == LISTEN and s.inode in owners}


def connection_holders(pids: Iterable[int], *, local_port: int, remote_port: int) -> list[int]:
    """Which of ``pids`` hold the established connection ``local_port`` <-> ``remote_port``."""
    inodes = {
        s.inode
        for s in tcp_sockets()
        if s.state == ESTABLISHED
        and s.local_port == local_port
        and s.remote_port == remote_port
        and s.inode != 0
    }
    return [pid for pid in pids if socket_inodes(pid) & inodes]
