"""Error codes on the wire (actors/errors.py)."""

from __future__ import annotations

import pytest
from ocpp.exceptions import OCPPError

from actors.errors import CODES, CommandError, OcppCallError, wire_code


def test_wire_code_spells_the_library_format_violation_as_formation_violation() -> None:
    assert wire_code("FormatViolation") == "FormationViolation"


def test_wire_code_spells_occurrence_constraint_violation_the_1_6_way() -> None:
    assert wire_code("OccurrenceConstraintViolation") == "OccurenceConstraintViolation"


@pytest.mark.parametrize("code", sorted(CODES))
def test_wire_code_keeps_every_1_6_code(code: str) -> None:
    assert wire_code(code) == code


@pytest.mark.parametrize("code", ["", "Whatever", "formationviolation", "MessageTypeNotSupported"])
def test_wire_code_turns_an_unknown_code_into_generic_error(code: str) -> None:
    assert wire_code(code) == "GenericError"


def test_the_1_6_codes_are_the_ten_of_ocpp_j_with_their_misspellings() -> None:
    assert len(CODES) == 10
    assert {"FormationViolation", "OccurenceConstraintViolation"} <= CODES
    assert not {"FormatViolation", "OccurrenceConstraintViolation"} & CODES


def test_an_ocpp_call_error_is_an_ocpp_library_error() -> None:
    error = OcppCallError("PropertyConstraintViolation", "bad enum")
    assert isinstance(error, OCPPError)
    with pytest.raises(OCPPError):
        raise error


def test_an_ocpp_call_error_normalises_its_code_and_keeps_description_and_details() -> None:
    error = OcppCallError("FormatViolation", "broken", {"at": "x"})
    assert (error.code, error.description, error.details) == ("FormationViolation", "broken", {"at": "x"})
    assert str(error) == "FormationViolation: broken"


def test_an_ocpp_call_error_without_details_has_an_empty_dict() -> None:
    assert OcppCallError("GenericError", "x").details == {}


def test_a_command_error_carries_its_exit_code_defaulting_to_usage() -> None:
    assert CommandError("bad").exit_code == 2
    error = CommandError("gone", 6)
    assert (error.message, error.exit_code, str(error)) == ("gone", 6, "gone")
