"""OCPP-J framing and payload validation (actors/ocpp/ocppj.py): pure tests of its rule table."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.errors import CODES, OcppCallError
from actors.ocpp import ocppj
from actors.ocpp.ocppj import Call, CallError, CallResult, Ignored, MalformedAnswer

FUZZ = settings(max_examples=200, deadline=None)


def parse_error(text: str | bytes) -> OcppCallError:
    with pytest.raises(OcppCallError) as caught:
        ocppj.parse(text)
    return caught.value


def call_error(action: str, payload: dict[str, Any]) -> OcppCallError:
    with pytest.raises(OcppCallError) as caught:
        ocppj.check_inbound_call(Call("m-1", action, payload))
    assert caught.value.message_id == "m-1"  # type: ignore[attr-defined]
    return caught.value


def start_transaction(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "connectorId": 1,
        "idTag": "TAG-1",
        "meterStart": 0,
        "timestamp": "2026-11-25T10:00:00Z",
    }
    payload.update(overrides)
    return payload


def charging_profile(limit: Any) -> dict[str, Any]:
    return {
        "connectorId": 1,
        "csChargingProfiles": {
            "chargingProfileId": 1,
            "stackLevel": 0,
            "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": {
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}],
            },
        },
    }


def meter_values(unit: str, timestamp: str = "2026-11-25T10:00:00Z") -> dict[str, Any]:
    return {
        "connectorId": 1,
        "meterValue": [
            {
                "timestamp": timestamp,
                "sampledValue": [{"value": "21.5", "measurand": "Temperature", "unit": unit}],
            }
        ],
    }


# -- parse(): the frame rules ------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["", "not json", "[2, \"a\", \"Heartbeat\", {}", b"\xff\xfe[]", "{'a': 1}"],
)
def test_a_frame_that_is_not_json_is_a_formation_violation_with_id_minus_one(text: Any) -> None:
    error = parse_error(text)
    assert (error.code, error.message_id) == ("FormationViolation", "-1")  # type: ignore[attr-defined]


@pytest.mark.parametrize("text", ['{"a": 1}', '"text"', "42", "null", "true"])
def test_a_frame_that_is_not_an_array_is_a_formation_violation_with_id_minus_one(text: str) -> None:
    error = parse_error(text)
    assert (error.code, error.message_id) == ("FormationViolation", "-1")  # type: ignore[attr-defined]


@pytest.mark.parametrize("frame", [[], [2], [2, "m-1"]])
def test_an_array_shorter_than_three_elements_is_a_formation_violation_with_id_minus_one(
    frame: list[Any],
) -> None:
    error = parse_error(json.dumps(frame))
    assert (error.code, error.message_id) == ("FormationViolation", "-1")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "frame",
    [
        [2, "m-1", "Heartbeat"],
        [2, "m-1", "Heartbeat", {}, {}],
    ],
)
def test_a_call_with_the_wrong_element_count_echoes_the_message_id(
    frame: list[Any],
) -> None:
    error = parse_error(json.dumps(frame))
    assert (error.code, error.message_id) == ("FormationViolation", "m-1")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "frame",
    [
        [3, "m-1", {}, {}],
        [3, "m-1", []],
        [4, "m-1", "GenericError", "text"],
        [4, "m-1", "GenericError", "text", {}, {}],
        [4, "m-1", 1, "text", {}],
        [4, "m-1", "GenericError", None, {}],
    ],
)
def test_a_malformed_answer_is_returned_as_such_with_its_message_id_not_raised(frame: list[Any]) -> None:
    parsed = ocppj.parse(json.dumps(frame))
    assert isinstance(parsed, MalformedAnswer) and parsed.message_id == "m-1"
    assert parsed.description.startswith("CALLRESULT" if frame[0] == 3 else "CALLERROR")


@pytest.mark.parametrize("kind", ["2", 2.0, True, False, None, [2], {"t": 2}])
def test_a_message_type_id_that_is_not_an_integer_is_a_formation_violation(kind: Any) -> None:
    error = parse_error(json.dumps([kind, "m-1", "Heartbeat", {}]))
    assert (error.code, error.message_id) == ("FormationViolation", "m-1")  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", [0, 1, 5, 99, -2])
def test_an_unknown_message_type_id_is_ignored(kind: int) -> None:
    with pytest.raises(Ignored):
        ocppj.parse(json.dumps([kind, "m-1", "Heartbeat", {}]))


@pytest.mark.parametrize("message_id", [1, 1.5, None, True, ["m"], {"id": "m"}, ""])
def test_a_message_id_that_is_not_a_non_empty_string_is_a_formation_violation_with_id_minus_one(
    message_id: Any,
) -> None:
    error = parse_error(json.dumps([2, message_id, "Heartbeat", {}]))
    assert (error.code, error.message_id) == ("FormationViolation", "-1")  # type: ignore[attr-defined]


def test_a_message_id_of_37_characters_is_a_formation_violation_that_echoes_the_id() -> None:
    long_id = "x" * 37
    error = parse_error(json.dumps([2, long_id, "Heartbeat", {}]))
    assert (error.code, error.message_id) == ("FormationViolation", long_id)  # type: ignore[attr-defined]


def test_a_message_id_of_36_characters_is_accepted() -> None:
    frame = ocppj.parse(json.dumps([2, "x" * 36, "Heartbeat", {}]))
    assert frame == Call("x" * 36, "Heartbeat", {})


def test_a_call_whose_action_is_not_a_string_is_a_formation_violation() -> None:
    error = parse_error(json.dumps([2, "m-1", 7, {}]))
    assert (error.code, error.message_id) == ("FormationViolation", "m-1")  # type: ignore[attr-defined]


@pytest.mark.parametrize("payload", [[], "x", 1, None])
def test_a_call_whose_payload_is_not_an_object_is_a_formation_violation(payload: Any) -> None:
    error = parse_error(json.dumps([2, "m-1", "Heartbeat", payload]))
    assert (error.code, error.message_id) == ("FormationViolation", "m-1")  # type: ignore[attr-defined]


def test_a_call_parses_into_a_call() -> None:
    frame = ocppj.parse('[2, "m-1", "BootNotification", {"chargePointVendor": "V"}]')
    assert frame == Call("m-1", "BootNotification", {"chargePointVendor": "V"})


def test_a_call_given_as_utf8_bytes_parses_into_a_call() -> None:
    frame = ocppj.parse('[2, "m-ü", "Heartbeat", {}]'.encode())
    assert frame == Call("m-ü", "Heartbeat", {})


def test_a_callresult_parses_into_a_callresult() -> None:
    frame = ocppj.parse('[3, "m-1", {"currentTime": "2026-11-25T10:00:00Z"}]')
    assert frame == CallResult("m-1", {"currentTime": "2026-11-25T10:00:00Z"})


def test_a_callerror_parses_into_a_callerror() -> None:
    frame = ocppj.parse('[4, "m-1", "NotSupported", "nope", {"why": "x"}]')
    assert frame == CallError("m-1", "NotSupported", "nope", {"why": "x"})


def test_a_callerror_with_non_object_details_keeps_them_under_value() -> None:
    frame = ocppj.parse('[4, "m-1", "GenericError", "", "details"]')
    assert frame == CallError("m-1", "GenericError", "", {"value": "details"})


def test_a_deeply_nested_frame_is_a_formation_violation_not_a_crash() -> None:
    text = '[2, "m-1", "Heartbeat", ' + "[" * 5000 + "]" * 5000 + "]"
    error = parse_error(text)
    assert error.code == "FormationViolation"


# -- check_inbound_call(): the payload rules -------------------------------------------


def test_an_unknown_action_is_not_implemented() -> None:
    assert call_error("FooBar", {}).code == "NotImplemented"


@pytest.mark.parametrize("action", ["Reset", "RemoteStartTransaction", "GetConfiguration"])
def test_an_action_only_the_central_system_sends_is_not_supported(action: str) -> None:
    assert call_error(action, {}).code == "NotSupported"


def test_a_valid_start_transaction_passes() -> None:
    ocppj.check_inbound_call(Call("m-1", "StartTransaction", start_transaction()))


def test_data_transfer_is_accepted_from_a_charge_point() -> None:
    ocppj.check_inbound_call(Call("m-1", "DataTransfer", {"vendorId": "V", "data": "x"}))


def test_a_payload_field_of_the_wrong_type_is_a_type_constraint_violation() -> None:
    assert call_error("StartTransaction", start_transaction(connectorId="1")).code == (
        "TypeConstraintViolation"
    )


def test_an_id_tag_of_21_characters_is_a_type_constraint_violation() -> None:
    assert call_error("StartTransaction", start_transaction(idTag="T" * 21)).code == (
        "TypeConstraintViolation"
    )


def test_an_id_tag_of_20_characters_is_accepted() -> None:
    ocppj.check_inbound_call(Call("m-1", "StartTransaction", start_transaction(idTag="T" * 20)))


def test_a_missing_required_field_is_an_occurence_constraint_violation_in_wire_spelling() -> None:
    payload = start_transaction()
    del payload["idTag"]
    assert call_error("StartTransaction", payload).code == "OccurenceConstraintViolation"


def test_an_empty_meter_value_array_is_an_occurence_constraint_violation() -> None:
    error = call_error("MeterValues", {"connectorId": 1, "meterValue": []})
    assert error.code == "OccurenceConstraintViolation"


def test_a_value_outside_its_enum_is_a_property_constraint_violation() -> None:
    payload = {"connectorId": 1, "errorCode": "NoError", "status": "Sleeping"}
    assert call_error("StatusNotification", payload).code == "PropertyConstraintViolation"


def test_a_timestamp_that_is_not_a_date_time_is_a_property_constraint_violation() -> None:
    error = call_error("StartTransaction", start_transaction(timestamp="yesterday"))
    assert error.code == "PropertyConstraintViolation"
    assert "timestamp" in error.description


def test_an_unexpected_property_is_a_formation_violation() -> None:
    assert call_error("Heartbeat", {"extra": 1}).code == "FormationViolation"


@pytest.mark.parametrize("unit", ["Celsius", "Celcius"])
def test_meter_values_accept_both_spellings_of_celsius(unit: str) -> None:
    ocppj.check_inbound_call(Call("m-1", "MeterValues", meter_values(unit)))


def test_meter_values_refuse_an_unknown_unit() -> None:
    assert call_error("MeterValues", meter_values("Kelvin2")).code == "PropertyConstraintViolation"


@pytest.mark.parametrize(
    "timestamp",
    [
        "2026-11-25T10:00:00Z",
        "2026-11-25T10:00:00.123Z",
        "2026-11-25T10:00:00.123456789Z",
        "2026-11-25T11:00:00+01:00",
        "2026-11-25T05:30:00.5-04:30",
        "2026-11-25T10:00:00",
    ],
)
def test_timestamps_with_offsets_and_fractional_seconds_are_accepted(timestamp: str) -> None:
    ocppj.check_inbound_call(Call("m-1", "StartTransaction", start_transaction(timestamp=timestamp)))
    ocppj.check_inbound_call(Call("m-1", "MeterValues", meter_values("Celsius", timestamp)))


def test_set_charging_profile_accepts_a_limit_that_is_a_multiple_of_a_tenth() -> None:
    ocppj.validate("SetChargingProfile", charging_profile(21.4))


def test_set_charging_profile_refuses_a_limit_with_hundredths() -> None:
    with pytest.raises(OcppCallError) as caught:
        ocppj.validate("SetChargingProfile", charging_profile(21.45))
    assert caught.value.code == "PropertyConstraintViolation"


def test_validate_carries_the_given_message_id_and_defaults_to_minus_one() -> None:
    with pytest.raises(OcppCallError) as caught:
        ocppj.validate("Reset", {"type": "Warm"}, message_id="abc")
    assert caught.value.message_id == "abc"  # type: ignore[attr-defined]
    with pytest.raises(OcppCallError) as caught:
        ocppj.validate("Reset", {"type": "Warm"})
    assert caught.value.message_id == "-1"  # type: ignore[attr-defined]


@pytest.mark.parametrize("limit", [float("nan"), float("inf")])
def test_a_non_finite_limit_is_a_property_constraint_violation(limit: float) -> None:
    payload = {
        "status": "Accepted",
        "chargingSchedule": {
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}],
        },
    }
    with pytest.raises(OcppCallError) as caught:
        ocppj.validate("GetCompositeScheduleResponse", payload, message_id="m-9")
    assert caught.value.code == "PropertyConstraintViolation"
    assert caught.value.message_id == "m-9"  # type: ignore[attr-defined]


# -- outbound frames -----------------------------------------------------------------


def test_call_frame_is_the_exact_json_array() -> None:
    assert json.loads(ocppj.call_frame("m-1", "Reset", {"type": "Soft"})) == [
        2, "m-1", "Reset", {"type": "Soft"}
    ]


def test_result_frame_is_the_exact_json_array() -> None:
    assert ocppj.result_frame("m-1", {"status": "Accepted"}) == '[3,"m-1",{"status":"Accepted"}]'


def test_error_frame_has_empty_object_details_when_none_given() -> None:
    assert ocppj.error_frame("m-1", "NotImplemented", "unknown") == (
        '[4,"m-1","NotImplemented","unknown",{}]'
    )
    assert json.loads(ocppj.error_frame("m-1", "GenericError", "x", {}))[4] == {}


def test_error_frame_keeps_given_details() -> None:
    frame = json.loads(ocppj.error_frame("m-1", "GenericError", "x", {"k": "v"}))
    assert frame == [4, "m-1", "GenericError", "x", {"k": "v"}]


def test_frames_keep_non_ascii_text_unescaped() -> None:
    assert "é" in ocppj.result_frame("m-1", {"data": "é"})


# -- properties ------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
# What 64 bits hold: a frame with a bigger integer is refused (test_big_numbers_...).
int64_scalars = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5),
    max_leaves=20,
)


def assert_parses_or_raises_only_ocpp_errors(text: str | bytes) -> None:
    try:
        frame = ocppj.parse(text)
    except OcppCallError as error:
        assert error.code == "FormationViolation"
        assert isinstance(error.message_id, str)  # type: ignore[attr-defined]
    except Ignored:
        pass
    else:
        assert isinstance(frame, (Call, CallResult, CallError, MalformedAnswer))


@FUZZ
@given(st.text())
def test_parse_of_arbitrary_text_raises_nothing_but_ocpp_errors(text: str) -> None:
    assert_parses_or_raises_only_ocpp_errors(text)


@FUZZ
@given(st.binary())
def test_parse_of_arbitrary_bytes_raises_nothing_but_ocpp_errors(data: bytes) -> None:
    assert_parses_or_raises_only_ocpp_errors(data)


@FUZZ
@given(json_values)
def test_parse_of_arbitrary_json_raises_nothing_but_ocpp_errors(value: Any) -> None:
    assert_parses_or_raises_only_ocpp_errors(json.dumps(value))


frame_like = st.tuples(
    st.sampled_from([2, 3, 4, 5]) | json_scalars,
    st.text(max_size=40) | json_scalars,
    st.lists(json_values, max_size=4),
)


@FUZZ
@given(frame_like)
def test_parse_of_frame_shaped_arrays_raises_nothing_but_ocpp_errors(parts: Any) -> None:
    kind, message_id, rest = parts
    assert_parses_or_raises_only_ocpp_errors(json.dumps([kind, message_id, *rest]))


payload_values = st.recursive(
    json_scalars
    | st.floats() | st.sampled_from(["Accepted", "2026-11-25T10:00:00Z", "Celsius", "x" * 30]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=20), children, max_size=4),
    max_leaves=12,
)


def payload_for(action: str) -> st.SearchStrategy[dict[str, Any]]:
    """Arbitrary objects, biased towards the action's own property names."""
    schema = ocppj._validator(action).schema
    names = sorted(schema.get("properties", {}))
    keys = st.sampled_from(names) | st.text(max_size=20) if names else st.text(max_size=20)
    return st.dictionaries(keys, payload_values, max_size=6)


