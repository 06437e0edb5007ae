"""``/readyz``: does the node answer? Asked of the actors themselves, within a deadline.

A readiness check (on the metrics server's event loop, in the exporter's
process) asks three things at once and waits at most ``READY_TIMEOUT``:

| asked                      | how                                                        | not ready when |
|----------------------------|------------------------------------------------------------|----------------|
| the actor system, registry | CheckReadiness -> ReadinessReply                           | no answer; scheduler or gateway down |
| every station host         | PingHost -> HostPong, through the host's writer queue      | down in the registry's answer, no pong, or a pong saying not serving |
| the database               | ``storage.probe``: a fresh read-only connection reads the schema, on a thread | error or too slow |

The exporter's actor thread sends the messages and hands the answers back
(``Readiness.answered``); this module never touches Thespian. ``verdict``
is the pure decision, unit-tested on its own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import json
from collections.abc import Callable
from typing import Any

from actors.messages import CheckReadiness, HostPong, PingHost, ReadinessReply

__all__ = ["READY_TIMEOUT", "Readiness", "verdict"]

READY_TIMEOUT = 2.0  # seconds for every part of one check (they run at the same time)

Send = Callable[[Any, Any], None]  # (address, message) -> queued for the actor thread


def verdict(reply: ReadinessReply | None, pongs: dict[int, HostPong | None], database: str | None) -> list[str]:
    """What is not ready, one short phrase each; empty when everything answered.

    ``reply`` is None when the registry did not answer; ``pongs`` maps each
    host the registry named running to its pong (None: none in time);
    ``database`` is None when it answered, else why not.
    """
    problems: list[str] = []
    if reply is None:
        problems.append("registry: no answer")
    else:
        problems += [f"{role}: not running" for role in reply.down]
        for index, address in reply.hosts:
            if address is None:
                problems.append(f"host {index}: not running")
            elif pongs.get(index) is None:
                problems.append(f"host {index}: no answer")
            elif not pongs[index].serving:  # type: ignore[union-attr]
                problems.append(f"host {index}: not serving")
        if not reply.hosts and "registry" not in reply.down:
            problems.append("no station host")
    if database is not None:
        problems.append(f"database: {database}")
    return problems


def body(problems: list[str]) -> str:
    """The JSON body of a readiness answer."""
    if not problems:
        return json.dumps({"status": "ready"}) + "\n"
    return json.dumps({"status": "not ready", "not_ready": problems}) + "\n"


class Readiness:
    """The check behind ``/readyz``: ``await check()`` on the server's loop -> (ready, body)."""

    def __init__(self, *, send: Send, registry: Any, probe: Callable[[], None],
                 timeout: float = READY_TIMEOUT) -> None:
        self.send = send
        self.registry = registry
        self.probe = probe
        self.timeout = timeout
        self.tokens = itertools.count(1)
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.prober = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="readiness-db")

    def answered(self, token: int, reply: Any) -> None:
        """From the actor thread: the answer to one of our questions (thread-safe)."""
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self._resolve, token, reply)

    def _resolve(self, token: int, reply: Any) -> None:
        future = self.pending.pop(token, None)
        if future is not None and not future.done():
            future.set_result(reply)

    async def _ask(self, address: Any, make: Callable[[int], Any]) -> Any:
        """Send ``make(token)`` to ``address`` and wait for the answer; None after the deadline."""
        assert self.loop is not None
        token = next(self.tokens)
        future: asyncio.Future[Any] = self.loop.create_future()
        self.pending[token] = future
        self.send(address, make(token))
        try:
            return await asyncio.wait_for(future, self.timeout)
        except TimeoutError:
            return None
        finally:
            self.pending.pop(token, None)

    async def _database(self) -> str | None:
        assert self.loop is not None
        try:
            await asyncio.wait_for(self.loop.run_in_executor(self.prober, self.probe), self.timeout)
        except TimeoutError:
            return f"no answer within {self.timeout:g} s"
        except Exception as exc:
            return str(exc)[:200] or type(exc).__name__
        return None

    async def _hosts(self) -> tuple[ReadinessReply | None, dict[int, HostPong | None]]:
        reply = await self._ask(self.registry, lambda token: CheckReadiness(token))
        if not isinstance(reply, ReadinessReply):
            return None, {}
        running = [(index, address) for index, address in reply.hosts if address is not None]
        pongs = await asyncio.gather(*(self._ask(address, lambda token: PingHost(token)) for _, address in running))
        return reply, {index: pong if isinstance(pong, HostPong) else None
                       for (index, _), pong in zip(running, pongs, strict=True)}

    async def check(self) -> tuple[bool, str]:
        self.loop = asyncio.get_running_loop()
        (reply, pongs), database = await asyncio.gather(self._hosts(), self._database())
        problems = verdict(reply, pongs, database)
        return not problems, body(problems)

    def close(self) -> None:
        self.prober.shutdown(wait=False, cancel_futures=True)
