"""End to end: a booted charge point sends garbage over its real WebSocket.

OCPP-J 1.6 §4 (OCTT-CSMS-1.6.md §11.1, rules 5-7): a malformed or invalid CALL
is answered with a CALLERROR carrying the 1.6 spellings (FormationViolation,
OccurenceConstraintViolation), the CALL's message id (``"-1"`` when it cannot
be read) and ``errorDetails`` ``{}``; an unknown MessageTypeId is ignored.
After every bad frame the station actor keeps serving the connection and
nothing stored before is lost: each test starts a transaction with a meter
value first and checks it with ``ctl tx show`` afterwards.
"""

from __future__ import annotations

import itertools
import json
import queue
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from websockets.exceptions import ConnectionClosed

from tests.support.chargepoint import ChargePoint, now_iso
from tests.support.system import CentralSystem, wait_for

pytestmark = pytest.mark.e2e

TAG = "BADINPUT-TAG"
METER_START = 1000
METER_SAMPLE = "1500"


_ids = itertools.count(1)


@pytest.fixture
def station_id() -> str:
    """A short identity, unique within the run, that says which module the station belongs to."""
    return f"BAD-{next(_ids)}"


@dataclass
class Charging:
    """A booted charge point with a transaction in progress and one meter value stored."""

    cp: ChargePoint
    transaction_id: int


@pytest.fixture(scope="module")
def tagged_csms(csms: CentralSystem) -> CentralSystem:
    csms.ctl_ok("tag", "add", TAG)
    return csms


def start_charging(system: CentralSystem, station_id: str) -> Charging:
    cp = ChargePoint(system.url, station_id).connect()
    cp.booted()
    started = cp.start(1, TAG, METER_START)
    assert started["idTagInfo"]["status"] == "Accepted"
    tx = started["transactionId"]
    cp.call(
        "MeterValues",
        {
            "connectorId": 1,
            "transactionId": tx,
            "meterValue": [
                {
                    "timestamp": now_iso(),
                    "sampledValue": [
                        {"value": METER_SAMPLE, "measurand": "Energy.Active.Import.Register"}
                    ],
                }
            ],
        },
    )
    return Charging(cp, tx)


@pytest.fixture
def charging(tagged_csms: CentralSystem, station_id: str) -> Iterator[Charging]:
    state = start_charging(tagged_csms, station_id)
    yield state
    state.cp.close()


def assert_still_serving(cp: ChargePoint) -> None:
    """The station actor answers a normal Heartbeat on the same connection."""
    assert not cp.closed.is_set(), "the central system closed the connection"
    assert "currentTime" in cp.call("Heartbeat")


def assert_transaction_intact(system: CentralSystem, transaction_id: int) -> None:
    shown = system.ctl_ok("tx", "show", str(transaction_id))
    assert shown["active"] is True
    assert shown["meter_start"] == METER_START
    assert [v["sampled_value"][0]["value"] for v in shown["meter_values"]] == [METER_SAMPLE]


def assert_callerror(answer: list, message_id: str, code: str) -> None:
    assert len(answer) == 5, answer
    assert answer[0] == 4 and answer[1] == message_id and answer[2] == code, answer
    assert isinstance(answer[3], str)
    assert answer[4] == {}, "errorDetails must be {} (OCPP-J §4.2.3)"