@FUZZ
@given(st.sampled_from(sorted(ocppj.CP_ACTIONS)).flatmap(lambda a: st.tuples(st.just(a), payload_for(a))))
def test_check_inbound_call_on_arbitrary_objects_raises_only_known_ocpp_error_codes(
    case: tuple[str, dict[str, Any]],
) -> None:
    action, payload = case
    try:
        ocppj.check_inbound_call(Call("m-1", action, payload))
    except OcppCallError as error:
        assert error.code in CODES
        assert error.code not in ("NotImplemented", "NotSupported")
        assert error.message_id == "m-1"  # type: ignore[attr-defined]


@FUZZ
@given(
    st.text(min_size=1, max_size=36),
    st.sampled_from(sorted(ocppj.CP_ACTIONS | ocppj.CSMS_ACTIONS)),
    st.dictionaries(st.text(max_size=10), int64_scalars, max_size=4),
)
def test_the_message_id_of_a_valid_frame_round_trips(
    message_id: str, action: str, payload: dict[str, Any]
) -> None:
    assert ocppj.parse(ocppj.call_frame(message_id, action, payload)) == Call(message_id, action, payload)
    assert ocppj.parse(ocppj.result_frame(message_id, payload)) == CallResult(message_id, payload)
    assert ocppj.parse(ocppj.error_frame(message_id, "GenericError", "x", payload)) == CallError(
        message_id, "GenericError", "x", payload
    )



