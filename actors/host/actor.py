"""StationHostActor: one process that serves many charge points (``--hosts K`` per node).

The Thespian side of a station host. It starts two threads in its process:
the event loop (``actors.host.loop``: accept, upgrade, admission, frames)
and the writer (``actors.host.worker``: the station actors and group
commit), and bridges them to the control plane:

    registry/ctl/scheduler ──Thespian──► StationHostActor ──queue──► writer (station actors)
                                              ▲                         │ after commit
                           socketpair wake-up │◄──── messages to send ──┤
                                              │                         ▼
                           leases ◄──────────── loop ◄──── frames, closes, timeouts

Nothing else crosses threads: the loop and the writer reach the actor through
``Outbox`` (a deque and one byte on a socketpair that the actor watches with
ThespianWatch); the actor reaches the writer through its queue and the loop
through ``call_soon_threadsafe``. Leases are asked and released in batches,
one message per wake-up, so a reconnect storm of thousands is a few dozen
messages to the registry.

Created by the registry (never by a threaded process: ARCHITECTURE.md,
"Pitfalls"). If the registry's process goes away, the host ends itself.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from typing import Any

from thespian.actors import Actor, ActorExitRequest, ThespianWatch, WakeupMessage, WatchMessage

import metrics
from actors.adapters.bridge import Outbox, ThreadSafeLogs
from actors.host.loop import HostLoop
from actors.host.worker import FromActor, HostWorker, Turn
from actors.messages import (
    AcquireLeases,
    GetStationState,
    HostFailed,
    HostPong,
    HostStarted,
    LeasesGranted,
    LeasesRefused,
    PingHost,
    ReleaseLeases,
    RetireStation,
    RevokeLeases,
    SendCall,
    StartHost,
    TimerFired,
)
from actors.ocpp.effects import SCHEDULER
from actors.settings import Settings

log = logging.getLogger(__name__)

# The cyclic collector's young-generation threshold in a host (CPython's default is 700).
GC_YOUNG_THRESHOLD = 50_000


def _tune_gc() -> None:
    """Fewer, cheaper collections in a process that holds thousands of connections.

    Every frame allocates; with the default threshold the young generation is
    collected every 700 allocations and, as connections pile up in a
    reconnect storm, the older generations are traversed again and again.
    What the process holds at start (modules, settings) is frozen out of
    every collection.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)

ORPHAN_CHECK = "orphan-check"
STOP_TIMEOUT = 4.0
SAMPLE_EVERY = 5.0  # seconds between samples of the process's CPU, memory and descriptors


