"""Refuse every actor connection that does not come from our own user.

Thespian's TCP transport unpickles whatever arrives on an actor socket. The
sockets are on loopback only (``actors/adapters/loopback.py``), but any local user can
connect to loopback, so any local user could run code as the central system
(ARCHITECTURE.md, "Thespian: what to know"). This adapter closes each accepted
connection before a byte of it is read unless the socket at the other end is
owned by our effective uid.

Where it hooks in (Thespian 4.0.1, ``thespian/system/transport/TCPTransport.py``):
``TCPTransport._acceptNewIncoming`` accepts through
``self.new_socket(self.socket.accept)`` and then registers the new socket for
reading. The adapter wraps ``TCPTransport.new_socket`` and acts only when the
operation is the bound ``accept`` of that transport's own listening socket: it
looks up the peer's uid and, for any uid but ours, closes the new connection
and raises ``_Refused``. Nothing has been received or unpickled on it. A small
wrapper around ``_acceptNewIncoming`` catches ``_Refused`` and leaves as if
nothing had been accepted (see there why it is not an OSError). Outgoing
connections pass through ``new_socket`` untouched.

How the uid is found: a TCP connection on this host has both ends in this
network namespace, and the peer's end is a socket whose owner the kernel knows.
``peer_uid()`` asks for exactly that socket over ``NETLINK_SOCK_DIAG``
(``SOCK_DIAG_BY_FAMILY`` with an ``inet_diag_req_v2`` naming the 4-tuple: the
peer's address and port as source, ours as destination) and reads
``idiag_uid`` from the one ``inet_diag_msg`` in the answer: one request, one
reply, whatever the number of connections. Only if netlink is unusable (no
``tcp_diag``, a seccomp filter) does it scan ``/proc/net/tcp`` and
``/proc/net/tcp6``. A peer socket the kernel reports without an inode (a
TIME_WAIT or request socket, whose uid reads 0, or an end already closed) or
not at all counts as unknown, and an unknown uid is refused: fail closed.

``install()`` must run in the process that creates the ActorSystem, before it
does (next to ``loopback.install()``): actor processes are forked from there
and inherit the patch. It checks the pinned Thespian version.
"""

from __future__ import annotations

import errno
import fcntl
import importlib
import ipaddress
import logging
import os
import socket
import struct
import sys
import termios
import threading
import time
from typing import Any

from actors.adapters.pin import check_pinned

_tcp = importlib.import_module("thespian.system.transport.TCPTransport")


log = logging.getLogger(__name__)

# linux/netlink.h, linux/sock_diag.h, linux/inet_diag.h
NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 0x1
NLMSG_ERROR = 0x2
INET_DIAG_NOCOOKIE = 0xFFFFFFFF
_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
# inet_diag_req_v2: family, protocol, ext, pad, states; then inet_diag_sockid:
# sport, dport (network order), src[16], dst[16], if, cookie[2]
_REQ_V2 = struct.Struct("=BBBxI")
_SOCKID = struct.Struct("!HH16s16s")
_SOCKID_TAIL = struct.Struct("=III")
# inet_diag_msg: family, state, timer, retrans, sockid (48), expires, rqueue, wqueue, uid, inode
_DIAG_MSG = struct.Struct("=BBBB48sIIIII")
_REQUEST_SIZE = _NLMSGHDR.size + _REQ_V2.size + _SOCKID.size + _SOCKID_TAIL.size
NETLINK_TIMEOUT = 1.0

_seq_lock = threading.Lock()
_seq = 0
# None: not known yet; True: netlink answers here; False: use /proc.
_netlink_usable: bool | None = None


class _NetlinkUnavailable(Exception):
    """sock_diag cannot answer in this process: fall back to /proc."""


def _next_seq() -> int:
    global _seq
    with _seq_lock:
        _seq = (_seq + 1) & 0xFFFFFFFF
        return _seq


