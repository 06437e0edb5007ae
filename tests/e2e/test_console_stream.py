"""The web console follows the event stream, ``GET /api/v1/events``, when the server has one.

That endpoint is being built by another engineer (Server-Sent Events, scope
read: ``id:`` an increasing integer, ``event:`` the type, ``data:`` one JSON
object). Until it is on this branch the real system answers 404 and the
console polls (tests/e2e/test_console.py). Here a stub of the HTTP API,
speaking that contract over a real socket, serves the console's real files
to a real Chromium: the page must take the stream (read with fetch(), since
EventSource cannot send the key), parse events split anywhere across
chunks with CRLF line ends, update on them, and after the stream ends
reconnect with ``Last-Event-ID``. A connector.status event is drawn from
its own data, without a request.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web

from actors.httpapi import console
from tests.support.browser import chromium, missing, row_of, sign_in, text_of, until

pytestmark = pytest.mark.e2e

KEY = "csms_stub-key"
STATION = "STUB-1"


class StubApi:
    """The few endpoints the stations list uses, and /api/v1/events fed by ``push``."""

    def __init__(self) -> None:
        self.connected = False
        self.detail_requests = 0
        self.stream_requests: list[str | None] = []  # the Last-Event-ID of each, in order
        self.streams: list[asyncio.Queue[bytes | None]] = []
        self.files = console.load()
        self.loop = asyncio.new_event_loop()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.runner: web.AppRunner | None = None
        started = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self.thread.start()
        assert started.wait(10), "the stub API did not start"

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_get("/", self.file)
        app.router.add_get("/console/{asset}", self.file)
        app.router.add_get("/api/v1/status", self.status)
        app.router.add_get("/api/v1/stations", self.stations)
        app.router.add_get("/api/v1/stations/{id}", self.station)
        app.router.add_get("/api/v1/stations/{id}/log", self.log)
        app.router.add_get("/api/v1/events", self.events)
        self.runner = web.AppRunner(app, shutdown_timeout=0.5)
        self.loop.run_until_complete(self.runner.setup())
        self.loop.run_until_complete(web.SockSite(self.runner, self.sock).start())
        started.set()
        self.loop.run_forever()

    def stop(self) -> None:
        async def cleanup() -> None:
            for stream in self.streams:
                stream.put_nowait(None)
            assert self.runner is not None
            await self.runner.cleanup()

        asyncio.run_coroutine_threadsafe(cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def push(self, *chunks: bytes | None) -> None:
        """Write ``chunks`` to the newest stream, each on its own; None ends that stream."""
        for chunk in chunks:
            self.loop.call_soon_threadsafe(self.streams[-1].put_nowait, chunk)

    @staticmethod
    def authorized(request: web.Request) -> None:
        if request.headers.get("Authorization") != f"Bearer {KEY}":
            raise web.HTTPUnauthorized()

    async def file(self, request: web.Request) -> web.Response:
        found = self.files[request.match_info.get("asset", console.INDEX)]
        return web.Response(body=found.body, content_type=found.media, headers=console.HEADERS)

    async def status(self, request: web.Request) -> web.Response:
        self.authorized(request)
        return web.json_response({"stations_known": 1})

    def row(self) -> dict[str, Any]:
        return {"id": STATION, "registration": "accepted", "connected": int(self.connected), "vendor": "Stub",
                "model": "One", "disconnected_at": None, "last_seen": None}

    async def stations(self, request: web.Request) -> web.Response:
        self.authorized(request)
        return web.json_response([self.row()])

    async def station(self, request: web.Request) -> web.Response:
        self.authorized(request)
        self.detail_requests += 1
        return web.json_response({"station": self.row(), "connectors": [
            {"connector_id": 1, "status": "Available", "error_code": "NoError"}], "active_transactions": []})

    async def log(self, request: web.Request) -> web.Response:
        """The station log another engineer is adding; its shape is theirs, the console shows any."""
        self.authorized(request)
        return web.json_response({
            "frames": [{"at": "2026-12-07T03:00:01Z", "direction": "in", "action": "Heartbeat"}],
            "security_events": [{"at": "2026-12-07T03:00:02Z", "type": "InvalidFirmwareSignature"}]})

    async def events(self, request: web.Request) -> web.StreamResponse:
        self.authorized(request)
        self.stream_requests.append(request.headers.get("Last-Event-ID"))
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.streams.append(queue)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
        await response.prepare(request)
        await response.write(b": the stub's stream\nretry: 300\n\n")
        while (chunk := await queue.get()) is not None:
            await response.write(chunk)
        return response


@pytest.fixture
def stub() -> Iterator[StubApi]:
    api = StubApi()
    yield api
    api.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if (why := missing()) is not None:
        pytest.skip(why)
    with chromium(tmp_path_factory.mktemp("chromium")) as driver:
        yield driver


def test_the_console_updates_from_the_event_stream_and_resumes_it_with_the_last_event_id(
        stub: StubApi, browser: Any) -> None:
    sign_in(browser, stub.url, KEY)
    until(browser, lambda d: text_of(d, "#live") == "Live: event stream", "the console on the stream")
    until(browser, lambda d: "Disconnected" in row_of(d, STATION), "the station listed, disconnected")

    # With a stream the page does not poll (only every 30 s, as a safety net): this change shows
    # because of the event. The event arrives in pieces, split inside a line and inside a CRLF.
    stub.connected = True
    stub.push(b"id: 7\r\nevent: station.conn", b'ected\r', b'\ndata: {"station": "STUB-1", ',
              b'"at": "2026-12-07T03:00:00Z"}\r\n\r\n')
    until(browser, lambda d: "Connected" in row_of(d, STATION) and "Disconnected" not in row_of(d, STATION),
          "the station shown connected after the event", timeout=10)
    assert text_of(browser, "#announce") == "STUB-1 connected"

    # A connector.status event is the connector's new state: shown as it is, without asking the API
    # (whose answer here still says Available).
    until(browser, lambda d: "1: Available" in row_of(d, STATION), "the connector shown available")
    details = stub.detail_requests
    stub.push(b'id: 8\nevent: connector.status\ndata: {"station": "STUB-1", "at": "2026-12-07T03:01:00Z", '
              b'"connector": 1, "status": "Faulted", "error_code": "GroundFailure", "info": "RCD"}\n\n')
    until(browser, lambda d: "1: Faulted" in row_of(d, STATION), "the connector shown faulted", timeout=10)
    assert "1: GroundFailure" in row_of(browser, STATION)
    assert stub.detail_requests == details

    stub.push(None)  # the server ends the stream: the page reconnects, resuming after event 8
    until(browser, lambda d: len(stub.stream_requests) >= 2, "the page to reconnect")
    assert stub.stream_requests[:2] == [None, "8"]
    until(browser, lambda d: text_of(d, "#live") == "Live: event stream", "the console back on the stream")


def test_the_station_page_shows_the_station_log_when_the_api_offers_it(stub: StubApi, browser: Any) -> None:
    sign_in(browser, stub.url, KEY)
    browser.get(f"{stub.url}/#/stations/{STATION}")
    log = 'section[aria-labelledby="log-title"]'
    until(browser, lambda d: "Heartbeat" in text_of(d, log), "the log's frames shown")
    assert "InvalidFirmwareSignature" in text_of(browser, log) and "security events" in text_of(browser, log)
    assert not browser.execute_script("return document.querySelector(arguments[0]).hidden", log)
