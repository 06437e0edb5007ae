"""Bridges between a Thespian actor's thread and the other threads of its process.

Thespian's transport may only be used from the actor's own thread, and its
log handler pickles each record with its arguments. A station host runs an
event loop and a writer in two more threads; they reach the actor only
through these:

- ``Outbox``: a deque and one wake-up byte on a socketpair that the actor
  watches with ``ThespianWatch`` (ARCHITECTURE.md, "Thespian: what to know").
- ``ThreadSafeLogs``: the process's root log handler; records of other
  threads are flattened to text and handed to the actor thread through the
  outbox, which forwards them to Thespian's handlers.
"""

from __future__ import annotations

import collections
import logging
import socket
import threading
from typing import Any


class Outbox:
    """Thread-safe hand-over from the loop and the writer to the actor thread."""

    def __init__(self) -> None:
        self.items: collections.deque[tuple[str, Any, Any]] = collections.deque()
        self.actor_end, self.other_end = socket.socketpair()
        self.actor_end.setblocking(False)
        self.other_end.setblocking(False)
        self.lock = threading.Lock()
        self.signalled = False

    def put(self, kind: str, address: Any, message: Any) -> None:
        self.items.append((kind, address, message))
        with self.lock:
            if self.signalled:
                return
            self.signalled = True
        try:
            self.other_end.send(b"!")
        except BlockingIOError:  # a wake-up is pending already
            pass

    def take(self) -> list[tuple[str, Any, Any]]:
        # Drain the wake-up bytes first, then clear the flag: cleared before the
        # drain, a put() in between had its byte swallowed and left the flag set,
        # so every later put() stayed silent (leases of a connect storm waited
        # for the next unrelated wake-up, or for ever).
        try:
            while self.actor_end.recv(4096):
                pass
        except BlockingIOError:
            pass
        with self.lock:
            self.signalled = False
        taken = []
        while self.items:
            taken.append(self.items.popleft())
        return taken


class ThreadSafeLogs(logging.Handler):
    """The host's root log handler: records of the loop and writer threads go
    to the actor thread first.

    Thespian's log handler sends each record to the logging actor through the
    actor's own transport, which only the actor's thread may use, and pickles
    the record with its arguments (a websocket connection cannot be pickled).
    Records from other threads are flattened to text and handed over.
    """

    def __init__(self, handlers: list[logging.Handler], outbox: Outbox) -> None:
        super().__init__()
        self.handlers = handlers
        self.outbox = outbox
        self.actor_thread = threading.current_thread()

    def emit(self, record: logging.LogRecord) -> None:
        if threading.current_thread() is self.actor_thread:
            self.forward(record)
            return
        try:
            record.msg, record.args = record.getMessage(), None
            if record.exc_info:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
                record.exc_info = None
        except Exception:
            self.handleError(record)
            return
        self.outbox.put("log", None, record)

    def forward(self, record: logging.LogRecord) -> None:
        for handler in self.handlers:
            if record.levelno >= handler.level:
                handler.handle(record)