def _endpoint(family: int, address: Any) -> tuple[bytes, int]:
    """(address as 16 bytes, port) of a getsockname()/getpeername() result."""
    host, port = address[0], address[1]
    packed = socket.inet_pton(family, host)
    return packed.ljust(16, b"\0"), port


def _netlink_uid(family: int, peer: Any, local: Any) -> int | None:
    """Owner of the socket whose local end is ``peer`` and remote end ``local``.

    None when the kernel has no such full socket; raises _NetlinkUnavailable
    when sock_diag cannot be asked at all.
    """
    src, sport = _endpoint(family, peer)
    dst, dport = _endpoint(family, local)
    seq = _next_seq()
    request = (
        _NLMSGHDR.pack(_REQUEST_SIZE, SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, seq, 0)
        + _REQ_V2.pack(family, socket.IPPROTO_TCP, 0, 0xFFFFFFFF)
        + _SOCKID.pack(sport, dport, src, dst)
        + _SOCKID_TAIL.pack(0, INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE)
    )
    try:
        nl = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, NETLINK_SOCK_DIAG)
    except OSError as exc:
        raise _NetlinkUnavailable(str(exc)) from exc
    try:
        nl.settimeout(NETLINK_TIMEOUT)
        try:
            nl.sendto(request, (0, 0))
            while True:
                reply = nl.recv(8192)
                if len(reply) < _NLMSGHDR.size:
                    raise _NetlinkUnavailable("short netlink reply")
                length, kind, _flags, reply_seq, _pid = _NLMSGHDR.unpack_from(reply)
                if reply_seq == seq:
                    break
        except OSError as exc:  # includes the timeout
            raise _NetlinkUnavailable(str(exc)) from exc
    finally:
        nl.close()
    if kind == NLMSG_ERROR:
        (code,) = struct.unpack_from("=i", reply, _NLMSGHDR.size)
        if code == -errno.ENOENT:
            return None  # no such socket (or no tcp_diag: see _netlink_works)
        raise _NetlinkUnavailable(f"sock_diag error {-code}")
    if kind != SOCK_DIAG_BY_FAMILY or length < _NLMSGHDR.size + _DIAG_MSG.size:
        raise _NetlinkUnavailable(f"unexpected netlink message type {kind}")
    _family, _state, _timer, _retrans, sockid, _exp, _rq, _wq, uid, inode = _DIAG_MSG.unpack_from(
        reply, _NLMSGHDR.size
    )
    got_sport, got_dport, got_src, got_dst = _SOCKID.unpack_from(sockid)
    if (got_sport, got_dport) != (sport, dport):
        return None
    if family == socket.AF_INET and (got_src[:4], got_dst[:4]) != (src[:4], dst[:4]):
        return None
    if family == socket.AF_INET6 and (got_src, got_dst) != (src, dst):
        # a v4-mapped lookup is answered with the v4 socket's addresses
        mapped_ok = got_src[:4] == src[12:] and got_dst[:4] == dst[12:]
        if not mapped_ok:
            return None
    if inode == 0:
        # TIME_WAIT and request sockets report uid 0 and inode 0; an end that was
        # closed has no inode either. None of them is a live peer we can vouch for.
        return None
    return int(uid)


def _proc_hex(family: int, address: Any) -> str:
    packed = socket.inet_pton(family, address[0])
    words = [packed[i : i + 4] for i in range(0, len(packed), 4)]
    host = "".join(f"{int.from_bytes(w, sys.byteorder):08X}" for w in words)
    return f"{host}:{address[1]:04X}"


