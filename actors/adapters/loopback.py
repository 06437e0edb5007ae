"""Pin every Thespian socket to the loopback interface.

Thespian binds each actor's TCP socket to all interfaces (``('', port)``) and
unpickles whatever arrives there, so anyone who can reach those ports runs code
as the central system. A single node must therefore listen on loopback only
(ARCHITECTURE.md, "Thespian: what to know").

Thespian 4.0.1 decides both addresses in
``thespian/system/transport/IPBase.py``: ``IPActorAddress.__init__`` computes
``sockname`` (the advertised address, found by routing a UDP socket towards
8.8.8.8) and ``bindname`` (``('', port)`` for "external" addresses). This
adapter wraps that constructor so that both come out as ``127.0.0.1``. It is
tied to the pinned Thespian version; ``tests/e2e/test_loopback.py`` proves the
effect on a running system.

``install()`` must run in the process that creates the ActorSystem, before it
does: actor processes are forked from there and inherit the patch.
"""

from __future__ import annotations

import socket

from thespian.system.transport import IPBase

from actors.adapters.pin import check_pinned

LOOPBACK = "127.0.0.1"

_original_init = IPBase.IPActorAddress.__init__


def _loopback_init(self, af, socktype, proto, baseaddr, port, external=False):  # type: ignore[no-untyped-def]
    if baseaddr in (None, "", "0.0.0.0") or external:
        baseaddr = LOOPBACK
    _original_init(self, af, socktype, proto, baseaddr, port, external=False)
    self.bindname = (LOOPBACK, self.sockname[1])
    if self.sockname[0] != LOOPBACK and af == socket.AF_INET:
        self.sockname = (LOOPBACK, self.sockname[1])


def install() -> None:
    """Patch Thespian's address selection so every actor socket is on loopback."""
    check_pinned("actors.adapters.loopback")
    if IPBase.IPActorAddress.__init__ is not _loopback_init:
        IPBase.IPActorAddress.__init__ = _loopback_init  # type: ignore[method-assign]
        IPBase.thisSystem.add_local_addr(LOOPBACK)


def installed() -> bool:
    return IPBase.IPActorAddress.__init__ is _loopback_init
