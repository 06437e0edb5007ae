"""A simulated charge point for end-to-end tests: real OCPP-J over a real WebSocket.

It plays the compliance tool's role. ``call()`` sends a CALL and returns the
CALLRESULT payload (or raises ``CallErrorReceived``); CALLs from the central
system are answered by ``handlers`` (action -> function(payload) -> reply
payload, or a ``CallErrorReply``) and recorded in ``received``. A reader
thread does the receiving; every wait has a deadline.
"""

from __future__ import annotations

import base64
import itertools
import json
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect


class CallErrorReceived(Exception):
    def __init__(self, code: str, description: str, details: dict):
        super().__init__(f"{code}: {description}")
        self.code, self.description, self.details = code, description, details


@dataclass
class CallErrorReply:
    """Return this from a handler to answer the central system with a CALLERROR."""

    code: str
    description: str = ""


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ChargePoint:
    def __init__(self, url: str, station_id: str, *, subprotocols: list[str] | None = None,
                 password: str | None = None, handlers: dict[str, Callable[[dict], Any]] | None = None,
                 connectors: int = 2, ssl: Any = None):
        self.url = f"{url}/{station_id}"
        self.station_id = station_id
        self.subprotocols = ["ocpp1.6"] if subprotocols is None else subprotocols
        self.password = password
        self.handlers: dict[str, Callable[[dict], Any]] = dict(handlers or {})
        self.connectors = connectors
        if ssl is None and self.url.startswith("wss://"):
            from tests.support.certs import session_client_context

            ssl = session_client_context()  # a node started --over-tls trusts the session's CA
        self.ssl = ssl  # an ssl.SSLContext for wss:// (security profiles 2 and 3)
        self.ws: ClientConnection | None = None
        self.received: queue.Queue[tuple[str, dict]] = queue.Queue()
        self.answers: dict[str, queue.Queue] = {}
        self.raw: queue.Queue[Any] = queue.Queue()
        self._ids = itertools.count(1)
        self._reader: threading.Thread | None = None
        self.closed = threading.Event()

    # -- connection -----------------------------------------------------------------

    def connect(self, timeout: float = 10.0) -> "ChargePoint":
        headers = {}
        if self.password is not None:
            token = base64.b64encode(f"{self.station_id}:{self.password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        extra = {"ssl": self.ssl} if self.ssl is not None else {}
        self.ws = connect(self.url, subprotocols=self.subprotocols or None, additional_headers=headers,
                          open_timeout=timeout, max_size=None, ping_interval=None, legacy=True, **extra)
        self.closed.clear()
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()
        return self

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()
        if self._reader is not None:
            self._reader.join(5)

    def __enter__(self) -> "ChargePoint":
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read_loop(self) -> None:
        assert self.ws is not None
        try:
            for text in self.ws:
                self.raw.put(text)
                try:
                    frame = json.loads(text)
                except ValueError:
                    continue
                if not isinstance(frame, list) or len(frame) < 3:
                    continue
                if frame[0] == 2:
                    self._answer_call(frame)
                else:
                    self.answers.setdefault(frame[1], queue.Queue()).put(frame)
        except ConnectionClosed:
            pass
        finally:
            self.closed.set()

    def _answer_call(self, frame: list) -> None:
        _, message_id, action, payload = frame
        self.received.put((action, payload))
        handler = self.handlers.get(action)
        if handler is None:
            reply: Any = CallErrorReply("NotImplemented", f"simulator has no handler for {action}")
        else:
            reply = handler(payload)
        if isinstance(reply, CallErrorReply):
            out = [4, message_id, reply.code, reply.description, {}]
        elif reply is None:  # stay silent (to provoke a timeout)
            return
        else:
            out = [3, message_id, reply]
        assert self.ws is not None
        self.ws.send(json.dumps(out))

    # -- sending --------------------------------------------------------------------

    def send_raw(self, text: str | bytes) -> None:
        assert self.ws is not None
        self.ws.send(text)

    def wait_answer(self, message_id: str, timeout: float = 10.0) -> list:
        return self.answers.setdefault(message_id, queue.Queue()).get(timeout=timeout)

    def call(self, action: str, payload: dict | None = None, timeout: float = 10.0) -> dict:
        message_id = f"m{next(self._ids)}"  # ids are at most 36 characters (OCPP-J §4.1.4)
        self.send_raw(json.dumps([2, message_id, action, payload or {}]))
        frame = self.wait_answer(message_id, timeout)
        if frame[0] == 4:
            raise CallErrorReceived(frame[2], frame[3], frame[4])
        return frame[2]

    def wait_call(self, action: str, timeout: float = 10.0) -> dict:
        """Wait for the central system's next CALL; assert it is ``action``; return its payload."""
        got_action, payload = self.received.get(timeout=timeout)
        assert got_action == action, f"expected {action}, got {got_action} {payload}"
        return payload

    # -- reusable states (OCTT §3.22) --------------------------------------------------

    def boot(self, vendor: str = "TestVendor", model: str = "TestModel") -> dict:
        reply = self.call("BootNotification", {"chargePointVendor": vendor, "chargePointModel": model})
        return reply

    def status(self, connector: int, status: str, error_code: str = "NoError", **extra: Any) -> dict:
        return self.call("StatusNotification", {"connectorId": connector, "status": status,
                                                "errorCode": error_code, "timestamp": now_iso(), **extra})

    def booted(self) -> dict:
        """Reusable state Booted: Boot Accepted, then Available for connector 0 and each connector."""
        reply = self.boot()
        assert reply["status"] == "Accepted", reply
        for connector in range(0, self.connectors + 1):
            self.status(connector, "Available")
        return reply

    def authorize(self, id_tag: str) -> dict:
        return self.call("Authorize", {"idTag": id_tag})["idTagInfo"]

    def start(self, connector: int, id_tag: str, meter_start: int = 0, timestamp: str | None = None, **extra: Any) -> dict:
        return self.call("StartTransaction", {"connectorId": connector, "idTag": id_tag, "meterStart": meter_start,
                                              "timestamp": timestamp or now_iso(), **extra})

    def stop(self, transaction_id: int, meter_stop: int, reason: str | None = None, timestamp: str | None = None, **extra: Any) -> dict:
        payload = {"transactionId": transaction_id, "meterStop": meter_stop, "timestamp": timestamp or now_iso(), **extra}
        if reason is not None:
            payload["reason"] = reason
        return self.call("StopTransaction", payload)


def served_without_boot(url: str, station_id: str) -> ChargePoint | None:
    """Connect once and send a Heartbeat first (no BootNotification); the ChargePoint if it was answered.

    None when the connection or the answer failed (worth retrying); a CALLERROR
    (SecurityError: it wants a BootNotification) is raised: no point in retrying.
    """
    cp = ChargePoint(url, station_id)
    try:
        cp.connect(timeout=3)
        reply = cp.call("Heartbeat", timeout=3)
    except CallErrorReceived:
        cp.close()
        raise
    except Exception:
        cp.close()
        return None
    assert "currentTime" in reply
    return cp