class StationHostActor(Actor):
    def __init__(self) -> None:
        super().__init__()
        self.settings: Settings | None = None
        self.index = -1
        self.registry: Any = None
        self.outbox = Outbox()
        self.worker: HostWorker | None = None
        self.loop: HostLoop | None = None
        self.logs: ThreadSafeLogs | None = None
        self.parent_pid = os.getppid()
        self.sampler = metrics.ProcessSampler()
        self.sampled_at = -SAMPLE_EVERY

    def receiveMessage(self, message: Any, sender: Any) -> Any:
        try:
            self._dispatch(message, sender)
        except Exception:
            log.exception("station host %d: error handling %s", self.index, type(message).__name__)
        if isinstance(message, ActorExitRequest):
            return None
        return ThespianWatch([self.outbox.actor_end.fileno()])

    def _dispatch(self, message: Any, sender: Any) -> None:
        if isinstance(message, WatchMessage):
            self._drain()
        elif isinstance(message, (SendCall, TimerFired, RetireStation, GetStationState)):
            if self.worker is not None:
                self.worker.put(FromActor(message, sender))
        elif isinstance(message, PingHost):
            if self.worker is not None and self.loop is not None and self.loop.thread.is_alive():
                self.worker.put(FromActor(message, sender))  # the writer answers: it is turning
            else:
                self.send(sender, HostPong(message.token, self.index, False))
        elif isinstance(message, LeasesGranted):
            if self.loop is not None:
                self.loop.granted(message.tickets)
        elif isinstance(message, LeasesRefused):
            if self.loop is not None:
                self.loop.refused(message.tickets, message.reason)
        elif isinstance(message, RevokeLeases):
            # Through the loop, in order with the grants before it: a handshake granted
            # but not yet upgraded is refused there, open connections go to the writer.
            if self.loop is not None:
                self.loop.revoked(message)
        elif isinstance(message, WakeupMessage) and message.payload == ORPHAN_CHECK:
            self._orphan_check()
        elif isinstance(message, StartHost):
            self._start(message, sender)
        elif isinstance(message, ActorExitRequest):
            self._stop()

    def _start(self, message: StartHost, sender: Any) -> None:
        if self.settings is not None:
            self.send(sender, HostStarted(self.index, os.getpid()))
            return
        self.settings, self.index, self.registry = message.settings, message.index, message.registry
        root = logging.getLogger()
        root.setLevel(self.settings.log_level)
        self.logs = ThreadSafeLogs(root.handlers[:], self.outbox)
        root.handlers = [self.logs]
        self.worker = HostWorker(self.settings, release=self._release, host=str(self.index))
        self.loop = HostLoop(
            self.settings, self.worker,
            request_lease=lambda ticket: self.outbox.put("acquire", None, ticket),
            release_lease=lambda ticket: self.outbox.put("release", None, ticket),
        )
        _tune_gc()
        self.worker.start()
        failure = self.loop.start()
        if failure is not None:
            log.error("station host %d: %s", self.index, failure)
            self.send(sender, HostFailed(self.index, failure))
            return
        self._sample()
        self.wakeupAfter(1.0, payload=ORPHAN_CHECK)
        log.info("station host %d serving (pid %d)", self.index, os.getpid())
        self.send(sender, HostStarted(self.index, os.getpid()))

    def _release(self, turn: Turn) -> None:
        """Writer thread, after a commit: frames to the loop, messages to this actor."""
        assert self.loop is not None
        self.loop.deliver(turn)
        for address, message in turn.tells:
            self.outbox.put("tell", address, message)

    def _drain(self) -> None:
        acquire: list[tuple[str, int]] = []
        release: list[tuple[str, int]] = []
        for kind, address, item in self.outbox.take():
            if kind == "acquire":
                acquire.append(item)
            elif kind == "release":
                release.append(item)
            elif kind == "log" and self.logs is not None:
                self.logs.forward(item)
            elif address == SCHEDULER:  # timers go through the registry to the current scheduler
                self.send(self.registry, item)
            elif address is not None:
                self.send(address, item)
        if release:
            self.send(self.registry, ReleaseLeases(self.index, tuple(release)))
        if acquire:
            self.send(self.registry, AcquireLeases(self.index, tuple(acquire)))

    def _orphan_check(self) -> None:
        """The registry forked this host; if it is gone, so is the node's control plane."""
        if os.getppid() != self.parent_pid:
            log.error("station host %d: the registry is gone; ending", self.index)
            self._stop()
            os._exit(0)
        if time.monotonic() - self.sampled_at >= SAMPLE_EVERY:
            self._sample()
        self.wakeupAfter(1.0, payload=ORPHAN_CHECK)

    def _sample(self) -> None:
        """This process's CPU, memory and descriptors, on the actor's thread (never the loop's)."""
        self.sampled_at = time.monotonic()
        try:
            cpu, rss, fds = self.sampler.sample()
            metrics.host_process(str(self.index), cpu_seconds=cpu, rss_bytes=rss, open_fds=fds)
        except Exception:
            log.warning("station host %d: process sample failed", self.index, exc_info=True)

    def _stop(self) -> None:
        # The writer first: it closes every connection 1001 and commits; then the
        # loop sends those close frames and ends.
        if self.worker is not None:
            self.worker.stop(STOP_TIMEOUT / 2)
            self._drain()
        if self.loop is not None:
            self.loop.stop(STOP_TIMEOUT / 2)
        self.loop, self.worker = None, None