BAD_FRAMES = [
    # (test id, frame text, message id in the answer, error code)
    ("malformed-json", '[2,"mj-1","Heartbeat",{', "-1", "FormationViolation"),
    ("not-json-at-all", "hello, central system", "-1", "FormationViolation"),
    ("json-object-not-array", '{"messageTypeId":2,"id":"obj-1"}', "-1", "FormationViolation"),
    ("array-too-short", "[2]", "-1", "FormationViolation"),
    ("message-id-not-a-string", '[2,17,"Heartbeat",{}]', "-1", "FormationViolation"),
    ("call-without-payload", '[2,"np-1","Heartbeat"]', "np-1", "FormationViolation"),
    ("payload-not-an-object", '[2,"po-1","Heartbeat",[]]', "po-1", "FormationViolation"),
    ("unknown-action", '[2,"ua-1","MakeCoffee",{}]', "ua-1", "NotImplemented"),
    ("csms-only-action", '[2,"co-1","Reset",{"type":"Hard"}]', "co-1", "NotSupported"),
    (
        "wrong-type",
        '[2,"wt-1","StatusNotification",{"connectorId":"x","status":"Available","errorCode":"NoError"}]',
        "wt-1",
        "TypeConstraintViolation",
    ),
    (
        "wrong-type-meter-start",
        json.dumps(
            [
                2,
                "wt-2",
                "StartTransaction",
                {
                    "connectorId": 2,
                    "idTag": TAG,
                    "meterStart": "lots",
                    "timestamp": "2026-11-25T10:00:00Z",
                },
            ]
        ),
        "wt-2",
        "TypeConstraintViolation",
    ),
    ("missing-required-field", '[2,"mr-1","Authorize",{}]', "mr-1", "OccurenceConstraintViolation"),
    # Issue 9, bad values: each was InternalError with a traceback (retried for ever by the charge point).
    (
        "integer-of-2**63",
        json.dumps([2, "big-1", "StartTransaction", {
            "connectorId": 2, "idTag": TAG, "meterStart": 2**63, "timestamp": "2026-11-25T10:00:00Z"}]),
        "big-1",
        "TypeConstraintViolation",
    ),
    (
        "integer-below-minus-2**63",
        json.dumps([2, "big-2", "StatusNotification", {
            "connectorId": -(2**63) - 1, "status": "Available", "errorCode": "NoError"}]),
        "big-2",
        "TypeConstraintViolation",
    ),
    (
        "number-overflowing-to-infinity",
        '[2,"big-3","StartTransaction",{"connectorId":2,"idTag":"%s","meterStart":1e400,'
        '"timestamp":"2026-11-25T10:00:00Z"}]' % TAG,
        "big-3",
        "TypeConstraintViolation",
    ),
    (
        "timestamp-past-year-9999-in-utc",
        json.dumps([2, "ts-1", "StartTransaction", {
            "connectorId": 2, "idTag": TAG, "meterStart": 0, "timestamp": "9999-12-31T23:59:59-01:00"}]),
        "ts-1",
        "PropertyConstraintViolation",
    ),
    (
        "start-transaction-on-connector-0",
        json.dumps([2, "c0-1", "StartTransaction", {
            "connectorId": 0, "idTag": TAG, "meterStart": 0, "timestamp": "2026-11-25T10:00:00Z"}]),
        "c0-1",
        "PropertyConstraintViolation",
    ),
    (
        "start-transaction-on-a-negative-connector",
        json.dumps([2, "cn-1", "StartTransaction", {
            "connectorId": -3, "idTag": TAG, "meterStart": 0, "timestamp": "2026-11-25T10:00:00Z"}]),
        "cn-1",
        "PropertyConstraintViolation",
    ),
    (
        "bad-enum",
        '[2,"be-1","StatusNotification",{"connectorId":1,"status":"Sleeping","errorCode":"NoError"}]',
        "be-1",
        "PropertyConstraintViolation",
    ),
    ("extra-property", '[2,"ep-1","Heartbeat",{"mood":"grumpy"}]', "ep-1", "FormationViolation"),
    (
        "message-id-longer-than-36",
        json.dumps([2, "x" * 37, "Heartbeat", {}]),
        "x" * 37,
        "FormationViolation",
    ),
]


@pytest.mark.parametrize(
    "frame, message_id, code",
    [case[1:] for case in BAD_FRAMES],
    ids=[case[0] for case in BAD_FRAMES],
)
def test_a_bad_frame_is_answered_with_the_matching_callerror_and_the_station_keeps_serving(
    tagged_csms: CentralSystem, charging: Charging, frame: str, message_id: str, code: str
) -> None:
    charging.cp.send_raw(frame)
    assert_callerror(charging.cp.wait_answer(message_id), message_id, code)
    assert_still_serving(charging.cp)
    assert_transaction_intact(tagged_csms, charging.transaction_id)