def _proc_uid(family: int, peer: Any, local: Any) -> int | None:
    """The same lookup by scanning /proc/net/tcp{,6}: O(connections)."""
    candidates = [(family, peer, local)]
    if family == socket.AF_INET6:
        mapped_peer = ipaddress.IPv6Address(peer[0]).ipv4_mapped
        mapped_local = ipaddress.IPv6Address(local[0]).ipv4_mapped
        if mapped_peer is not None and mapped_local is not None:
            candidates.append(
                (socket.AF_INET, (str(mapped_peer), peer[1]), (str(mapped_local), local[1]))
            )
    for fam, p, loc in candidates:
        table = "/proc/net/tcp" if fam == socket.AF_INET else "/proc/net/tcp6"
        needle = f" {_proc_hex(fam, p)} {_proc_hex(fam, loc)} "
        try:
            with open(table) as f:
                text = f.read()
        except OSError:
            continue
        at = text.find(needle)
        if at < 0:
            continue
        line = text[text.rfind("\n", 0, at) + 1 : text.find("\n", at)]
        fields = line.split()
        try:
            uid, inode = int(fields[7]), int(fields[9])
        except (IndexError, ValueError):
            return None
        return uid if inode != 0 else None
    return None


def _netlink_works() -> bool:
    """Whether sock_diag answers in this process, found once with a connection to ourselves."""
    global _netlink_usable
    if _netlink_usable is None:
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
                listener.bind(("127.0.0.1", 0))
                listener.listen(1)
                with socket.create_connection(listener.getsockname(), timeout=1.0):
                    accepted, _ = listener.accept()
                    with accepted:
                        uid = _netlink_uid(socket.AF_INET, accepted.getpeername(), accepted.getsockname())
            _netlink_usable = uid == os.geteuid()
        except (OSError, _NetlinkUnavailable):
            _netlink_usable = False
    return _netlink_usable


def peer_uid(sock: socket.socket) -> int | None:
    """The uid owning the other end of the connected TCP socket ``sock``; None if unknown.

    Only connections within this host (and network namespace) have a knowable
    other end. Never raises.
    """
    try:
        family = sock.family
        if family not in (socket.AF_INET, socket.AF_INET6):
            return None
        peer, local = sock.getpeername(), sock.getsockname()
        if _netlink_usable is not False:
            try:
                uid = _netlink_uid(family, peer, local)
                if uid is not None or _netlink_works():
                    return uid
            except _NetlinkUnavailable:
                pass
        return _proc_uid(family, peer, local)
    except Exception:  # a malformed answer, anything: unknown, and so refused
        return None


# -- refusal log: rate limited, and emitted outside the transport loop ------------
#
# The accept runs inside TCPTransport._runWithExpiry's ``exclusive_processing``
# section. In an actor process the logging root is Thespian's log forwarder,
# which sends each record through that same transport: logging from inside
# the section re-enters the transport and wedges it (Thespian's own code only
# uses thesplog there). So a refusal is queued here, and a stand-in "finished
# intent" on the transport's ``_finished_intents`` list flushes the queue right
# after the section, in the same pass of the loop, where Thespian completes
# its transmits (and their callbacks may send).

LOG_BURST = 10  # refusals logged one by one per window
LOG_WINDOW = 60.0  # seconds
_log_lock = threading.Lock()
_window_start = -LOG_WINDOW
_logged_in_window = 0
_suppressed = 0
_pending: list[tuple[int, str, tuple[Any, ...]]] = []


def _queued_bytes(conn: socket.socket) -> int:
    """Bytes waiting to be read on ``conn`` (FIONREAD: nothing is read); -1 if unknown."""
    try:
        buf = fcntl.ioctl(conn.fileno(), termios.FIONREAD, b"\0\0\0\0")
        return int(struct.unpack("=i", buf)[0])
    except OSError:
        return -1


