"""actors.adapters.peercred: who owns the other end of a loopback connection, and the accept patch.

No actor system here: real loopback sockets, and for another user a child
process started as uid 65534 with ``setpriv`` (those cases are skipped unless
this runs as root with setpriv installed). Every wait has a deadline.
"""

from __future__ import annotations

import logging
import os
import select
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from actors.adapters import peercred

OTHER_UID = 65534
ACCEPT_DEADLINE = 20.0  # seconds for a child process to start and connect

# The other user's end: connect, optionally send, say so, and hold the connection
# until stdin closes; then report whether the server closed it ("closed") or not.
_CLIENT = r"""
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
if len(sys.argv) > 2:
    s.sendall(sys.argv[2].encode())
print("connected", flush=True)
sys.stdin.read()
s.settimeout(5)
try:
    got = s.recv(1)
    print("closed" if got == b"" else "open", flush=True)
except ConnectionResetError:
    print("closed", flush=True)
except OSError as exc:
    print("open " + type(exc).__name__, flush=True)
"""


def _other_user_available() -> str | None:
    if os.geteuid() != 0:
        return "needs root to start a process as uid 65534"
    if shutil.which("setpriv") is None:
        return "setpriv is not installed"
    return None


needs_other_user = pytest.mark.skipif(_other_user_available() is not None, reason=str(_other_user_available()))


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock


