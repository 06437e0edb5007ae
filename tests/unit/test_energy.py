"""The energy register reading of a MeterValues element (actors.ocpp.energy), pure."""

from __future__ import annotations

from actors.ocpp.energy import reading_wh, register_wh


def test_a_sampled_value_without_measurand_is_the_energy_register_in_wh() -> None:
    assert register_wh([{"value": "1234.5"}]) == 1234.5


def test_a_reading_in_kwh_is_converted_to_wh() -> None:
    assert register_wh([{"value": "2.5", "measurand": "Energy.Active.Import.Register", "unit": "kWh"}]) == 2500.0


def test_phases_other_measurands_signed_data_and_garbage_are_not_readings() -> None:
    assert register_wh([
        {"value": "9000", "phase": "L1"},
        {"value": "9000", "measurand": "Power.Active.Import"},
        {"value": "9000", "format": "SignedData"},
        {"value": "nan"},
        {"value": "not a number"},
        {"value": "9000", "unit": "A"},
    ]) is None


def test_the_highest_reading_of_a_whole_message_counts() -> None:
    assert reading_wh([{"sampledValue": [{"value": "100"}]}, {"sampledValue": [{"value": "300"}]},
                       {"sampledValue": [{"value": "7", "phase": "L2"}]}]) == 300.0
    assert reading_wh([{"sampledValue": [{"value": "7", "measurand": "Voltage"}]}]) is None
