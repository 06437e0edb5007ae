"""actors.stackroom: the call goes through, with its arguments, result and exceptions."""

from __future__ import annotations

import pytest

from actors import stackroom


def test_call_returns_the_result_of_the_function_with_its_arguments() -> None:
    assert stackroom.call(lambda a, b: (a, b), 1, "two") == (1, "two")


def test_call_lets_exceptions_through() -> None:
    def fail() -> None:
        raise KeyError("boom")

    with pytest.raises(KeyError):
        stackroom.call(fail)


def test_deep_recursion_below_the_call_still_works() -> None:
    def depth(n: int) -> int:
        return 0 if n == 0 else 1 + depth(n - 1)

    assert stackroom.call(depth, 500) == 500
