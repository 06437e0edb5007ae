"""OCPP-J transport and the control script's CALL contract, end to end.

A running ``run.py serve`` is driven over real sockets: the WebSocket opening
handshake (HTTP Basic auth, unknown identities, the identity in the URL),
registration state across reconnects, one outstanding CALL per connection, and
the exit codes of ``run.py ctl`` when a charge point answers, stays silent, or
goes away (spec/CONTROL.md, spec/OCTT-CSMS-1.6.md §11.1-11.2).
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus

from actors.ocpp import ocppj
from tests.support.chargepoint import CallErrorReceived, ChargePoint
from tests.support.system import REPO, RUN, CentralSystem, CtlResult, wait_for

pytestmark = pytest.mark.e2e

CALL_TIMEOUT = 2  # seconds, for the system that tests the call timeout


@pytest.fixture(scope="module")
def rejecting_csms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CentralSystem]:
    system = CentralSystem(tmp_path_factory.mktemp("reject"),
                           extra_args=["--unknown-stations", "reject"]).start()
    yield system
    system.stop()


@pytest.fixture(scope="module")
def impatient_csms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CentralSystem]:
    system = CentralSystem(tmp_path_factory.mktemp("timeout"),
                           extra_args=["--call-timeout", str(CALL_TIMEOUT)]).start()
    yield system
    system.stop()


def booted(url: str, station_id: str, **options: Any) -> ChargePoint:
    point = ChargePoint(url, station_id, **options).connect()
    assert point.boot()["status"] == "Accepted"
    return point


def ctl_in_background(csms: CentralSystem, *args: str) -> subprocess.Popen:
    """Start ``run.py ctl --json ...`` without waiting for it."""
    return subprocess.Popen(
        [sys.executable, RUN, "ctl", "--admin-port", str(csms.admin_port), "--json", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(csms.tmp),
    )


def finished(process: subprocess.Popen, timeout: float) -> CtlResult:
    stdout, stderr = process.communicate(timeout=timeout)
    return CtlResult(process.returncode, stdout, stderr)


def pending_call_id(cp: ChargePoint, action: str, timeout: float = 10.0) -> str:
    """The message id of the next CALL ``action`` among the frames the charge point received."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            text = cp.raw.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"no {action} CALL received within {timeout}s") from None
        frame = json.loads(text)
        if frame[0] == 2 and frame[2] == action:
            return frame[1]


_STATE_SCRIPT = """
import json, sys
from thespian.actors import ActorSystem
from actors.adapters import loopback
from actors.messages import GetStationState, LookupStation
loopback.install()
quiet = {"version": 1, "disable_existing_loggers": False,
         "handlers": {"null": {"class": "logging.NullHandler"}},
         "root": {"handlers": ["null"], "level": "CRITICAL"}}
system = ActorSystem("multiprocTCPBase", {"Admin Port": int(sys.argv[1])}, logDefs=quiet)
registry = system.createActor("actors.registry.RegistryActor", globalName="csms-registry")
found = system.ask(registry, LookupStation(sys.argv[2]), 10)
state = system.ask(found.address, GetStationState(sys.argv[2]), 10)
print(json.dumps({"outstanding": state.outstanding, "queued": state.queued}))
"""


def call_queue(csms: CentralSystem, station: str) -> dict:
    """The station actor's CALL queue as it reports it (GetStationState)."""
    done = subprocess.run([sys.executable, "-c", _STATE_SCRIPT, str(csms.admin_port), station],
                          capture_output=True, text=True, timeout=30, cwd=str(REPO))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# -- HTTP Basic authentication (security profile 1) ------------------------------------


def test_station_with_a_password_connects_with_the_right_password(csms: CentralSystem, station_id: str) -> None:
    csms.ctl_ok("station", "add", station_id, "--password", "s3cret-pass-1")
    point = booted(csms.url, station_id, password="s3cret-pass-1")
    try:
        assert "currentTime" in point.call("Heartbeat")
        assert csms.ctl_ok("station", "show", station_id)["station"]["connected"] is True
    finally:
        point.close()


