"""The one check of an operator's OCPP request, shared by ctl and the HTTP API (actors/operator_calls.py)."""

from __future__ import annotations

import pytest

from actors.errors import CommandError, OcppCallError
from actors.messages import CallReply
from actors.operator_calls import (
    CallRequest,
    call_document,
    error_document,
    invalid_payload,
    prepare_call,
)


def test_a_valid_request_is_returned_ready_to_send() -> None:
    assert prepare_call("CP1", "Reset", {"type": "Soft"}) == CallRequest("CP1", "Reset", {"type": "Soft"}, {})


def test_an_action_the_central_system_does_not_send_is_a_usage_error() -> None:
    with pytest.raises(CommandError) as caught:
        prepare_call("CP1", "BootNotification", {})
    assert caught.value.exit_code == 2 and "BootNotification" in caught.value.message


def test_a_payload_that_is_not_an_object_is_a_usage_error() -> None:
    with pytest.raises(CommandError):
        prepare_call("CP1", "Reset", ["Soft"])


def test_a_payload_against_the_schema_is_refused_and_worded_for_the_operator() -> None:
    with pytest.raises(OcppCallError) as caught:
        prepare_call("CP1", "Reset", {"type": "Sideways"})
    assert invalid_payload(caught.value).startswith("payload is not valid OCPP 1.6: ")


def test_a_reserve_now_without_id_is_checked_with_a_stand_in_only_when_allocation_is_asked() -> None:
    payload = {"connectorId": 1, "idTag": "T", "expiryDate": "2030-01-01T00:00:00.000Z"}
    built = prepare_call("CP1", "ReserveNow", payload, {"allocate_reservation_id": True})
    assert built.payload == payload and built.options == {"allocate_reservation_id": True}
    with pytest.raises(OcppCallError):
        prepare_call("CP1", "ReserveNow", payload)


def test_the_answer_has_the_shape_of_ctl_json_call() -> None:
    result = CallReply("CP1", "Reset", {"type": "Hard"}, "result", {"status": "Accepted"})
    assert call_document(result) == {"station": "CP1", "action": "Reset", "request": {"type": "Hard"},
                                     "response": {"status": "Accepted"}}
    error = {"code": "NotSupported", "description": "no", "details": {}}
    assert call_document(CallReply("CP1", "Reset", {"type": "Hard"}, "error", None, error))["error"] == error
    failed = error_document("NotConnected", "gone", CallRequest("CP1", "Reset", {"type": "Hard"}))
    assert failed == {"station": "CP1", "action": "Reset", "request": {"type": "Hard"},
                      "error": {"code": "NotConnected", "description": "gone", "details": {}}}
