"""actors.stackroom: the call goes through, also for a process forked inside it."""

from __future__ import annotations

import os

import pytest

from actors import stackroom


def test_fork_room_returns_the_result_of_the_function_with_its_arguments() -> None:
    assert stackroom.fork_room(lambda a, b: (a, b), 1, "two") == (1, "two")


def test_fork_room_lets_exceptions_through() -> None:
    def fail() -> None:
        raise KeyError("boom")

    with pytest.raises(KeyError):
        stackroom.fork_room(fail)


def depth(n: int) -> int:
    return 0 if n == 0 else 1 + depth(n - 1)


def test_a_process_forked_inside_fork_room_runs_deep_calls_and_exits_cleanly() -> None:
    def fork_and_recurse() -> int:
        pid = os.fork()
        if pid == 0:  # the child lives above the room, as a station actor does
            os._exit(0 if all(depth(600) == 600 for _ in range(50)) else 1)
        return os.waitpid(pid, 0)[1]

    assert stackroom.fork_room(fork_and_recurse) == 0
