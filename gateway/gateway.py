"""GatewayActor: owns the node's OCPP address (one per node).

The station hosts accept connections themselves, each on its own listening
socket in one ``SO_REUSEPORT`` group (ARCHITECTURE.md, "Connections"), and
run the upgrade and admission (``actors.host.loop``). The gateway holds a
socket bound into that group but never listening: it takes no connection
(the kernel only hands them to listening members), yet it keeps the address
reserved while hosts come and go, and it is where a port already taken by
another program is found, once, with a clear error, before any host starts.
A socket with ``SO_REUSEPORT`` only shares its port with sockets of the same
user, so no other local user can join the group and take connections.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from thespian.actors import Actor, ActorExitRequest

from actors.messages import GatewayFailed, GatewayStarted, StartGateway

log = logging.getLogger(__name__)


def reserve(host: str, port: int, *, probe_first: bool = True) -> socket.socket:
    """Bind (not listen) ``host:port`` into the node's SO_REUSEPORT group.

    Raises OSError (EADDRINUSE) when anything listens there already: also
    another central system of the same user, which could otherwise share the
    port silently. A gateway that replaces a killed one rejoins without the
    probe (``probe_first=False``): our own hosts listen there."""
    if probe_first and _listening(host, port):
        raise OSError(98, "[Errno 98] Address already in use (something listens there)")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _listening(host: str, port: int) -> bool:
    probe = "127.0.0.1" if host in ("", "0.0.0.0") else ("::1" if host == "::" else host)
    try:
        with socket.create_connection((probe, port), timeout=0.5):
            return True
    except OSError:
        return False


class GatewayActor(Actor):
    def __init__(self) -> None:
        super().__init__()
        self.sock: socket.socket | None = None
        self.plain: socket.socket | None = None  # --plain-port beside a TLS --port

    def receiveMessage(self, message: Any, sender: Any) -> None:
        if isinstance(message, StartGateway):
            self._start(message, sender)
        elif isinstance(message, ActorExitRequest):
            for sock in (self.sock, self.plain):
                if sock is not None:
                    sock.close()
            self.sock = self.plain = None

    def _start(self, message: StartGateway, sender: Any) -> None:
        settings = message.settings
        logging.getLogger().setLevel(settings.log_level)
        wanted = [("sock", settings.port)] + ([("plain", settings.plain_port)] if settings.plain_port else [])
        for attr, number in wanted:
            if getattr(self, attr) is None:
                try:
                    setattr(self, attr, reserve(settings.host, number, probe_first=not message.rejoin))
                except OSError as exc:
                    self.send(sender, GatewayFailed(f"cannot listen on {settings.host}:{number}: {exc}"))
                    return
        assert self.sock is not None
        port = self.sock.getsockname()[1]
        log.info("gateway: OCPP address %s:%d reserved for the station hosts", settings.host, port)
        self.send(sender, GatewayStarted(port))
