"""End to end: payloads generated from the 1.6 schemas, over one real connection each way.

Charge point to central system:

Every charge-point-initiated action the central system handles gets payloads drawn
from its own request schema: mostly valid ones, and mutated ones (junk nodes,
keys dropped or added). Whatever arrives, the station actor must

- answer each CALL exactly once, with its message id;
- answer with a CALLRESULT whose payload validates against the action's 1.6
  response schema, or with a CALLERROR carrying an OCPP-J 1.6 error code that is
  not InternalError (an InternalError means a handler raised);
- stay the same process on the same connection (no crash, no restart), and keep
  serving a plain Heartbeat afterwards.

Central system to charge point: ``run.py ctl call`` sends each action the central
system can send, and the charge point answers with a response drawn from that
action's response schema (valid or mutated). ``ctl`` must exit 0 and print the
response when it is valid, and exit 5 with a 1.6 error code when it is not; the
bookkeeping that follows an answer must never fail (nothing in the log), and the
station process must survive.
"""

from __future__ import annotations

import itertools
import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.errors import CODES, OcppCallError
from actors.ocpp import core, ocppj
from tests.support.chargepoint import ChargePoint
from tests.support.payloads import schema_payloads
from tests.support.system import CentralSystem, station_actor_pid

pytestmark = pytest.mark.e2e