def _note_refusal(peer: Any, uid: int | None, queued: int) -> None:
    global _window_start, _logged_in_window, _suppressed
    if uid is None and queued == 0:
        # The other end is gone and sent nothing (a port probe such as the control
        # script's, Thespian's own wake-up connections): refused all the same, but
        # not worth a warning.
        if log.isEnabledFor(logging.DEBUG):
            _pending.append((logging.DEBUG, "closed an actor connection from %s: peer gone, nothing sent", (peer,)))
        return
    owner = "unknown" if uid is None else str(uid)
    with _log_lock:
        now = time.monotonic()
        if now - _window_start >= LOG_WINDOW:
            if _suppressed:
                _pending.append(
                    (logging.WARNING, "refused %d more actor connections from other users (not logged one by one)", (_suppressed,))
                )
            _window_start, _logged_in_window, _suppressed = now, 0, 0
        if _logged_in_window >= LOG_BURST:
            _suppressed += 1
            return
        _logged_in_window += 1
        _pending.append(
            (logging.WARNING, "refused an actor connection from %s: peer uid %s is not ours (%d)", (peer, owner, os.geteuid()))
        )


def flush_log() -> None:
    """Emit the queued refusal messages (called outside the transport's critical section)."""
    while _pending:
        level, message, args = _pending.pop(0)
        log.log(level, message, *args)


class _LogFlush:
    """Stands in a transport's ``_finished_intents``: ``tx_done`` flushes the refusal log."""

    def tx_done(self, status: Any) -> None:
        flush_log()


_LOG_FLUSH = _LogFlush()


def _schedule_flush(transport: Any) -> None:
    finished = getattr(transport, "_finished_intents", None)
    if isinstance(finished, list) and not any(item[0] is _LOG_FLUSH for item in finished):
        finished.append((_LOG_FLUSH, None))


# -- the Thespian patch ----------------------------------------------------------


class _Refused(Exception):
    """Raised from the accept to unwind ``_acceptNewIncoming`` (deliberately not an OSError)."""


_original_new_socket = _tcp.TCPTransport.new_socket
_original_accept_new_incoming = _tcp.TCPTransport._acceptNewIncoming


def _checked_new_socket(self, op, *args, **kw):  # type: ignore[no-untyped-def]
    result = _original_new_socket(self, op, *args, **kw)
    if getattr(op, "__self__", None) is getattr(self, "socket", None) and getattr(op, "__name__", "") == "accept":
        conn, peer = result
        uid = peer_uid(conn)
        if uid is None or uid != os.geteuid():
            queued = _queued_bytes(conn)
            conn.close()
            _note_refusal(peer, uid, queued)
            _schedule_flush(self)
            raise _Refused(peer, uid)
    return result


def _checked_accept_new_incoming(self):  # type: ignore[no-untyped-def]
    # On a failed accept (OSError) Thespian 4.0.1 queues a Thespian__UpdateWork
    # among the received envelopes, and the handlers fail on it (no .message,
    # no .sender): raising OSError from the accept left the admin unresponsive.
    # So a refusal leaves by _Refused instead, and ends here as if nothing had
    # been accepted. _check_indicators() is what the original does
    # after every accept: interrupt_wait()'s wake-up connections (made and closed
    # by this very process, so their owner is no longer known and they are
    # refused too) carry the child-exited and shutdown signals that way.
    try:
        return _original_accept_new_incoming(self)
    except _Refused:
        self._check_indicators()
        return None


def install() -> None:
    """Patch Thespian's TCP accept so connections from other users are closed unread."""
    check_pinned("actors.adapters.peercred")
    if _tcp.TCPTransport.new_socket is not _checked_new_socket:
        _tcp.TCPTransport.new_socket = _checked_new_socket  # type: ignore[method-assign]
    if _tcp.TCPTransport._acceptNewIncoming is not _checked_accept_new_incoming:
        _tcp.TCPTransport._acceptNewIncoming = _checked_accept_new_incoming  # type: ignore[method-assign]
    _netlink_works()  # decide once, here; forked actors inherit the answer


def installed() -> bool:
    return (
        _tcp.TCPTransport.new_socket is _checked_new_socket
        and _tcp.TCPTransport._acceptNewIncoming is _checked_accept_new_incoming
    )
