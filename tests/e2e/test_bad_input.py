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
