"""The HTTP API server: aiohttp on a thread and event loop of its own, inside the ApiActor's process.

Built from the route table (``actors.httpapi.routes``), like the OpenAPI
document. A request is authenticated (``Authorization: Bearer KEY``: 401
without a known key, 403 when its scope is short), then served by its route's
kind:

| kind    | how                                                                    |
|---------|------------------------------------------------------------------------|
| admin   | AdminCommand to the registry (the ``actors.admin`` command ``ctl`` runs) |
| call    | ``operator_calls.prepare_call``, LookupStation to the registry, SendCall to the holding host |
| openapi | the generated document                                                 |
| health  | ``{"status": "ok"}``                                                   |
| console | a file of the web console, from memory (``actors.httpapi.console``)   |

Thespian's transport may only be used from the actor's thread, so a question
to another actor is handed to ``send`` (the actor's outbox) with a fresh
request id, and the actor hands every answer back with ``deliver``; the
answer's request id finds the waiting request. Keys are looked up on one
thread beside the loop (its own Store connection), so SQLite never blocks
the loop. Keys are never logged.

| answer of the registry or the station            | HTTP |
|--------------------------------------------------|------|
| done; CALLRESULT or CALLERROR of the charge point | 200 (201 for a new key) |
| body not JSON                                    | 400 |
| no key or a wrong one / scope too short          | 401 / 403 |
| unknown station, transaction, tag, key           | 404 |
| charge point not connected                       | 409 |
| invalid input, payload invalid against the schema, a request refused | 422 |
| the central system does not answer               | 503 |
| no answer from the charge point                  | 504 |
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import itertools
import json
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from actors.errors import CommandError, OcppCallError
from actors.httpapi import console, events, openapi
from actors.httpapi.routes import ROUTES, Route
from actors.messages import (
    AdminCommand,
    AdminReply,
    CallReply,
    LookupStation,
    SendCall,
    StationAddressReply,
)
from actors.operator_calls import call_document, error_document, invalid_payload, prepare_call
from metrics.appthread import AppThread
from storage import scope_allows

__all__ = ["ApiServer", "KeyLookup"]

log = logging.getLogger(__name__)

IDLE_TIMEOUT = 15.0
MAX_LINE = 8190
MAX_BODY = 1024 * 1024
ASK_TIMEOUT = 30.0  # the registry answers at once; longer means it is gone
CALL_MARGIN = 10.0  # beyond the call timeout, as ctl waits
TOUCH_EVERY = 60.0  # seconds between two writes of a key's last use
KEY_NAME = "csms.key_name"  # the request's key name, once authorized

# (key) -> the key's row (name, scope, ...) or None; and (name) -> record its use now.
KeyLookup = Callable[[str], dict[str, Any] | None]

_EXIT_STATUS = {2: 422, 3: 404, 6: 503}
_OUTCOME_STATUS = {"result": 200, "error": 200, "timeout": 504, "not-connected": 409, "refused": 422}
_CODE_NAME = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
              409: "NotConnected", 422: "UsageError", 500: "InternalError", 503: "Unreachable", 504: "Timeout"}


class ApiServer(AppThread):
    """Serves ``ROUTES`` on ``sock`` (bound and listening) until ``stop()``."""

    what = "HTTP API server"

    def __init__(self, sock: socket.socket, *, registry: Any, send: Callable[[Any, Any], None],
                 find_key: KeyLookup, touch_key: Callable[[str], None],
                 readiness: Callable[[], Awaitable[tuple[bool, str]]],
                 open_store: Callable[[], Any] | None = None) -> None:
        """``open_store``: a read-only ``storage.Store`` for the event stream, opened on its thread."""
        super().__init__(sock, thread_name="api-http", idle_timeout=IDLE_TIMEOUT)
        self.open_store = open_store
        self.feed: events.Feed | None = None
        self.readiness = readiness  # actors.readiness.Readiness.check, as /readyz of the metrics port
        self.registry = registry
        self.send = send
        self.find_key = find_key
        self.touch_key = touch_key
        self.keys = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="api-keys")
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.ids = itertools.count(1)
        self.touched: dict[str, float] = {}
        self.document = json.dumps(openapi.document()).encode()
        self.console = console.load()

    def stopped(self) -> None:
        self.keys.shutdown(wait=False, cancel_futures=True)

    def deliver(self, reply: Any) -> None:
        """Actor thread: an answer (AdminReply, StationAddressReply, CallReply) for a waiting request."""
        self.loop.call_soon_threadsafe(self._resolve, reply)

    # -- on the loop ------------------------------------------------------------------

    def application(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY, middlewares=[_json_errors],
                              handler_args={"max_line_size": MAX_LINE, "max_field_size": MAX_LINE})
        for route in ROUTES:
            app.router.add_route(route.method, route.path, self._handler(route))
        return app

    async def closing(self) -> None:
        for future in self.pending.values():
            future.cancel()
        if self.feed is not None:
            self.feed.close()

    def _resolve(self, reply: Any) -> None:
        future = self.pending.get(getattr(reply, "request_id", 0))
        if future is not None and not future.done():
            future.set_result(reply)

    async def ask(self, address: Any, message: Any, timeout: float) -> Any:
        """Send ``message`` (with a fresh request id) to ``address``; its answer, or None after ``timeout``."""
        request_id = next(self.ids)
        future: asyncio.Future[Any] = self.loop.create_future()
        self.pending[request_id] = future
        try:
            self.send(address, dataclasses.replace(message, request_id=request_id))
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return None
        finally:
            self.pending.pop(request_id, None)

    def _handler(self, route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            if route.scope is not None:
                refused = await self._authorize(request, route.scope)
                if refused is not None:
                    return refused
            try:
                return await self._serve_route(route, request)
            except _Refused as refusal:
                return _json(refusal.status, error_document(_CODE_NAME[refusal.status], refusal.description))

        return handle

    async def _authorize(self, request: web.Request, needed: str) -> web.Response | None:
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            return _unauthorized("an 'Authorization: Bearer KEY' header is needed (ctl api-key create)")
        try:
            row = await self.loop.run_in_executor(self.keys, self.find_key, key)
        except Exception:
            log.error("HTTP API: looking up a key failed", exc_info=True)
            return _json(503, error_document("Unreachable", "the key store does not answer"))
        if row is None:
            return _unauthorized("unknown API key")
        name, scope = str(row["name"]), str(row["scope"])
        now = time.monotonic()
        if row.get("last_used_at") is None or now - self.touched.get(name, -TOUCH_EVERY) >= TOUCH_EVERY:
            self.touched[name] = now
            self.loop.run_in_executor(self.keys, self._touch, name)
        if not scope_allows(scope, needed):
            return _json(403, error_document("Forbidden", f"the key {name} has scope {scope}; this needs {needed}"))
        request[KEY_NAME] = name  # who asked, for the audit log
        return None

    def _touch(self, name: str) -> None:
        try:
            self.touch_key(name)
        except Exception:
            log.warning("HTTP API: could not record the use of key %s", name, exc_info=True)

    async def _serve_route(self, route: Route, request: web.Request) -> web.StreamResponse:
        if route.kind == "health":
            return _json(200, {"status": "ok"})
        if route.kind == "ready":
            ready, text = await self.readiness()
            return web.Response(status=200 if ready else 503, text=text, content_type="application/json")
        if route.kind == "openapi":
            return web.Response(body=self.document, content_type="application/json")
        if route.kind == "console":
            return self._console_file(request)
        args = _arguments(route, request)
        if route.kind == "events":
            return await self._events(request, args)
        body = await _body(route, request)
        who = request.get(KEY_NAME, "")
        if route.kind == "call":
            return await self._call(args["id"], args["action"], body, who)
        return await self._admin(route, {**args, **body}, who)

    def _console_file(self, request: web.Request) -> web.Response:
        name = request.match_info.get("asset", console.INDEX)
        found = self.console.get(name)
        if found is None:
            raise _Refused(404, f"the console has no file {name!r}")
        headers = {**console.HEADERS, "ETag": found.etag}
        if request.headers.get("If-None-Match") == found.etag:
            return web.Response(status=304, headers=headers)
        return web.Response(body=found.body, content_type=found.media, charset="utf-8", headers=headers)

    async def _events(self, request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
        """The Server-Sent Events stream; ``Last-Event-ID`` (or ``?last_event_id=``) resumes it."""
        if self.open_store is None:
            raise _Refused(503, "the event stream is not available")
        last = args.get("last_event_id")
        header = request.headers.get("Last-Event-ID")
        if last is None and header is not None and header.strip():
            try:
                last = int(header.strip())
            except ValueError:
                raise _Refused(422, "Last-Event-ID must be an event id (an integer)") from None
        if last is not None and last < 0:
            raise _Refused(422, "last_event_id must be 0 or more")
        if self.feed is None:
            self.feed = events.Feed(self.open_store)

        async def still_allowed() -> bool:
            return await self._authorize(request, "read") is None

        return await events.stream(self.feed, request, last, still_allowed=still_allowed)

    async def _admin(self, route: Route, args: dict[str, Any], who: str = "") -> web.Response:
        reply = await self.ask(self.registry, AdminCommand(route.command, args, requested_by=who), ASK_TIMEOUT)
        if not isinstance(reply, AdminReply):
            raise _Refused(503, "the central system does not answer")
        if reply.error is not None:
            status = _EXIT_STATUS.get(reply.exit_code, 500)
            return _json(status, error_document(_CODE_NAME[status], reply.error))
        return _json(route.status, reply.result)

    async def _call(self, station: str, action: str, payload: Any, who: str = "") -> web.Response:
        try:
            call = prepare_call(station, action, payload)
        except CommandError as error:
            return _json(422, _unchecked(error.message, station, action, payload))
        except OcppCallError as error:
            return _json(422, _unchecked(invalid_payload(error), station, action, payload))
        lookup = await self.ask(self.registry, LookupStation(station, action=call.action, payload=call.payload,
                                                             requested_by=who), ASK_TIMEOUT)
        if not isinstance(lookup, StationAddressReply):
            return _json(503, error_document("Unreachable", "the central system does not answer", call))
        if not lookup.known:
            return _json(404, error_document("NotConnected", f"unknown charge point {station!r}", call))
        if lookup.address is None:
            return _json(409, error_document("NotConnected", f"charge point {station!r} is not connected", call))
        timeout = lookup.call_timeout + CALL_MARGIN
        reply = await self.ask(lookup.address, SendCall(call.action, call.payload, call.options, station,
                                                        requested_by=who), timeout)
        if not isinstance(reply, CallReply):
            return _json(504, error_document("Timeout", f"no answer from {station!r} within {timeout:.0f} s", call))
        return _json(_OUTCOME_STATUS.get(reply.outcome, 500), call_document(reply))


class _Refused(Exception):
    """Raised when a request is answered with an error before it is served."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status, self.description = status, description


