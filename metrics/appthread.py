"""An aiohttp application served by a thread with an event loop of its own, inside an actor's process.

The metrics port (``metrics.endpoint``) and the HTTP API (``actors.httpapi.server``)
both run this way: the actor's thread keeps Thespian's loop, this thread keeps
aiohttp's, and idle or slow clients cost only themselves. A subclass builds
its ``web.Application`` in ``application()`` and may free what it holds in
``closing()`` (on the loop, before the runner's cleanup) and ``stopped()``
(after the thread ended). It lives here, below ``actors``, because metrics may
be imported by everything and imports nothing of the server back.
"""

from __future__ import annotations

import asyncio
import socket
import threading

from aiohttp import web

__all__ = ["START_TIMEOUT", "AppThread"]

START_TIMEOUT = 10.0


class AppThread:
    """Serves ``application()`` on ``sock`` (bound and listening) from ``start()`` to ``stop()``."""

    what = "HTTP server"  # for the error when it does not start

    def __init__(self, sock: socket.socket, *, thread_name: str, idle_timeout: float) -> None:
        self.sock = sock
        self.idle_timeout = idle_timeout  # aiohttp's keep-alive timer: a silent connection is closed
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name=thread_name, daemon=True)
        self.runner: web.AppRunner | None = None
        self.started = threading.Event()
        self.failure: BaseException | None = None

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Serve from now on; raises what kept the server from starting."""
        self.thread.start()
        if not self.started.wait(timeout):
            raise RuntimeError(f"the {self.what} did not start")
        if self.failure is not None:
            raise self.failure

    def stop(self, timeout: float = 5.0) -> None:
        if self.thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop)
            self.thread.join(timeout)
        self.stopped()

    # -- for subclasses ------------------------------------------------------------------

    def application(self) -> web.Application:  # pragma: no cover - abstract
        raise NotImplementedError

    async def closing(self) -> None:
        """On the loop, before the runner's cleanup."""

    def stopped(self) -> None:
        """After the thread ended (or did not end within the timeout)."""

    # -- on the loop ---------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start()
            self.failure = exc
            self.started.set()
            return
        self.started.set()
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()

    async def _serve(self) -> None:
        self.runner = web.AppRunner(self.application(), handle_signals=False, access_log=None,
                                    keepalive_timeout=self.idle_timeout, shutdown_timeout=1.0)
        await self.runner.setup()
        await web.SockSite(self.runner, self.sock).start()

    async def _shutdown(self) -> None:
        await self.closing()
        if self.runner is not None:
            await self.runner.cleanup()
        self.loop.stop()