ACTIONS = sorted(core.HANDLERS)
FUZZ = settings(
    max_examples=500,
    deadline=None,
    # One booted charge point on one connection serves every example: that is the point.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_ids = itertools.count(1)


def calls() -> st.SearchStrategy[tuple[str, Any]]:
    """(action, payload) pairs: one handled action, a valid or a mutated payload of its schema."""
    return st.sampled_from(ACTIONS).flatmap(lambda action: st.tuples(st.just(action), st.one_of(
        schema_payloads(action, mutate=False),
        # Mutated objects reach validation and handlers; a payload that is no object at
        # all stops at the frame check, so only a few of those are kept.
        schema_payloads(action, mutate=True).filter(lambda payload: isinstance(payload, dict)),
        schema_payloads(action, mutate=True),
    )))


def as_json(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else str(value)


def strict_json(value: Any) -> bool:
    try:
        json.dumps(value, default=as_json, allow_nan=False)
    except ValueError:
        return False
    return True


def check_answer(action: str, message_id: str, frame: list) -> None:
    assert frame[1] == message_id
    if frame[0] == 3:
        assert len(frame) == 3
        ocppj._validator(f"{action}Response").validate(frame[2])
    else:
        assert frame[0] == 4 and len(frame) == 5, frame
        code, description, details = frame[2], frame[3], frame[4]
        assert code in CODES and code != "InternalError", frame
        assert isinstance(description, str) and isinstance(details, dict)


def test_every_generated_call_is_answered_once_within_the_schema_and_the_station_survives(
    csms: CentralSystem, cp: ChargePoint
) -> None:
    pid = station_actor_pid(csms, cp)
    sent: list[str] = []

    @FUZZ
    @given(call=calls())
    def one_call(call: tuple[str, Any]) -> None:
        action, payload = call
        message_id = f"fuzz-{next(_ids)}"
        frame = [2, message_id, action, payload]
        cp.send_raw(json.dumps(frame, default=as_json))
        sent.append(message_id)
        if strict_json(frame):
            check_answer(action, message_id, cp.wait_answer(message_id))
        else:
            # Infinity and NaN are not JSON (RFC 8259): the id cannot be trusted either.
            answer = cp.wait_answer(ocppj.UNKNOWN_ID)
            assert answer[:3] == [4, ocppj.UNKNOWN_ID, "FormationViolation"], answer

    one_call()
    assert len(sent) >= 200  # Hypothesis really ran the examples
    assert not cp.closed.is_set()
    assert "currentTime" in cp.call("Heartbeat")
    assert station_actor_pid(csms, cp) == pid
    # Exactly once: no message id got a second answer.
    assert all(cp.answers.get(message_id) is None or cp.answers[message_id].empty() for message_id in sent)
    assert ocppj.UNKNOWN_ID not in cp.answers or cp.answers[ocppj.UNKNOWN_ID].empty()


# A valid request for each action the central system sends (ids the bookkeeping may reuse are fixed on purpose).
REQUESTS: dict[str, dict[str, Any]] = {
    "CancelReservation": {"reservationId": 77},
    "ChangeAvailability": {"connectorId": 1, "type": "Inoperative"},
    "ChangeConfiguration": {"key": "HeartbeatInterval", "value": "60"},
    "ClearCache": {},
    "ClearChargingProfile": {},
    "DataTransfer": {"vendorId": "com.example", "data": "x"},
    "ExtendedTriggerMessage": {"requestedMessage": "StatusNotification"},
    "GetCompositeSchedule": {"connectorId": 1, "duration": 60},
    "GetConfiguration": {},
    "GetDiagnostics": {"location": "ftp://example.com/diagnostics"},
    "GetInstalledCertificateIds": {"certificateType": "CentralSystemRootCertificate"},
    "GetLocalListVersion": {},
    "RemoteStartTransaction": {"idTag": "FUZZ", "connectorId": 1},
    "RemoteStopTransaction": {"transactionId": 1},
    "ReserveNow": {"connectorId": 1, "expiryDate": "2030-01-01T00:00:00Z", "idTag": "FUZZ", "reservationId": 77},
    "Reset": {"type": "Soft"},
    "SendLocalList": {"listVersion": 5, "updateType": "Full",
                      "localAuthorizationList": [{"idTag": "FUZZ", "idTagInfo": {"status": "Accepted"}}]},
    "SetChargingProfile": {"connectorId": 1, "csChargingProfiles": {
        "chargingProfileId": 900, "stackLevel": 1, "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}]}}},
    "TriggerMessage": {"requestedMessage": "Heartbeat"},
    "UnlockConnector": {"connectorId": 1},
    "UpdateFirmware": {"location": "ftp://example.com/firmware.bin", "retrieveDate": "2030-01-01T00:00:00Z"},
}
ANSWERS = settings(max_examples=60, deadline=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def answers() -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    """(action, response): an action of REQUESTS and an object drawn from its response schema."""
    return st.sampled_from(sorted(REQUESTS)).flatmap(lambda action: st.tuples(st.just(action), st.one_of(
        schema_payloads(f"{action}Response", mutate=False),
        schema_payloads(f"{action}Response", mutate=True),
    ).filter(lambda payload: isinstance(payload, dict) and strict_json(payload)).map(plain_json)))


def plain_json(value: Any) -> Any:
    """``value`` as the charge point's JSON encoder can send it (Decimal becomes float)."""
    return json.loads(json.dumps(value, default=as_json))


def is_valid_response(action: str, payload: dict[str, Any]) -> bool:
    try:
        ocppj.validate(f"{action}Response", payload)
    except OcppCallError:
        return False
    return True


def same_json(a: Any, b: Any) -> bool:
    return bool(plain_json(a) == plain_json(b))


def test_every_generated_answer_to_a_csms_call_is_reported_and_the_station_survives(csms: CentralSystem, station_id: str) -> None:
    slot: dict[str, Any] = {}
    point = ChargePoint(csms.url, station_id, handlers={action: lambda _payload: slot["reply"] for action in REQUESTS})
    point.connect()
    try:
        point.booted()
        pid = station_actor_pid(csms, point)
        outcomes: list[int] = []

        @ANSWERS
        @given(answer=answers())
        def one_answer(answer: tuple[str, dict[str, Any]]) -> None:
            action, reply = answer
            slot["reply"] = reply
            result = csms.ctl("call", station_id, action, json.dumps(REQUESTS[action]))
            outcomes.append(result.code)
            if is_valid_response(action, reply):
                assert result.code == 0, (action, reply, result)
                assert same_json(result.json["response"], reply)
            else:
                assert result.code == 5, (action, reply, result)
                assert result.json["error"]["code"] in CODES - {"InternalError"}
                assert result.json["error"]["description"].startswith("invalid CALLRESULT")

        one_answer()
        assert 0 in outcomes and 5 in outcomes  # both kinds of answer were really tried
        assert "currentTime" in point.call("Heartbeat")
        assert station_actor_pid(csms, point) == pid
    finally:
        point.close()
    assert "Traceback" not in csms.log(), csms.log()[-3000:]