def _unchecked(description: str, station: str, action: str, payload: Any) -> dict[str, Any]:
    """The answer to a request refused before it was checked (its payload may be any JSON value)."""
    return {"station": station, "action": action, "request": payload, **error_document("UsageError", description)}


def _arguments(route: Route, request: web.Request) -> dict[str, Any]:
    """The route's path and query parameters, as its admin command names them, typed by their schemas."""
    args: dict[str, Any] = {}
    for param in route.params:
        text = request.match_info.get(param.name) if param.where == "path" else request.query.get(param.name)
        if text is None:
            continue
        kind = param.schema.get("type")
        if kind == "integer":
            try:
                args[param.argument] = int(text)
            except ValueError:
                raise _Refused(422 if param.where == "query" else 404, f"{param.name} must be an integer") from None
        elif kind == "boolean":
            if text.lower() not in ("true", "false", "1", "0"):
                raise _Refused(422, f"{param.name} must be true or false")
            args[param.argument] = text.lower() in ("true", "1")
        else:
            args[param.argument] = text
    return args


async def _body(route: Route, request: web.Request) -> Any:
    """The JSON body: an object checked against the route's schema, or for a call any JSON value."""
    if route.body is None:
        return {}
    text = await request.text()
    if not text.strip():
        value: Any = {}
    else:
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise _Refused(400, f"the body is not JSON: {exc}") from None
    if route.kind == "call":
        return value  # prepare_call checks it against the OCPP schema
    if not isinstance(value, dict):
        raise _Refused(422, "the body must be a JSON object")
    properties = route.body.get("properties", {})
    unknown = sorted(set(value) - set(properties))
    if unknown and route.body.get("additionalProperties") is False:
        raise _Refused(422, f"unknown field(s): {', '.join(unknown)}; expected: {', '.join(properties)}")
    missing = [name for name in route.body.get("required", []) if name not in value]
    if missing:
        raise _Refused(422, f"missing field(s): {', '.join(missing)}")
    return value


def _json(status: int, document: Any) -> web.Response:
    return web.Response(status=status, text=json.dumps(document, default=str), content_type="application/json")


def _unauthorized(description: str) -> web.Response:
    response = _json(401, error_document("Unauthorized", description))
    response.headers["WWW-Authenticate"] = 'Bearer realm="csms"'
    return response


@web.middleware
async def _json_errors(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """aiohttp's own errors (no such path, method not allowed, body too large) as JSON; our bugs as 500."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = _json(exc.status, error_document(_CODE_NAME.get(exc.status, "Error"), exc.reason))
        if exc.status == 405 and "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception:
        log.error("HTTP API: %s %s failed", request.method, request.path, exc_info=True)
        return _json(500, error_document("InternalError", "the central system failed on this request"))
