"""The energy register in a MeterValues element: pure, no I/O.

OCPP 1.6 §7.45 SampledValue: ``measurand`` defaults to
"Energy.Active.Import.Register", ``unit`` to "Wh", ``format`` to "Raw". The
register counts the energy imported since the meter was made, so what a
transaction used so far is its latest reading minus its meterStart; a
metric counts the growth between readings as they arrive
(``csms_energy_metered_wh_total``, see ``actors.ocpp.core.meter_values``).

Only whole-meter readings count: a value with a ``phase`` is one phase of
the same energy (adding it would count it twice), and ``SignedData`` is not
a number.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

REGISTER = "Energy.Active.Import.Register"
SCALE = {"Wh": 1.0, "kWh": 1000.0}


def register_wh(sampled_values: Iterable[dict[str, Any]]) -> float | None:
    """The highest Energy.Active.Import.Register reading among ``sampled_values``, in Wh; None if there is none."""
    found: float | None = None
    for sample in sampled_values:
        if sample.get("measurand", REGISTER) != REGISTER or "phase" in sample:
            continue
        if sample.get("format", "Raw") != "Raw":
            continue
        scale = SCALE.get(sample.get("unit", "Wh"))
        if scale is None:
            continue
        try:
            value = float(sample["value"]) * scale
        except (KeyError, TypeError, ValueError):
            continue
        if math.isfinite(value) and (found is None or value > found):
            found = value
    return found


def reading_wh(meter_values: Iterable[dict[str, Any]]) -> float | None:
    """The highest register reading over the meterValue elements of one MeterValues.req."""
    readings = [r for mv in meter_values if (r := register_wh(mv.get("sampledValue", []))) is not None]
    return max(readings) if readings else None
