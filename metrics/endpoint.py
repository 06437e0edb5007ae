"""The node's metrics HTTP server: aiohttp, on a thread and event loop of its own.

The hand-written HTTP/1.0 loop this replaces served at most 64 clients; 70 idle
TCP connections took ``/metrics`` offline for every scraper (issue 9). An
asyncio server holds an idle connection for a few KB and no thread, so idle
or slow clients only cost themselves, and aiohttp (a well-kept HTTP server)
does the parsing, the limits and the keep-alive:

| request                              | answer                                      |
|--------------------------------------|---------------------------------------------|
| GET /metrics                         | 200, the exposition (rendered on the render thread) |
| GET / or /healthz                    | 200, "ok" (liveness: this process answers)  |
| GET /readyz                          | 200 when ``ready()`` says so, else 503; a short JSON body either way |
| HEAD of those                        | the same without a body                     |
| another method on those paths        | 405                                         |
| another path                         | 404                                         |
| not HTTP, or a head line over 8 KiB  | 400 (aiohttp's parser limits)               |

A connection that has not sent a whole request within ``IDLE_TIMEOUT``
seconds (nothing at all, half a head, or nothing after a response) is closed
by aiohttp's keep-alive timer. Rendering reads the multiprocess metric files
and storage, so it runs on one thread beside the loop (one: the storage
connection it opens stays on that thread), and concurrent scrapes wait for it
without holding up the loop.
"""

from __future__ import annotations

import concurrent.futures
import logging
import socket
from collections.abc import Awaitable, Callable

from aiohttp import web

from metrics.appthread import AppThread

__all__ = ["IDLE_TIMEOUT", "MAX_LINE", "MetricsServer", "Ready", "Render"]

log = logging.getLogger(__name__)

IDLE_TIMEOUT = 5.0
MAX_LINE = 8190  # request line and each header line, in bytes (aiohttp's own default)

Render = Callable[[], tuple[bytes, str]]
Ready = Callable[[], Awaitable[tuple[bool, str]]]  # run on the server's loop: (ready, JSON body)


class MetricsServer(AppThread):
    """Serves ``render()`` at ``/metrics`` on ``sock`` (already bound and listening)."""

    what = "metrics HTTP server"

    def __init__(self, sock: socket.socket, render: Render, ready: Ready | None = None) -> None:
        super().__init__(sock, thread_name="metrics-http", idle_timeout=IDLE_TIMEOUT)
        self.render = render
        self.ready = ready
        self.renderer = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="metrics-render")

    def stopped(self) -> None:
        self.renderer.shutdown(wait=False, cancel_futures=True)

    def application(self) -> web.Application:
        app = web.Application(handler_args={"max_line_size": MAX_LINE, "max_field_size": MAX_LINE})
        app.router.add_route("*", "/metrics", self._metrics)
        app.router.add_route("*", "/", self._ok)
        app.router.add_route("*", "/healthz", self._ok)
        app.router.add_route("*", "/readyz", self._readyz)
        return app

    async def _metrics(self, request: web.Request) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            return _plain(405, "method not allowed\n")
        try:
            body, content_type = await self.loop.run_in_executor(self.renderer, self.render)
        except Exception:
            log.error("metrics exposition failed", exc_info=True)
            return _plain(500, "exposition failed\n")
        mime, _, params = content_type.partition(";")
        response = web.Response(body=body, status=200)
        response.headers["Content-Type"] = content_type if params else mime
        return response

    async def _ok(self, request: web.Request) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            return _plain(405, "method not allowed\n")
        return _plain(200, "ok\n")


    async def _readyz(self, request: web.Request) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            return _plain(405, "method not allowed\n")
        if self.ready is None:
            return _plain(200, "ok\n")
        try:
            ready, body = await self.ready()
        except Exception:
            log.error("readiness check failed", exc_info=True)
            return _plain(503, '{"status": "not ready", "not_ready": ["readiness check failed"]}\n')
        return web.Response(status=200 if ready else 503, text=body, content_type="application/json")


def _plain(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text, content_type="text/plain", charset="utf-8")