def _accept_ready(listener: socket.socket, child: subprocess.Popen | None = None,
                  deadline: float = ACCEPT_DEADLINE) -> None:
    """Wait until ``listener`` has a connection to accept; fail early if ``child`` exits first."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if select.select([listener], [], [], 0.1)[0]:
            return
        if child is not None and child.poll() is not None:
            raise AssertionError(f"the client exited ({child.returncode}) before connecting: {child.stderr.read() if child.stderr else ''}")
    raise AssertionError(f"no connection within {deadline}s")


def _accept(listener: socket.socket, child: subprocess.Popen | None = None) -> tuple[socket.socket, tuple]:
    _accept_ready(listener, child)
    return listener.accept()


class OtherUserClient:
    """A client process running as uid 65534, connected to ``port``."""

    def __init__(self, port: int, send: str | None = None):
        argv = ["setpriv", "--reuid", str(OTHER_UID), "--regid", str(OTHER_UID), "--clear-groups",
                sys.executable, "-c", _CLIENT, str(port)]
        if send is not None:
            argv.append(send)
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, cwd="/")

    def finish(self, timeout: float = 15.0) -> str:
        """Let the client go on: it reports whether the server had closed the connection."""
        out, err = self.process.communicate("", timeout=timeout)
        assert self.process.returncode == 0, f"client failed ({self.process.returncode}): {err}"
        lines = out.split()
        assert lines[:1] == ["connected"], out
        return " ".join(lines[1:])

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate()


@pytest.fixture
def other_user_client(listener: socket.socket) -> Iterator[OtherUserClient]:
    client = OtherUserClient(listener.getsockname()[1])
    try:
        yield client
    finally:
        client.kill()


def _ends(conn: socket.socket) -> tuple[int, tuple, tuple]:
    return conn.family, conn.getpeername(), conn.getsockname()


# -- peer_uid -------------------------------------------------------------------


def test_own_connection_is_ours(listener: socket.socket) -> None:
    with socket.create_connection(listener.getsockname(), timeout=5):
        conn, _ = _accept(listener)
        with conn:
            assert peercred.peer_uid(conn) == os.geteuid()
            assert peercred._proc_uid(*_ends(conn)) == os.geteuid()


def test_netlink_answers_here_and_agrees_with_proc(listener: socket.socket) -> None:
    if not peercred._netlink_works():
        pytest.skip("sock_diag does not answer in this environment: only the /proc path is used")
    with socket.create_connection(listener.getsockname(), timeout=5):
        conn, _ = _accept(listener)
        with conn:
            assert peercred._netlink_uid(*_ends(conn)) == os.geteuid()
            assert peercred._proc_uid(*_ends(conn)) == os.geteuid()


def test_own_ipv6_connection_is_ours() -> None:
    try:
        server = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        server.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    with server:
        server.listen(1)
        with socket.create_connection(server.getsockname()[:2], timeout=5):
            conn, _ = _accept(server)
            with conn:
                assert peercred.peer_uid(conn) == os.geteuid()
                assert peercred._proc_uid(*_ends(conn)) == os.geteuid()


@needs_other_user
def test_connection_from_another_user_is_theirs(listener: socket.socket, other_user_client: OtherUserClient) -> None:
    conn, _ = _accept(listener, other_user_client.process)
    with conn:
        assert peercred.peer_uid(conn) == OTHER_UID
        assert peercred._proc_uid(*_ends(conn)) == OTHER_UID
        if peercred._netlink_works():
            assert peercred._netlink_uid(*_ends(conn)) == OTHER_UID
    assert other_user_client.finish() == "closed"


def test_client_already_closed_is_unknown(listener: socket.socket) -> None:
    client = socket.create_connection(listener.getsockname(), timeout=5)
    client.close()  # orphaned at once: no inode any more, whatever its TCP state
    conn, _ = _accept(listener)
    with conn:
        assert peercred.peer_uid(conn) is None
        assert peercred._proc_uid(*_ends(conn)) is None
        if peercred._netlink_works():
            assert peercred._netlink_uid(*_ends(conn)) is None


def test_falls_back_to_proc_when_netlink_is_unavailable(listener: socket.socket, monkeypatch) -> None:
    def unavailable(*args):  # type: ignore[no-untyped-def]
        raise peercred._NetlinkUnavailable("test")

    monkeypatch.setattr(peercred, "_netlink_uid", unavailable)
    with socket.create_connection(listener.getsockname(), timeout=5):
        conn, _ = _accept(listener)
        with conn:
            assert peercred.peer_uid(conn) == os.geteuid()


def test_not_a_tcp_socket_is_unknown() -> None:
    left, right = socket.socketpair()
    with left, right:
        assert peercred.peer_uid(left) is None


# -- the accept patch, on a stand-in transport ---------------------------------


class _Transport:
    """What _checked_new_socket reads of a TCPTransport: its listening socket and _finished_intents."""

    def __init__(self, sock: socket.socket):
        self.socket = sock
        self._finished_intents: list = []


@pytest.fixture
def quiet_refusal_log(monkeypatch) -> None:
    """A fresh rate-limit window and an empty queue, restored afterwards."""
    monkeypatch.setattr(peercred, "_window_start", -peercred.LOG_WINDOW)
    monkeypatch.setattr(peercred, "_logged_in_window", 0)
    monkeypatch.setattr(peercred, "_suppressed", 0)
    monkeypatch.setattr(peercred, "_pending", [])


def test_patched_accept_passes_our_own_connection(listener: socket.socket, quiet_refusal_log) -> None:
    transport = _Transport(listener)
    with socket.create_connection(listener.getsockname(), timeout=5):
        _accept_ready(listener)
        conn, _peer = peercred._checked_new_socket(transport, listener.accept)
        with conn:
            assert conn.fileno() >= 0
    assert transport._finished_intents == []
    assert peercred._pending == []


def test_patched_new_socket_leaves_other_operations_alone(listener: socket.socket) -> None:
    transport = _Transport(listener)
    sock = peercred._checked_new_socket(transport, socket.socket, socket.AF_INET, socket.SOCK_STREAM)
    with sock:
        assert sock.family == socket.AF_INET


@needs_other_user
def test_patched_accept_closes_another_users_connection_unread(
    listener: socket.socket, quiet_refusal_log, caplog
) -> None:
    client = OtherUserClient(listener.getsockname()[1], send="x" * 100)
    try:
        _accept_ready(listener, client.process)
        transport = _Transport(listener)
        with pytest.raises(peercred._Refused):
            peercred._checked_new_socket(transport, listener.accept)
        # closed with the 100 bytes unread, so the client sees a reset
        assert client.finish() == "closed"
    finally:
        client.kill()
    # the warning waits for the transport's finished-intents pass, not logged in the accept
    assert [entry[0] for entry in transport._finished_intents] == [peercred._LOG_FLUSH]
    assert len(peercred._pending) == 1
    with caplog.at_level(logging.DEBUG, logger="actors.adapters.peercred"):
        for intent, status in transport._finished_intents:
            intent.tx_done(status)
    records = [r for r in caplog.records if r.name == "actors.adapters.peercred"]
    assert [(r.levelno, r.exc_info) for r in records] == [(logging.WARNING, None)]
    assert f"peer uid {OTHER_UID} is not ours ({os.geteuid()})" in records[0].getMessage()
    assert peercred._pending == []


def test_refusals_beyond_the_burst_are_counted_not_logged(quiet_refusal_log) -> None:
    for n in range(peercred.LOG_BURST + 5):
        peercred._note_refusal(("127.0.0.1", 10000 + n), OTHER_UID, 10)
    assert len(peercred._pending) == peercred.LOG_BURST
    assert peercred._suppressed == 5


# -- install ---------------------------------------------------------------------


@pytest.fixture
def restore_thespian(monkeypatch) -> None:
    """Undo install() after the test: other tests of this process get Thespian as it was."""
    tcp = peercred._tcp.TCPTransport
    monkeypatch.setattr(tcp, "new_socket", tcp.new_socket)
    monkeypatch.setattr(tcp, "_acceptNewIncoming", tcp._acceptNewIncoming)
    monkeypatch.setattr(peercred, "_netlink_usable", peercred._netlink_usable)


def test_install_is_idempotent(restore_thespian) -> None:
    tcp = peercred._tcp.TCPTransport
    peercred.install()
    assert peercred.installed()
    peercred.install()
    assert peercred.installed()
    assert tcp.new_socket is peercred._checked_new_socket
    assert tcp._acceptNewIncoming is peercred._checked_accept_new_incoming
    # the wrappers call Thespian's own functions, never themselves
    assert peercred._original_new_socket is not peercred._checked_new_socket
    assert peercred._original_accept_new_incoming is not peercred._checked_accept_new_incoming
    assert peercred._original_new_socket.__module__ == peercred._tcp.__name__
    assert peercred._netlink_usable in (True, False)