def test_a_bad_value_is_logged_once_at_warning_without_a_traceback(
    tagged_csms: CentralSystem, charging: Charging, station_id: str
) -> None:
    charging.cp.send_raw(json.dumps([2, "once-1", "StartTransaction", {
        "connectorId": 2, "idTag": TAG, "meterStart": 2**64, "timestamp": "2026-11-25T10:00:00Z"}]))
    assert_callerror(charging.cp.wait_answer("once-1"), "once-1", "TypeConstraintViolation")
    assert_still_serving(charging.cp)
    mine = [line for line in tagged_csms.log().splitlines() if f"station {station_id}:" in line]
    about_it = [line for line in mine if "meterStart" in line]
    assert len(about_it) == 1 and " WARNING " in about_it[0], about_it
    assert "Traceback" not in tagged_csms.log()
    # and nothing was started: the transaction in progress is the only one on this station
    assert [tx["id"] for tx in tagged_csms.ctl_ok("tx", "list", "--station", station_id)] == [charging.transaction_id]


def test_the_largest_64_bit_meter_start_is_stored_as_sent(tagged_csms: CentralSystem, station_id: str) -> None:
    with ChargePoint(tagged_csms.url, station_id) as cp:
        cp.booted()
        started = cp.start(1, TAG, 2**63 - 1)
        assert started["idTagInfo"]["status"] == "Accepted"
        assert tagged_csms.ctl_ok("tx", "show", str(started["transactionId"]))["meter_start"] == 2**63 - 1


def test_meter_values_naming_another_stations_transaction_are_not_attached_to_it(
    tagged_csms: CentralSystem, charging: Charging, station_id: str
) -> None:
    with ChargePoint(tagged_csms.url, station_id + "-OTHER") as other:
        other.booted()
        reply = other.call("MeterValues", {"connectorId": 1, "transactionId": charging.transaction_id, "meterValue": [
            {"timestamp": now_iso(), "sampledValue": [{"value": "987654", "measurand": "Energy.Active.Import.Register"}]}]})
        assert reply == {}  # answered as OCPP asks
        assert "currentTime" in other.call("Heartbeat")
    assert_transaction_intact(tagged_csms, charging.transaction_id)  # only its own station's value
    import sqlite3

    with sqlite3.connect(f"file:{tagged_csms.db}?mode=ro", uri=True) as db:
        kept = db.execute("SELECT station_id, transaction_id, flag FROM meter_values WHERE sampled_value LIKE '%987654%'").fetchall()
    assert kept == [(station_id + "-OTHER", charging.transaction_id, "transaction of another charge point")]
    assert any("of another charge point" in line and " WARNING " in line for line in tagged_csms.log().splitlines())


def test_a_message_id_of_exactly_36_characters_is_accepted(charging: Charging) -> None:
    message_id = "y" * 36
    charging.cp.send_raw(json.dumps([2, message_id, "Heartbeat", {}]))
    answer = charging.cp.wait_answer(message_id)
    assert answer[0] == 3 and answer[1] == message_id and "currentTime" in answer[2]


def test_a_reused_message_id_on_the_same_connection_is_a_protocol_error(
    tagged_csms: CentralSystem, charging: Charging
) -> None:
    charging.cp.send_raw('[2,"same-id","Heartbeat",{}]')
    first = charging.cp.wait_answer("same-id")
    assert first[0] == 3
    charging.cp.send_raw('[2,"same-id","Heartbeat",{}]')
    assert_callerror(charging.cp.wait_answer("same-id"), "same-id", "ProtocolError")
    assert_still_serving(charging.cp)
    assert_transaction_intact(tagged_csms, charging.transaction_id)


def test_a_message_id_may_be_used_again_on_a_new_connection(
    tagged_csms: CentralSystem, station_id: str
) -> None:
    for _ in range(2):
        with ChargePoint(tagged_csms.url, station_id) as cp:
            cp.send_raw(
                '[2,"first-call","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]'
            )
            answer = cp.wait_answer("first-call")
            assert answer[0] == 3 and answer[2]["status"] == "Accepted"


def test_a_binary_frame_is_a_formation_violation(
    tagged_csms: CentralSystem, charging: Charging
) -> None:
    charging.cp.send_raw(b'[2,"bin-1","Heartbeat",{}]')
    assert_callerror(charging.cp.wait_answer("-1"), "-1", "FormationViolation")
    assert_still_serving(charging.cp)
    assert_transaction_intact(tagged_csms, charging.transaction_id)