# -- numbers beyond 64 bits (issue 9: InternalError with a traceback before) ------------------

big_integers = st.integers(min_value=2**63) | st.integers(max_value=-(2**63) - 1)


@FUZZ
@given(big_integers, st.lists(st.sampled_from(["a", "b", 0, 1]), max_size=3))
def test_an_integer_beyond_64_bits_anywhere_in_a_call_is_a_type_constraint_violation(
    big: int, path: list[Any]
) -> None:
    value: Any = big
    for step in reversed(path):
        value = {step: value} if isinstance(step, str) else [0] * step + [value]
    with pytest.raises(OcppCallError) as refused:
        ocppj.parse(json.dumps([2, "big-1", "DataTransfer", {"vendorId": "v", "x": value}]))
    assert refused.value.code == "TypeConstraintViolation"
    assert refused.value.message_id == "big-1"  # type: ignore[attr-defined]
    assert refused.value.description.startswith("payload/x")


@given(st.integers(-(2**63), 2**63 - 1))
def test_every_64_bit_integer_is_accepted(n: int) -> None:
    frame = ocppj.parse(json.dumps([2, "i-1", "DataTransfer", {"vendorId": "v", "n": n}]))
    assert frame == Call("i-1", "DataTransfer", {"vendorId": "v", "n": n})


