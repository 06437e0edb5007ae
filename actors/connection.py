"""A charge point's WebSocket connection inside its station actor.

The gateway finished the opening handshake and handed over the socket; this
class feeds bytes to websockets' sans-I/O ``Protocol`` (state OPEN) and turns
what comes out into complete text messages. It never blocks the actor for
longer than ``SEND_TIMEOUT``: a charge point that stops reading is dropped.
"""

from __future__ import annotations

import logging
import select
import socket
import time

from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol, Side, State

log = logging.getLogger(__name__)

SEND_TIMEOUT = 2.0  # seconds a send may block the station actor
LINGER = 1.0  # seconds a close waits for the charge point to close its side
RECV_CHUNK = 65536


class ConnectionClosed(Exception):
    """Raised when the connection is gone (EOF, close handshake, send failure)."""


class Connection:
    """One accepted WebSocket connection, owned by the station actor."""

    def __init__(self, sock: socket.socket, *, peer: str, max_size: int, initial: bytes = b""):
        sock.setblocking(False)
        self.sock = sock
        self.peer = peer
        self.protocol = Protocol(Side.SERVER, state=State.OPEN, max_size=max_size)
        self._fragments: list[bytes] | None = None
        self._binary = False
        self.closed = False
        self.peer_closed = False  # EOF seen: nothing more will arrive
        self.last_received = time.monotonic()
        self.ping_outstanding: bytes | None = None
        self.pending_initial = initial

    def fileno(self) -> int:
        return self.sock.fileno()

    def read(self) -> list[str | bytes]:
        """Read what the socket has; return complete messages (str for text, bytes for binary).

        Raises ConnectionClosed once the connection is over (after flushing
        any close frame the protocol wants to send).
        """
        data = self.pending_initial
        self.pending_initial = b""
        eof = False
        if not data:
            try:
                data = self.sock.recv(RECV_CHUNK)
            except (BlockingIOError, InterruptedError):
                return []
            except OSError as exc:
                self.close()
                raise ConnectionClosed(str(exc)) from None
            eof = not data
        self.last_received = time.monotonic()
        if eof:
            self.peer_closed = True
            self.protocol.receive_eof()
        else:
            self.protocol.receive_data(data)
        messages = self._collect(self.protocol.events_received())
        self._flush()
        if eof or self.protocol.state is State.CLOSED or self.protocol.close_expected():
            self.close()
            raise ConnectionClosed(self._close_reason())
        return messages

    def _collect(self, events: list) -> list[str | bytes]:
        messages: list[str | bytes] = []
        for frame in events:
            if not isinstance(frame, Frame):
                continue
            if frame.opcode is Opcode.PONG:
                self.ping_outstanding = None
                continue
            if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
                self._fragments, self._binary = [], frame.opcode is Opcode.BINARY
            if frame.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT) and self._fragments is not None:
                self._fragments.append(bytes(frame.data))
                if frame.fin:
                    whole = b"".join(self._fragments)
                    self._fragments = None
                    if self._binary:
                        messages.append(whole)
                    else:
                        messages.append(whole.decode("utf-8"))
        return messages

    def send_text(self, text: str) -> None:
        self.protocol.send_text(text.encode("utf-8"))
        self._flush()

    def send_ping(self, data: bytes) -> None:
        self.ping_outstanding = data
        self.protocol.send_ping(data)
        self._flush()

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close (politely when still open); never raises.

        The close frame must reach the charge point: closing a socket whose
        receive buffer still holds data makes the kernel send RST, and the
        charge point may then lose the close frame and see 1006 instead of,
        say, 1008 (seen in CI with a flooding client). So the socket is
        half-closed and drained until the charge point closes its side, for at
        most LINGER seconds, before it is closed.
        """
        if self.closed:
            return
        self.closed = True
        try:
            if self.protocol.state is State.OPEN:
                self.protocol.send_close(code, reason)
                self._flush()
            if not self.peer_closed:
                self._linger()
        except Exception:  # the peer may be gone already
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    def _linger(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            return
        deadline = time.monotonic() + LINGER
        while (remaining := deadline - time.monotonic()) > 0:
            if not select.select([self.sock], [], [], remaining)[0]:
                return
            try:
                if not self.sock.recv(RECV_CHUNK):
                    return  # the charge point closed its side: no RST now
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                return

    def _close_reason(self) -> str:
        code = self.protocol.close_code
        return f"closed ({code} {self.protocol.close_reason or ''})".strip()

    def _flush(self) -> None:
        for chunk in self.protocol.data_to_send():
            if chunk:
                self._send_all(chunk)
            else:  # SEND_EOF: half-close
                try:
                    self.sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

    def _send_all(self, data: bytes) -> None:
        view = memoryview(data)
        deadline = time.monotonic() + SEND_TIMEOUT
        while view:
            try:
                sent = self.sock.send(view)
                view = view[sent:]
            except (BlockingIOError, InterruptedError):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._abort("send timed out: charge point is not reading")
                select.select([], [self.sock], [], remaining)
            except OSError as exc:
                self._abort(f"send failed: {exc}")

    def _abort(self, reason: str) -> None:
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass
        raise ConnectionClosed(reason)
