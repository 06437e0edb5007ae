"""A fast yes/no check of OCPP 1.6 payloads, compiled from the JSON schemas.

jsonschema decides what is wrong with a payload and how to say it (the CALLERROR
code and text come from its ``ValidationError``). It is also slow: it builds a
child validator at every level it descends, about 40 us for a MeterValues.req,
the largest part of a station's work per message. Almost every payload is
valid, so ``ocppj.validate`` first asks the closure compiled here, and runs
jsonschema only when the answer is "not sure".

The contract is one-sided: ``compile_schema(s)(value)`` is True only if
``Draft4Validator(s, format_checker=...)`` finds no error in ``value``. A False
costs nothing but speed, so every keyword this module does not model exactly
compiles to "not sure":

| keyword                          | modelled as (Draft 4, as jsonschema 4 does it)            |
|----------------------------------|------------------------------------------------------------|
| type (one name)                  | integer: int, not bool (1.0 is not an integer in Draft 4); |
|                                  | number: int/float/Decimal, not bool; string, object,       |
|                                  | array (list), boolean                                      |
| properties, required             | only on dicts (applicability tested with isinstance, as    |
|                                  | jsonschema does; acceptance by exact type, stricter)       |
| additionalProperties: false/true | only on dicts; a schema as value: not sure                 |
| enum of strings                  | a str in the set                                           |
| maxLength, minItems              | len() on str / list                                        |
| items (one schema)               | every element of a list; additionalItems then ignored      |
| format                           | the same FormatChecker the validator uses                  |
| $ref "#/definitions/..."         | the definition (siblings ignored, as Draft 4 does)         |
| $schema, $id, title, definitions,| annotations: no check                                      |
| description, javaType            |                                                            |
| anything else (multipleOf, ...)  | not sure                                                   |

``tests/unit/test_schemacheck.py`` holds the contract against jsonschema with
Hypothesis over every 1.6 schema.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from jsonschema import FormatChecker

Check = Callable[[Any], bool]

_ANNOTATIONS = frozenset({"$schema", "$id", "id", "title", "definitions", "description", "javaType"})


def _never(value: Any) -> bool:
    return False


def _always(value: Any) -> bool:
    return True


def _is_integer(value: Any) -> bool:
    return type(value) is int


def _is_number(value: Any) -> bool:
    return type(value) in (int, float, Decimal)


_TYPES: dict[str, Check] = {
    "integer": _is_integer,
    "number": _is_number,
    "string": lambda v: type(v) is str,
    "object": lambda v: type(v) is dict,
    "array": lambda v: type(v) is list,
    "boolean": lambda v: type(v) is bool,
}


def compile_schema(schema: dict[str, Any], *, formats: FormatChecker) -> Check:
    """A function that is True only for values ``schema`` accepts (see the module docstring)."""
    return _Compiler(schema, formats).compile(schema)


class _Compiler:
    def __init__(self, root: dict[str, Any], formats: FormatChecker) -> None:
        self.root = root
        self.formats = formats

    def compile(self, schema: Any) -> Check:
        if not isinstance(schema, dict):
            return _never
        if "$ref" in schema:
            return self._ref(schema["$ref"])
        checks: list[Check] = []
        for keyword, argument in schema.items():
            if keyword in _ANNOTATIONS or keyword == "additionalItems" and isinstance(schema.get("items"), dict):
                continue
            compiled = self._keyword(keyword, argument, schema)
            if compiled is None:
                return _never
            checks.append(compiled)
        return _all(checks)

    def _keyword(self, keyword: str, argument: Any, schema: dict[str, Any]) -> Check | None:
        """The check for one keyword, or None when it is not modelled."""
        if keyword == "type":
            return _TYPES.get(argument) if isinstance(argument, str) else None
        if keyword == "properties":
            return self._properties(argument) if isinstance(argument, dict) else None
        if keyword == "required":
            return _required(argument) if isinstance(argument, list) else None
        if keyword == "additionalProperties":
            return self._additional(argument, schema.get("properties", {}))
        if keyword == "enum":
            return _enum(argument)
        if keyword == "maxLength":
            return _max_length(argument) if type(argument) is int else None
        if keyword == "minItems":
            return _min_items(argument) if type(argument) is int else None
        if keyword == "items":
            return _items(self.compile(argument)) if isinstance(argument, dict) else None
        if keyword == "format":
            return self._format(argument) if isinstance(argument, str) else None
        return None

    def _ref(self, ref: Any) -> Check:
        prefix = "#/definitions/"
        if not isinstance(ref, str) or not ref.startswith(prefix):
            return _never
        target = self.root.get("definitions", {}).get(ref[len(prefix):])
        return self.compile(target) if target is not None else _never

    def _properties(self, properties: dict[str, Any]) -> Check:
        compiled = [(name, self.compile(sub)) for name, sub in properties.items()]

        def check(value: Any) -> bool:
            if not isinstance(value, dict):
                return True
            for name, sub in compiled:
                if name in value and not sub(value[name]):
                    return False
            return True

        return check

    def _additional(self, argument: Any, properties: Any) -> Check | None:
        if argument is True:
            return _always
        if argument is not False or not isinstance(properties, dict):
            return None
        allowed = frozenset(properties)
        return lambda v: not isinstance(v, dict) or allowed.issuperset(v)

    def _format(self, name: str) -> Check:
        formats = self.formats
        return lambda v: formats.conforms(v, name)


def _all(checks: list[Check]) -> Check:
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]
    first, *rest = checks

    def check(value: Any) -> bool:
        if not first(value):
            return False
        for each in rest:
            if not each(value):
                return False
        return True

    return check


def _required(names: list[Any]) -> Check | None:
    if not all(isinstance(n, str) for n in names):
        return None
    wanted = tuple(names)
    return lambda v: not isinstance(v, dict) or all(n in v for n in wanted)


def _enum(values: Any) -> Check | None:
    if not isinstance(values, list) or not all(isinstance(x, str) for x in values):
        return None
    allowed = frozenset(values)
    return lambda v: type(v) is str and v in allowed


def _max_length(limit: int) -> Check:
    return lambda v: not isinstance(v, str) or len(v) <= limit


def _min_items(limit: int) -> Check:
    return lambda v: not isinstance(v, list) or len(v) >= limit


def _items(sub: Check) -> Check:
    return lambda v: not isinstance(v, list) or all(sub(x) for x in v)
