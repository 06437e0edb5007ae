"""The event stream's server side (actors/httpapi/events.py) against a fake events table:
catch-up after Last-Event-ID, then live events, keep-alive comments, the SSE format."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from actors.httpapi import events


class Table:
    """``events_after`` and ``last_event_id`` of storage.history, over a list (thread-safe enough)."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, str, str]] = []
        self.lock = threading.Lock()

    def add(self, kind: str, station: str) -> None:
        with self.lock:
            self.rows.append((len(self.rows) + 1, kind, f'{{"station": "{station}"}}'))

    def events_after(self, last_id: int, *, limit: int = 500) -> list[tuple[int, str, str]]:
        with self.lock:
            return [r for r in self.rows if r[0] > last_id][:limit]

    def last_event_id(self) -> int:
        with self.lock:
            return len(self.rows)


async def serve(table: Table, keepalive: float) -> tuple[TestServer, events.Feed]:
    feed = events.Feed(lambda: table, poll=0.02)

    async def handler(request: web.Request) -> web.StreamResponse:
        header = request.headers.get("Last-Event-ID")
        return await events.stream(feed, request, int(header) if header else None, keepalive=keepalive)

    app = web.Application()
    app.router.add_get("/events", handler)
    server = TestServer(app)
    await server.start_server()
    return server, feed


async def read_until(response: Any, wanted: str, deadline: float = 5.0) -> str:
    text = ""
    async with asyncio.timeout(deadline):
        while wanted not in text:
            text += (await response.content.readline()).decode()
    return text


def test_a_resumed_stream_gets_the_kept_events_after_its_id_then_live_ones_and_keep_alives() -> None:
    async def scenario() -> None:
        table = Table()
        for n in range(5):
            table.add("connector.status", f"CP{n}")
        server, feed = await serve(table, keepalive=0.2)
        try:
            async with ClientSession() as session, session.get(server.make_url("/events"),
                                                               headers={"Last-Event-ID": "3"}) as response:
                assert response.headers["Content-Type"] == "text/event-stream"
                text = await read_until(response, "id: 5\n")
                assert "id: 3\n" not in text and "id: 4\nevent: connector.status\ndata: {\"station\": \"CP3\"}\n" in text
                assert ": keep-alive" in await read_until(response, ": keep-alive")
                table.add("station.connected", "LIVE")
                live = await read_until(response, "LIVE")
                assert "id: 6\nevent: station.connected\n" in live
        finally:
            await server.close()
            feed.close()

    asyncio.run(scenario())


def test_a_stream_without_last_event_id_starts_with_what_comes_next() -> None:
    async def scenario() -> None:
        table = Table()
        table.add("station.connected", "OLD")
        server, feed = await serve(table, keepalive=30.0)
        try:
            async with ClientSession() as session, session.get(server.make_url("/events")) as response:
                await read_until(response, "retry:")
                table.add("station.connected", "NEW")
                text = await read_until(response, "NEW")
                assert "OLD" not in text and "id: 2\n" in text
        finally:
            await server.close()
            feed.close()

    asyncio.run(scenario())
