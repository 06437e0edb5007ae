"""Steps the OCTT cases share: test data, the reusable state Charging, and how ctl reports.

Used by the end-to-end modules so that each walks its cases, not the plumbing.
"""

from __future__ import annotations

import itertools
import queue
import uuid
from typing import Any

from tests.support.chargepoint import ChargePoint
from tests.support.system import CentralSystem, CtlResult

_tag_numbers = itertools.count(1)


def new_tag(csms: CentralSystem, status: str = "Accepted", *, expiry: str | None = None,
            parent: str | None = None) -> str:
    """Provision a fresh idTag (unique, at most 20 characters: CiString20) with ``status``."""
    tag = f"T{next(_tag_numbers)}-{uuid.uuid4().hex[:10]}"
    assert len(tag) <= 20
    args = ["tag", "add", tag, "--status", status]
    args += ["--expiry", expiry] if expiry else []
    args += ["--parent", parent] if parent else []
    assert csms.ctl_ok(*args)["status"] == status
    return tag


def charging(cp: ChargePoint, tag: str, connector: int = 1, meter_start: int = 1000) -> int:
    """Reusable state Charging (after Authorized); returns the transactionId the CSMS generated."""
    assert cp.authorize(tag)["status"] == "Accepted"
    cp.status(connector, "Preparing")
    started = cp.start(connector, tag, meter_start)
    assert started["idTagInfo"]["status"] == "Accepted"
    assert isinstance(started["transactionId"], int) and started["transactionId"] > 0
    cp.status(connector, "Charging")
    return started["transactionId"]


def answered(result: CtlResult, station: str, action: str, request: dict[str, Any] | None = None,
             response: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The control script reports a CALLRESULT: exit 0 and the documented JSON shape.

    ``request`` / ``response``, when given, must be exactly what was reported.
    Returns (request, response) as reported."""
    assert result.code == 0, f"ctl exited {result.code}: {result.stdout} {result.stderr}"
    report = result.json
    assert set(report) == {"station", "action", "request", "response"}, report
    assert (report["station"], report["action"]) == (station, action)
    if request is not None:
        assert report["request"] == request
    if response is not None:
        assert report["response"] == response
    return report["request"], report["response"]


def nothing_received(cp: ChargePoint, wait: float = 0.3) -> bool:
    """True when no CALL reached the charge point within ``wait`` seconds (else AssertionError).

    A ctl command returns only after the charge point answered, and the simulator
    records a CALL before answering it, so anything sent is already queued."""
    try:
        action, payload = cp.received.get(timeout=wait)
    except queue.Empty:
        return True
    raise AssertionError(f"the charge point received {action} {payload}")
