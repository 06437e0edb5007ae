"""The event stream of the HTTP API (``GET /api/v1/events``): Server-Sent Events from the events table.

The station hosts' writers insert events in their group commit (``storage.history``),
so a row exists iff what it reports was committed, and its AUTOINCREMENT id is the
SSE ``id``. This process reads them with its own read connection, on a thread of its
own (a ``Store`` is never shared across threads):

| part       | what it does                                                              |
|------------|---------------------------------------------------------------------------|
| ``Feed``   | one tailer for all clients while any is connected: every ``POLL`` s, the rows after the last one seen, put in each client's queue |
| ``stream`` | one client: subscribe, then every kept event after its ``Last-Event-ID`` read from the table (catch-up), then the live ones with a larger id, a comment line every ``KEEPALIVE`` s |

No gap between catch-up and live: the client subscribes first and waits until the
tailer knows where it starts; its catch-up then reads until nothing is left, which is
past that start, and it skips live events it already sent. A client too slow to take
``QUEUE`` events is disconnected; it reconnects with its Last-Event-ID and loses nothing
that is still kept (``--event-retention-hours``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

__all__ = ["KEEPALIVE", "POLL", "Feed", "sse", "stream"]

log = logging.getLogger(__name__)

POLL = 0.25  # seconds between two reads of the table while clients are connected
RECHECK = 2.0  # seconds between checks that the stream's key is still valid
KEEPALIVE = 15.0  # seconds between comment lines on an idle stream
BATCH = 500  # events read at once
QUEUE = 10_000  # events a client may lag behind before it is disconnected

Row = tuple[int, str, str]  # id, type, data (a JSON object on one line)


def sse(row: Row) -> bytes:
    """One event in the text/event-stream format."""
    event_id, kind, data = row
    return f"id: {event_id}\nevent: {kind}\ndata: {data}\n\n".encode()


class Feed:
    """Tails the events table for the connected clients (see the module docstring)."""

    def __init__(self, open_store: Callable[[], Any], *, poll: float = POLL) -> None:
        self.open_store = open_store  # called on the feed's thread: a storage.Store
        self.poll = poll
        self.reader = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="api-events")
        self.store: Any = None
        self.clients: set[asyncio.Queue[Row | None]] = set()
        self.task: asyncio.Task[None] | None = None
        self.started = asyncio.Event()

    async def _read(self, method: str, *args: Any, **kwargs: Any) -> Any:
        def run() -> Any:
            if self.store is None:
                self.store = self.open_store()
            return getattr(self.store, method)(*args, **kwargs)

        return await asyncio.get_running_loop().run_in_executor(self.reader, run)

    async def after(self, last_id: int) -> list[Row]:
        rows: list[Row] = await self._read("events_after", last_id, limit=BATCH)
        return rows

    async def newest(self) -> int:
        found: int = await self._read("last_event_id")
        return found

    def subscribe(self) -> asyncio.Queue[Row | None]:
        queue: asyncio.Queue[Row | None] = asyncio.Queue(maxsize=QUEUE)
        self.clients.add(queue)
        if self.task is None:
            self.started = asyncio.Event()
            self.task = asyncio.get_running_loop().create_task(self._tail())
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Row | None]) -> None:
        self.clients.discard(queue)

    async def _tail(self) -> None:
        try:
            last = await self.newest()
            self.started.set()
            while self.clients:
                rows = await self.after(last)
                for row in rows:
                    for queue in list(self.clients):
                        try:
                            queue.put_nowait(row)
                        except asyncio.QueueFull:
                            self.clients.discard(queue)
                            queue.get_nowait()
                            queue.put_nowait(None)  # too slow: it is disconnected, and reconnects
                if rows:
                    last = rows[-1][0]
                if len(rows) < BATCH:
                    await asyncio.sleep(self.poll)
        except Exception:
            log.error("HTTP API: reading the events table failed", exc_info=True)
            for queue in list(self.clients):
                queue.put_nowait(None)
            self.clients.clear()
        finally:
            self.started.set()
            self.task = None

    def close(self) -> None:
        self.reader.shutdown(wait=False, cancel_futures=True)


async def stream(feed: Feed, request: web.Request, last_event_id: int | None,
                 keepalive: float = KEEPALIVE,
                 still_allowed: Callable[[], Awaitable[bool]] | None = None,
                 recheck: float = RECHECK) -> web.StreamResponse:
    """Serve one client until it goes away (or is too slow), or ``still_allowed()`` says its key
    no longer is (asked every ``recheck`` seconds: a revoked key stops receiving at once, and
    its client's reconnection is answered 401)."""
    queue = feed.subscribe()
    try:
        await feed.started.wait()
        # Where this client starts, known before it is answered: whatever it sees answered came later.
        last = last_event_id if last_event_id is not None else await feed.newest()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                               "X-Accel-Buffering": "no"})
        await response.prepare(request)
        await response.write(b"retry: 2000\n\n")
        while True:  # catch-up: every kept event after ``last``
            rows = await feed.after(last)
            for row in rows:
                await response.write(sse(row))
            if rows:
                last = rows[-1][0]
            if len(rows) < BATCH:
                break
        loop = asyncio.get_running_loop()
        quiet_until = loop.time() + keepalive
        check_at = loop.time() + recheck
        while True:
            if still_allowed is not None and loop.time() >= check_at:
                if not await still_allowed():
                    break
                check_at = loop.time() + recheck
            wake = min(quiet_until, check_at) if still_allowed is not None else quiet_until
            try:
                live = await asyncio.wait_for(queue.get(), max(0.0, wake - loop.time()))
            except TimeoutError:
                if loop.time() >= quiet_until:
                    await response.write(b": keep-alive\n\n")
                    quiet_until = loop.time() + keepalive
                continue
            if live is None:
                break
            if live[0] > last:
                await response.write(sse(live))
                last = live[0]
                quiet_until = loop.time() + keepalive
        return response
    except ConnectionResetError:  # the client went away
        return web.StreamResponse()
    finally:
        feed.unsubscribe(queue)