def test_numbers_that_overflow_are_refused_and_digit_strings_are_not() -> None:
    with pytest.raises(OcppCallError, match="payload/meterStart"):
        ocppj.parse('[2,"f","StartTransaction",{"connectorId":1,"idTag":"T","meterStart":1e400,"timestamp":"2026-01-01T00:00:00Z"}]')
    answer = ocppj.parse('[3,"r",{"listVersion":18446744073709551616}]')
    assert isinstance(answer, CallResult) and answer.invalid is not None
    assert answer.invalid.code == "TypeConstraintViolation" and "payload/listVersion" in answer.invalid.description
    assert ocppj.parse('[2,"s","Authorize",{"idTag":"12345678901234567890"}]') == Call(
        "s", "Authorize", {"idTag": "12345678901234567890"})
    assert ocppj.parse('[3,"e",{"value":1.5e300}]') == CallResult("e", {"value": 1.5e300})


def test_a_date_time_beyond_year_9999_in_utc_is_a_property_constraint_violation() -> None:
    parsed = ocppj.parse_checked(json.dumps([2, "t-1", "StartTransaction", {
        "connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": "9999-12-31T23:59:59-01:00"}]))
    assert isinstance(parsed.invalid, OcppCallError)
    assert parsed.invalid.code == "PropertyConstraintViolation"
    assert "timestamp" in parsed.invalid.description
