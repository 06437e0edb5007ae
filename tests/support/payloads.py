"""Hypothesis strategies for OCPP 1.6 payloads, generated from the schemas themselves.

``schema_payloads(name, mutate=False)`` draws payloads shaped by the schema
(mostly valid: strings may still break a format jsonschema checks);
``mutate=True`` lets any node be junk and drops or adds keys, which gives mostly
invalid payloads. Used by the compiled-check contract and the end-to-end fuzz.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from actors.ocpp import ocppj

JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=False), st.just(1.0),
    st.text(max_size=3), st.lists(st.integers(0, 2), max_size=2), st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.just("2026-11-25T10:00:00Z"), st.just("not a time"), st.just(Decimal("0.5")),
)


def payloads(schema: dict[str, Any], root: dict[str, Any], *, mutate: bool) -> st.SearchStrategy[Any]:
    """Values shaped by ``schema``; with ``mutate``, any node may be junk, keys may be dropped or added."""
    if "$ref" in schema:
        return payloads(root["definitions"][schema["$ref"].rsplit("/", 1)[1]], root, mutate=mutate)
    shaped = _shaped(schema, root, mutate=mutate)
    return st.one_of(shaped, JUNK) if mutate else shaped


def _shaped(schema: dict[str, Any], root: dict[str, Any], *, mutate: bool) -> st.SearchStrategy[Any]:
    kind = schema.get("type")
    if "enum" in schema:
        values = st.sampled_from(schema["enum"])
        return st.one_of(values, st.sampled_from([v.lower() for v in schema["enum"]])) if mutate else values
    if kind == "object":
        props = schema.get("properties", {})
        required = [k for k in props if k in schema.get("required", [])]
        optional = {k: payloads(v, root, mutate=mutate) for k, v in props.items() if k not in required}
        base = st.fixed_dictionaries({k: payloads(props[k], root, mutate=mutate) for k in required}, optional=optional)
        if not mutate:
            return base
        return st.tuples(base, st.sets(st.sampled_from(required or ["-"])), st.dictionaries(st.sampled_from(["extra", "x"]), JUNK, max_size=1)).map(
            lambda t: {**{k: v for k, v in t[0].items() if k not in t[1]}, **t[2]}
        )
    if kind == "array":
        low = schema.get("minItems", 0)
        return st.lists(payloads(schema.get("items", {}), root, mutate=mutate), min_size=0 if mutate else low, max_size=3)
    if kind == "string":
        if schema.get("format") == "date-time":
            good = st.sampled_from(["2026-11-25T10:00:00Z", "2026-11-25T10:00:00.123+01:00", "2026-11-25T10:00:00Z"])
            return st.one_of(good, st.text(max_size=5)) if mutate else good
        limit = schema.get("maxLength", 30)
        fits = st.text(max_size=limit)
        around_limit = st.integers(limit, limit + 2).map(lambda n: "x" * n)
        return st.one_of(fits, around_limit) if mutate else fits
    if kind == "integer":
        return st.integers(-5, 10**12)
    if kind == "number":
        return st.one_of(st.integers(-5, 100), st.floats(-5, 100, allow_nan=False))
    if kind == "boolean":
        return st.booleans()
    return JUNK


def schema_payloads(name: str, *, mutate: bool) -> st.SearchStrategy[Any]:
    """Payloads for the 1.6 schema ``name`` (e.g. "MeterValues"); with ``mutate``, mostly invalid ones."""
    schema = ocppj._validator(name).schema
    return payloads(schema, schema, mutate=mutate)