def test_an_unknown_message_type_id_is_ignored_without_an_answer(
    tagged_csms: CentralSystem, charging: Charging
) -> None:
    frames_before = charging.cp.raw.qsize()
    charging.cp.send_raw('[7,"mt-7",{}]')
    # Frames are handled in order: once the next CALL is answered, an answer to
    # the unknown frame would have arrived before it.
    assert_still_serving(charging.cp)
    assert charging.cp.raw.qsize() == frames_before + 1, (
        "something besides the Heartbeat answer arrived"
    )
    with pytest.raises(queue.Empty):
        charging.cp.wait_answer("mt-7", timeout=0.2)
    assert_transaction_intact(tagged_csms, charging.transaction_id)


def test_a_callresult_for_no_outstanding_call_is_ignored(
    tagged_csms: CentralSystem, charging: Charging
) -> None:
    charging.cp.send_raw('[3,"never-sent",{"status":"Accepted"}]')
    charging.cp.send_raw('[4,"never-sent-either","GenericError","",{}]')
    assert_still_serving(charging.cp)
    assert_transaction_intact(tagged_csms, charging.transaction_id)


def test_a_flood_of_heartbeats_is_answered_in_full_and_the_station_keeps_serving(
    tagged_csms: CentralSystem, charging: Charging
) -> None:
    ids = [f"flood-{n}" for n in range(500)]
    for message_id in ids:
        charging.cp.send_raw(json.dumps([2, message_id, "Heartbeat", {}]))
    answers = [charging.cp.wait_answer(message_id) for message_id in ids]
    assert [(a[0], a[1]) for a in answers] == [(3, message_id) for message_id in ids]
    assert all("currentTime" in a[2] for a in answers)
    assert_still_serving(charging.cp)
    stopped = charging.cp.stop(charging.transaction_id, 2500)
    assert stopped == {}
    shown = tagged_csms.ctl_ok("tx", "show", str(charging.transaction_id))
    assert (shown["active"], shown["meter_stop"], shown["energy_wh"]) == (False, 2500, 1500)


# -- call rate ---------------------------------------------------------------------------

CALL_RATE = 50


def tagged_system_with(tmp_path_factory: pytest.TempPathFactory, name: str, *extra_args: str) -> Iterator[CentralSystem]:
    """A central system of the module's own, started with ``extra_args``, that knows TAG."""
    system = CentralSystem(tmp_path_factory.mktemp(name), extra_args=list(extra_args)).start()
    try:
        system.ctl_ok("tag", "add", TAG)
        yield system
    finally:
        system.stop()


@pytest.fixture(scope="module")
def rate_limited_csms(tmp_path_factory) -> Iterator[CentralSystem]:
    yield from tagged_system_with(tmp_path_factory, "csms-call-rate", "--max-call-rate", str(CALL_RATE))


def test_a_connection_sending_more_calls_per_second_than_the_limit_is_closed_with_1008(
    rate_limited_csms: CentralSystem, station_id: str
) -> None:
    state = start_charging(rate_limited_csms, station_id)
    try:
        try:
            for n in range(3 * CALL_RATE):
                state.cp.send_raw(json.dumps([2, f"burst-{n}", "Heartbeat", {}]))
        except ConnectionClosed:
            pass  # the central system may close it before the whole burst is out
        assert state.cp.closed.wait(10), "the central system kept the flooding connection open"
        assert state.cp.ws is not None
        assert state.cp.ws.close_code == 1008  # RFC 6455 §7.4.1: policy violation
        # Only the CALLs within the limit were answered (start_charging's own count toward it).
        assert "burst-0" in state.cp.answers and f"burst-{CALL_RATE}" not in state.cp.answers
    finally:
        state.cp.close()
    with ChargePoint(rate_limited_csms.url, station_id) as again:
        assert "currentTime" in again.call("Heartbeat")
    assert_transaction_intact(rate_limited_csms, state.transaction_id)


# -- frame size ------------------------------------------------------------------------

MAX_FRAME = 4096


@pytest.fixture(scope="module")
def small_frames_csms(tmp_path_factory) -> Iterator[CentralSystem]:
    yield from tagged_system_with(tmp_path_factory, "csms-small-frames", "--max-frame-size", str(MAX_FRAME))


def data_transfer(message_id: str, size: int) -> str:
    frame = json.dumps([2, message_id, "DataTransfer", {"vendorId": "com.example", "data": ""}])
    return json.dumps(
        [
            2,
            message_id,
            "DataTransfer",
            {"vendorId": "com.example", "data": "z" * (size - len(frame))},
        ]
    )


