"""What the TLS and security-whitepaper tests share: a node's wss and plain URLs, one handshake's
HTTP status, and a metric of the node (``tests/e2e/test_tls.py``, ``test_security_whitepaper.py``)."""

from __future__ import annotations

import base64
import ssl
import urllib.request

from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.support.system import CentralSystem


def wss(system: CentralSystem) -> str:
    return f"wss://127.0.0.1:{system.port}"


def ws_plain(system: CentralSystem) -> str:
    """The node's --plain-port (the test sets ``system.plain_port`` when it starts the node)."""
    return f"ws://127.0.0.1:{system.plain_port}"  # type: ignore[attr-defined]


def handshake_status(url: str, context: ssl.SSLContext | None = None, password: str | None = None,
                     identity: str = "") -> int:
    """101 when the upgrade succeeds (the connection is closed at once), else the HTTP status of the refusal."""
    headers = {}
    if password is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{identity}:{password}".encode()).decode()
    extra = {"ssl": context} if context is not None else {}
    try:
        with connect(url, subprotocols=["ocpp1.6"], additional_headers=headers, open_timeout=10, **extra):  # type: ignore[list-item, arg-type]
            return 101
    except InvalidStatus as refused:
        return refused.response.status_code


def metric(system: CentralSystem, name: str, **labels: str) -> float:
    """One sample of the node's /metrics (0 when it is not exposed)."""
    body = urllib.request.urlopen(f"http://127.0.0.1:{system.metrics_port}/metrics", timeout=10).read().decode()
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in body.splitlines():
        if line.startswith(f"{name}{{{want}}} " if want else f"{name} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
