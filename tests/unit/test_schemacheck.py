"""The compiled payload check (actors/ocpp/schemacheck.py) against jsonschema, over every 1.6 schema.

Its contract is one-sided: True only for what jsonschema accepts. These tests
generate payloads from each schema, valid ones and mutated ones, and hold the
contract; they also check that valid payloads are recognised, so the fast path
is really the one taken.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft4Validator

from actors.ocpp import ocppj
from actors.ocpp.schemacheck import compile_schema
from tests.support.payloads import schema_payloads as _case

SCHEMAS = sorted(name[:-5] for name in os.listdir(ocppj._SCHEMA_DIR) if name.endswith(".json"))
# Keywords the checker does not model: payloads of these schemas always go to jsonschema.
UNMODELLED = {name for name in SCHEMAS if "multipleOf" in json.dumps(ocppj._validator(name).schema, default=str)}
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

@pytest.mark.parametrize("name", SCHEMAS)
@PROPERTY
@given(data=st.data())
def test_the_compiled_check_never_accepts_what_jsonschema_rejects(name: str, data: st.DataObject) -> None:
    validator = ocppj._validator(name)
    check = ocppj._quick_check(name)
    value = data.draw(_case(name, mutate=True))
    if check(value):
        assert validator.is_valid(value), f"{name}: accepted {value!r}: {next(validator.iter_errors(value)).message}"


@pytest.mark.parametrize("name", sorted(set(SCHEMAS) - UNMODELLED))
@PROPERTY
@given(data=st.data())
def test_the_compiled_check_accepts_every_valid_payload_of_a_modelled_schema(name: str, data: st.DataObject) -> None:
    value = data.draw(_case(name, mutate=False))
    if ocppj._validator(name).is_valid(value):
        assert ocppj._quick_check(name)(value)


def test_every_schema_but_those_with_multiple_of_is_modelled() -> None:
    assert UNMODELLED == {"SetChargingProfile", "RemoteStartTransaction", "GetCompositeScheduleResponse"}


@pytest.mark.parametrize(
    ("schema", "value"),
    [
        ({"type": "integer"}, 1.0),  # Draft 4: a float is never an integer
        ({"type": "integer"}, True),
        ({"type": "string", "maxLength": 2}, "abc"),
        ({"type": "object", "required": ["a"]}, {}),
        ({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False}, {"b": "x"}),
        ({"type": "string", "enum": ["A"]}, "a"),
        ({"type": "array", "minItems": 1, "items": {"type": "integer"}}, []),
        ({"type": "array", "items": {"type": "integer"}}, [1, "2"]),
        ({"type": "string", "format": "date-time"}, "yesterday"),
        ({"type": "number", "multipleOf": 0.1}, 0.1),  # not modelled: not sure
        ({"type": ["string", "null"]}, "x"),  # type lists are not modelled
        ({"$ref": "#/definitions/missing"}, 1),
    ],
)
def test_the_compiled_check_is_not_sure_of(schema: dict[str, Any], value: Any) -> None:
    assert not compile_schema(schema, formats=ocppj._FORMATS)(value)


@pytest.mark.parametrize(
    ("schema", "value"),
    [
        ({"type": "string", "maxLength": 3, "additionalProperties": False}, "abc"),
        ({"properties": {"a": {"type": "integer"}}, "required": ["a"]}, "not an object"),
        ({"definitions": {"T": {"type": "integer"}}, "type": "object", "properties": {"t": {"$ref": "#/definitions/T"}}}, {"t": 3}),
        ({"type": "array", "items": {"type": "integer"}, "additionalItems": False}, [1, 2, 3]),
    ],
)
def test_the_compiled_check_accepts_what_draft_4_accepts(schema: dict[str, Any], value: Any) -> None:
    assert Draft4Validator(schema).is_valid(value)
    assert compile_schema(schema, formats=ocppj._FORMATS)(value)


def test_validate_still_describes_the_problem_of_an_invalid_payload() -> None:
    with pytest.raises(ocppj.OcppCallError) as caught:
        ocppj.validate("MeterValues", {"connectorId": "1", "meterValue": []})
    assert caught.value.code in ("TypeConstraintViolation", "OccurenceConstraintViolation")