def test_a_frame_just_under_the_maximum_size_is_served(
    small_frames_csms: CentralSystem, station_id: str
) -> None:
    state = start_charging(small_frames_csms, station_id)
    try:
        frame = data_transfer("fits", MAX_FRAME - 10)
        assert len(frame.encode()) == MAX_FRAME - 10
        state.cp.send_raw(frame)
        answer = state.cp.wait_answer("fits")
        assert answer[0] == 3 and answer[2]["status"] == "UnknownVendorId"
    finally:
        state.cp.close()


def test_a_frame_larger_than_the_maximum_size_closes_the_connection_with_1009(
    small_frames_csms: CentralSystem, station_id: str
) -> None:
    state = start_charging(small_frames_csms, station_id)
    try:
        state.cp.send_raw(data_transfer("too-big", MAX_FRAME + 100))
        assert state.cp.closed.wait(10), "the central system kept the connection open"
        assert state.cp.ws is not None
        assert state.cp.ws.protocol.close_rcvd is not None, "no close frame from the central system"
        assert state.cp.ws.close_code == 1009  # RFC 6455 §7.4.1: message too big
    finally:
        state.cp.close()
    # The charge point reconnects and is served; its transaction is untouched.
    with ChargePoint(small_frames_csms.url, station_id) as again:
        assert "currentTime" in again.call("Heartbeat")
    assert_transaction_intact(small_frames_csms, state.transaction_id)
    wait_for(
        lambda: (
            small_frames_csms.ctl_ok("station", "show", station_id)["station"]["connected"] is False
        ),
        10,
        message="the station to be marked disconnected",
    )


# -- invalid UTF-8 in a text frame (RFC 6455 §8.1: fail the connection, 1007) ----------------