@pytest.mark.parametrize("password", ["wrong-password", None], ids=["wrong", "missing"])
def test_station_with_a_password_is_refused_with_401_before_the_upgrade(csms: CentralSystem, station_id: str, password: str | None) -> None:
    csms.ctl_ok("station", "add", station_id, "--password", "s3cret-pass-1")
    with pytest.raises(InvalidStatus) as refused:
        ChargePoint(csms.url, station_id, password=password).connect()
    assert refused.value.response.status_code == 401
    assert refused.value.response.headers["WWW-Authenticate"].startswith("Basic")
    assert csms.ctl_ok("station", "show", station_id)["station"]["connected"] is False


# -- identities --------------------------------------------------------------------


def test_unknown_identity_is_refused_with_404_when_unknown_stations_are_rejected(rejecting_csms: CentralSystem, station_id: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        ChargePoint(rejecting_csms.url, station_id).connect()
    assert refused.value.response.status_code == 404
    assert rejecting_csms.ctl("station", "show", station_id).code == 3  # not registered


def test_station_added_with_ctl_connects_when_unknown_stations_are_rejected(rejecting_csms: CentralSystem, station_id: str) -> None:
    rejecting_csms.ctl_ok("station", "add", station_id)
    point = booted(rejecting_csms.url, station_id)
    try:
        assert rejecting_csms.ctl_ok("station", "show", station_id)["station"]["connected"] is True
    finally:
        point.close()


def test_identity_is_the_last_path_segment_percent_decoded(csms: CentralSystem) -> None:
    point = ChargePoint(f"{csms.url}/ocpp", "CP%20X").connect()
    try:
        assert point.boot()["status"] == "Accepted"
        shown = csms.ctl_ok("station", "show", "CP X")
        assert (shown["station"]["id"], shown["station"]["connected"]) == ("CP X", True)
        assert shown["station"]["last_boot_status"] == "Accepted"
        assert csms.ctl("station", "show", "CP%20X").code == 3
    finally:
        point.close()


# -- registration state ----------------------------------------------------------------


def test_station_not_yet_accepted_gets_security_error_before_boot_notification(csms: CentralSystem, station_id: str) -> None:
    with ChargePoint(csms.url, station_id) as point:
        with pytest.raises(CallErrorReceived) as refused:
            point.call("Heartbeat")
        assert refused.value.code == "SecurityError"
        assert point.boot()["status"] == "Accepted"
        assert "currentTime" in point.call("Heartbeat")


def test_station_accepted_before_is_served_after_reconnect_without_a_new_boot(csms: CentralSystem, station_id: str) -> None:
    point = booted(csms.url, station_id)
    point.close()
    wait_for(lambda: csms.ctl_ok("station", "show", station_id)["station"]["connected"] is False,
             10, message="the central system to see the disconnect")
    with ChargePoint(csms.url, station_id) as again:
        assert "currentTime" in again.call("Heartbeat")
        assert again.status(1, "Available") == {}


def test_boot_notification_is_answered_pending_for_a_station_registered_pending(csms: CentralSystem, station_id: str) -> None:
    csms.ctl_ok("station", "add", station_id, "--registration", "pending")
    with ChargePoint(csms.url, station_id) as point:
        boot = point.boot()
        assert boot["status"] == "Pending"
        assert isinstance(boot["interval"], int) and boot["interval"] >= 0
        with pytest.raises(CallErrorReceived) as refused:
            point.call("Heartbeat")
        assert refused.value.code == "SecurityError"
    assert csms.ctl_ok("station", "show", station_id)["station"]["last_boot_status"] == "Pending"

    csms.ctl_ok("station", "add", station_id, "--registration", "accepted")
    with ChargePoint(csms.url, station_id) as point:
        assert point.boot()["status"] == "Accepted"


def test_boot_notification_is_answered_rejected_for_a_station_registered_rejected(csms: CentralSystem, station_id: str) -> None:
    csms.ctl_ok("station", "add", station_id, "--registration", "rejected")
    with ChargePoint(csms.url, station_id) as point:
        boot = point.boot()
        assert boot["status"] == "Rejected"
        assert isinstance(boot["interval"], int) and boot["interval"] >= 0
    assert csms.ctl_ok("station", "show", station_id)["station"]["last_boot_status"] == "Rejected"


# -- connections ------------------------------------------------------------------------


def test_reconnect_of_the_same_identity_replaces_the_old_connection(csms: CentralSystem, station_id: str) -> None:
    old = booted(csms.url, station_id, handlers={"ClearCache": lambda p: {"status": "Accepted"}})
    new = ChargePoint(csms.url, station_id, handlers={"ClearCache": lambda p: {"status": "Accepted"}})
    try:
        new.connect()
        assert old.closed.wait(10), "the old connection was not closed"
        assert "currentTime" in new.call("Heartbeat")
        result = csms.ctl("clear-cache", station_id)
        assert result.code == 0 and result.json["response"] == {"status": "Accepted"}
        assert new.wait_call("ClearCache") == {}
        assert old.received.empty()
    finally:
        new.close()
        old.close()


# -- the control script's exit codes -------------------------------------------------------


def test_ctl_call_to_a_known_station_that_never_connected_exits_3(csms: CentralSystem, station_id: str) -> None:
    csms.ctl_ok("station", "add", station_id)
    result = csms.ctl("clear-cache", station_id)
    assert result.code == 3
    assert result.json["error"]["code"] == "NotConnected"
    assert (result.json["station"], result.json["action"]) == (station_id, "ClearCache")


def test_ctl_call_to_a_station_that_disconnected_exits_3(csms: CentralSystem, station_id: str) -> None:
    booted(csms.url, station_id).close()
    wait_for(lambda: csms.ctl_ok("station", "show", station_id)["station"]["connected"] is False,
             10, message="the central system to see the disconnect")
    result = csms.ctl("clear-cache", station_id)
    assert result.code == 3
    assert result.json["error"]["code"] == "NotConnected"


def test_ctl_call_to_an_unknown_station_exits_3(csms: CentralSystem, station_id: str) -> None:
    result = csms.ctl("clear-cache", station_id)
    assert result.code == 3
    assert result.json["error"]["code"] == "NotConnected"


def test_outstanding_call_ends_with_exit_3_promptly_when_the_connection_drops(csms: CentralSystem, station_id: str) -> None:
    point = booted(csms.url, station_id, handlers={"Reset": lambda p: None})  # stays silent
    process = ctl_in_background(csms, "reset", station_id, "--type", "Soft")
    try:
        assert point.wait_call("Reset") == {"type": "Soft"}
        dropped = time.monotonic()
        point.close()
        result = finished(process, timeout=20)
        assert time.monotonic() - dropped < 10  # the call timeout is 30 s
    finally:
        if process.poll() is None:
            process.kill()
    assert result.code == 3
    assert result.json["error"]["code"] == "NotConnected"
    assert result.json["request"] == {"type": "Soft"}


def test_call_without_an_answer_exits_4_after_the_call_timeout(impatient_csms: CentralSystem, station_id: str) -> None:
    point = booted(impatient_csms.url, station_id, handlers={
        "Reset": lambda p: None,  # stays silent
        "ClearCache": lambda p: {"status": "Accepted"},
    })
    try:
        sent = time.monotonic()
        result = impatient_csms.ctl("reset", station_id, "--type", "Hard")
        elapsed = time.monotonic() - sent
        assert result.code == 4
        assert result.json["error"]["code"] == "Timeout"
        assert CALL_TIMEOUT <= elapsed < CALL_TIMEOUT + 8
        assert point.wait_call("Reset") == {"type": "Hard"}
        # The timed-out CALL no longer blocks the connection.
        assert impatient_csms.ctl("clear-cache", station_id).code == 0
        assert point.wait_call("ClearCache") == {}
    finally:
        point.close()


def test_charge_point_calls_are_answered_while_a_csms_call_is_pending(csms: CentralSystem, station_id: str) -> None:
    point = booted(csms.url, station_id, handlers={"GetConfiguration": lambda p: None})
    process = ctl_in_background(csms, "get-config", station_id)
    try:
        message_id = pending_call_id(point, "GetConfiguration")
        assert "currentTime" in point.call("Heartbeat")  # crossing CALL
        assert point.status(1, "Available") == {}
        point.send_raw(json.dumps([3, message_id, {"configurationKey": []}]))
        result = finished(process, timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
        point.close()
    assert result.code == 0
    assert result.json["response"] == {"configurationKey": []}


def test_second_ctl_call_is_queued_until_the_first_is_answered(csms: CentralSystem, station_id: str) -> None:
    point = booted(csms.url, station_id, handlers={
        "Reset": lambda p: None,  # answered by hand below
        "ClearCache": lambda p: {"status": "Accepted"},
    })
    first = ctl_in_background(csms, "reset", station_id, "--type", "Soft")
    second = None
    try:
        reset_id = pending_call_id(point, "Reset")
        assert point.wait_call("Reset") == {"type": "Soft"}
        second = ctl_in_background(csms, "clear-cache", station_id)
        wait_for(lambda: call_queue(csms, station_id) == {"outstanding": "Reset", "queued": 1},
                 15, interval=0.2, message="the second CALL to be queued")
        assert point.received.empty(), "a second CALL was sent while the first was outstanding"
        assert second.poll() is None

        point.send_raw(json.dumps([3, reset_id, {"status": "Accepted"}]))
        assert point.wait_call("ClearCache") == {}
        first_result, second_result = finished(first, 20), finished(second, 20)
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
        point.close()
    assert (first_result.code, first_result.json["response"]) == (0, {"status": "Accepted"})
    assert (second_result.code, second_result.json["response"]) == (0, {"status": "Accepted"})


@pytest.mark.parametrize("answer", [
    ["JUNK"],  # CALLRESULT payload not an object
    [{"status": "Accepted"}, {}],  # one element too many
], ids=["payload-not-an-object", "too-many-elements"])
def test_a_malformed_callresult_ends_the_ctl_call_at_once_and_is_not_answered(
    csms: CentralSystem, station_id: str, answer: list[Any]
) -> None:
    point = booted(csms.url, station_id, handlers={"Reset": lambda p: None})  # answered by hand below
    process = ctl_in_background(csms, "reset", station_id, "--type", "Soft")
    try:
        reset_id = pending_call_id(point, "Reset")
        started = time.monotonic()
        point.send_raw(json.dumps([3, reset_id, *answer]))
        result = finished(process, timeout=20)
        waited = time.monotonic() - started
        assert "currentTime" in point.call("Heartbeat")  # answered after anything sent for the bad frame
    finally:
        if process.poll() is None:
            process.kill()
        point.close()
    assert result.code == 5, result
    assert result.json["error"]["code"] == "FormationViolation"
    assert result.json["error"]["description"].startswith("malformed answer from charge point")
    assert waited < 10, f"ctl waited {waited:.1f} s: as long as the call timeout"
    # A CALLERROR answers a CALL, never an answer (OCPP-J §4.2.3).
    assert reset_id not in point.answers and ocppj.UNKNOWN_ID not in point.answers


@pytest.mark.parametrize("action, payload", [
    ("Reset", '{"type": "Medium"}'),
    ("Reset", "{}"),
    ("ChangeConfiguration", '{"key": "HeartbeatInterval", "value": 60}'),
    ("Reset", "not json"),
    ("BootNotification", '{"chargePointVendor": "V", "chargePointModel": "M"}'),
], ids=["bad-enum", "missing-field", "wrong-type", "not-json", "not-a-csms-action"])
def test_ctl_call_with_an_invalid_payload_exits_2_and_sends_nothing(csms: CentralSystem, station_id: str, action: str, payload: str) -> None:
    point = booted(csms.url, station_id, handlers={
        "Reset": lambda p: {"status": "Accepted"},
        "ChangeConfiguration": lambda p: {"status": "Accepted"},
        "ClearCache": lambda p: {"status": "Accepted"},
    })
    try:
        result = csms.ctl("call", station_id, action, payload)
        assert result.code == 2, result.stdout
        # The next CALL the charge point sees is the valid one sent afterwards.
        assert csms.ctl("call", station_id, "ClearCache", "{}").code == 0
        assert point.wait_call("ClearCache") == {}
        assert point.received.empty()
    finally:
        point.close()


def test_ctl_call_answered_with_a_callerror_exits_5(csms: CentralSystem, station_id: str) -> None:
    point = booted(csms.url, station_id)  # no handlers: the simulator answers NotImplemented
    try:
        result = csms.ctl("call", station_id, "ClearCache", "{}")
        assert result.code == 5
        assert result.json["error"]["code"] == "NotImplemented"
        assert (result.json["station"], result.json["action"], result.json["request"]) == (station_id, "ClearCache", {})
    finally:
        point.close()