def _frame(opcode: int, payload: bytes) -> bytes:
    """One masked client frame (RFC 6455 §5.2), built by hand: no library sends invalid UTF-8."""
    import os
    import struct

    mask = os.urandom(4)
    head = bytes([0x80 | opcode])
    n = len(payload)
    head += bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def _raw_upgrade(system: CentralSystem, station_id: str):  # type: ignore[no-untyped-def]
    import base64
    import os
    import socket

    sock = socket.create_connection(("127.0.0.1", system.port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /{station_id} HTTP/1.1\r\nHost: 127.0.0.1:{system.port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                  "Sec-WebSocket-Protocol: ocpp1.6\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, "closed during the upgrade"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock, head.split(b"\r\n\r\n", 1)[1]


def _read_frames(sock, pending: bytes, until_close: float = 10.0) -> list[tuple[int, bytes]]:  # type: ignore[no-untyped-def]
    """Server frames (unmasked) until a close frame or EOF."""
    import struct
    import time

    frames, data, deadline = [], pending, time.monotonic() + until_close
    while time.monotonic() < deadline:
        while len(data) >= 2:
            opcode, n, start = data[0] & 0x0F, data[1] & 0x7F, 2
            if n == 126:
                if len(data) < 4:
                    break
                n, start = struct.unpack("!H", data[2:4])[0], 4
            if len(data) < start + n:
                break
            frames.append((opcode, data[start:start + n]))
            data = data[start + n:]
            if opcode == 0x8:
                return frames
        chunk = sock.recv(65536)
        if not chunk:
            return frames
        data += chunk
    raise AssertionError(f"no close frame within {until_close} s: {frames}")


def test_a_text_frame_of_invalid_utf8_closes_1007_after_the_valid_frames_before_it_are_handled(
    tagged_csms: CentralSystem, station_id: str
) -> None:
    with ChargePoint(tagged_csms.url, station_id) as cp:
        cp.booted()
    sock, pending = _raw_upgrade(tagged_csms, station_id)
    try:
        status = json.dumps([2, "u-1", "StatusNotification", {
            "connectorId": 1, "status": "Faulted", "errorCode": "GroundFailure"}]).encode()
        # Both frames in one write: the valid one first, then text that is not UTF-8.
        sock.sendall(_frame(0x1, status) + _frame(0x1, b'[2,"u-2","Heartbeat",{"x":"\xff\xfe"}]'))
        frames = _read_frames(sock, pending)
    finally:
        sock.close()
    close = frames[-1]
    assert close[0] == 0x8 and int.from_bytes(close[1][:2], "big") == 1007, frames
    # The frame before it was handled and stored (its answer cannot follow a close frame,
    # RFC 6455 §5.5.1); nothing else was answered.
    wait_for(lambda: any(c.get("status") == "Faulted" for c in tagged_csms.ctl_ok("station", "show", station_id)["connectors"]),
             message="the StatusNotification before the bad frame to be stored")
    assert all(opcode in (0x1, 0x8) for opcode, _ in frames)
    assert "Traceback" not in tagged_csms.log()
    with ChargePoint(tagged_csms.url, station_id) as cp:  # and the station is served again
        assert "currentTime" in cp.call("Heartbeat")


def test_implausible_but_valid_values_are_accepted_and_flagged_for_tx_show_and_the_metrics(
    tagged_csms: CentralSystem, station_id: str
) -> None:
    import urllib.request
    from datetime import datetime, timedelta, timezone

    ahead = (datetime.now(timezone.utc) + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with ChargePoint(tagged_csms.url, station_id) as cp:
        cp.booted()
        started = cp.start(1, TAG, -100, timestamp=ahead)
        assert started["idTagInfo"]["status"] == "Accepted"  # accepted, as OCPP asks
        tx = started["transactionId"]
        assert cp.call("StopTransaction", {"transactionId": tx, "meterStop": -500, "timestamp": now_iso()}) == {}
    shown = tagged_csms.ctl_ok("tx", "show", str(tx))
    assert shown["flags"] == ["start timestamp in the future", "negative meterStart", "stops before it starts",
                              "meterStop below meterStart"]
    human = tagged_csms.ctl("tx", "show", str(tx))
    assert "meterStop below meterStart" in human.stdout
    body = urllib.request.urlopen(f"http://127.0.0.1:{tagged_csms.metrics_port}/metrics", timeout=10).read().decode()
    assert 'csms_transactions_flagged_total{reason="meterStop below meterStart"}' in body
    assert any(f"transaction {tx} accepted and flagged" in line and " WARNING " in line
               for line in tagged_csms.log().splitlines())


def test_a_meter_values_over_the_per_message_bound_is_refused_and_stores_nothing(
    tagged_csms: CentralSystem, charging: Charging
) -> None:
    element = {"timestamp": now_iso(), "sampledValue": [{"value": "7"}]}
    charging.cp.send_raw(json.dumps([2, "mv-big", "MeterValues", {
        "connectorId": 1, "transactionId": charging.transaction_id, "meterValue": [element] * 201}]))
    answer = charging.cp.wait_answer("mv-big")
    assert answer[:3] == [4, "mv-big", "OccurenceConstraintViolation"] and "at most 200" in answer[3]
    assert_still_serving(charging.cp)
    assert_transaction_intact(tagged_csms, charging.transaction_id)  # the one value stored before, only


def test_meter_values_older_than_the_retention_are_pruned_and_newer_ones_kept(tmp_path_factory) -> None:
    import sqlite3

    workdir = tmp_path_factory.mktemp("retention")
    first = CentralSystem(workdir).start()
    try:
        first.ctl_ok("tag", "add", TAG)
        state = start_charging(first, "RETAIN-1")  # one meter value, stored now
        state.cp.close()
    finally:
        first.stop()
    with sqlite3.connect(first.db) as db:  # it was received ten days ago
        db.execute("UPDATE meter_values SET received_at = '2000-01-01T00:00:00.000Z'")
    again = CentralSystem(workdir, db=first.db, extra_args=["--meter-values-retention-days", "1"]).start()
    try:
        wait_for(lambda: again.ctl_ok("tx", "show", str(state.transaction_id))["meter_values"] == [], timeout=30,
                 message="the old meter value to be pruned")
        with ChargePoint(again.url, "RETAIN-1") as cp:
            cp.call("MeterValues", {"connectorId": 1, "transactionId": state.transaction_id, "meterValue": [
                {"timestamp": now_iso(), "sampledValue": [{"value": "1600"}]}]})
        shown = again.ctl_ok("tx", "show", str(state.transaction_id))
        assert [v["sampled_value"][0]["value"] for v in shown["meter_values"]] == ["1600"]
        assert any("pruned 1 meter values" in line for line in again.log().splitlines())
    finally:
        again.stop()
