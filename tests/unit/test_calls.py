"""The outgoing CALL queue (actors/ocpp/calls.py), driven through its rule table."""

from __future__ import annotations

from actors.ocpp.calls import CallQueue, OutgoingCall


def call(message_id: str, action: str = "Reset") -> OutgoingCall:
    return OutgoingCall(message_id, action, {"type": "Soft"})


def test_a_call_submitted_with_nothing_outstanding_is_sent_now() -> None:
    queue = CallQueue()
    first = call("a")
    assert queue.submit(first) is first
    assert queue.outstanding is first and list(queue.queued) == []


def test_a_call_submitted_while_one_is_outstanding_waits() -> None:
    queue = CallQueue()
    queue.submit(call("a"))
    assert queue.submit(call("b")) is None
    assert queue.outstanding is not None and queue.outstanding.message_id == "a"
    assert [c.message_id for c in queue.queued] == ["b"]


def test_at_most_one_call_is_outstanding_and_the_rest_are_sent_in_order() -> None:
    queue = CallQueue()
    sent = [queue.submit(call(m)) for m in "abcd"]
    assert [c.message_id if c else None for c in sent] == ["a", None, None, None]
    order = ["a"]
    current = "a"
    while True:
        ended, following = queue.finish(current)
        assert ended is not None and ended.message_id == current
        if following is None:
            break
        order.append(following.message_id)
        current = following.message_id
    assert order == ["a", "b", "c", "d"]
    assert queue.outstanding is None and list(queue.queued) == []


def test_answering_the_outstanding_call_ends_it_and_returns_the_next_to_send() -> None:
    queue = CallQueue()
    a, b = call("a"), call("b")
    queue.submit(a)
    queue.submit(b)
    assert queue.finish("a") == (a, b)
    assert queue.outstanding is b and list(queue.queued) == []


def test_answering_the_last_call_leaves_nothing_outstanding() -> None:
    queue = CallQueue()
    a = call("a")
    queue.submit(a)
    assert queue.finish("a") == (a, None)
    assert queue.outstanding is None
    following = call("b")
    assert queue.submit(following) is following


def test_an_answer_with_another_id_is_ignored() -> None:
    queue = CallQueue()
    a, b = call("a"), call("b")
    queue.submit(a)
    queue.submit(b)
    assert queue.finish("b") == (None, None)
    assert queue.finish("zzz") == (None, None)
    assert queue.outstanding is a and list(queue.queued) == [b]


def test_an_answer_with_nothing_outstanding_is_ignored() -> None:
    queue = CallQueue()
    assert queue.finish("a") == (None, None)
    assert queue.outstanding is None


def test_a_timeout_of_the_outstanding_call_ends_it_like_an_answer() -> None:
    queue = CallQueue()
    a, b = call("a"), call("b")
    queue.submit(a)
    queue.submit(b)
    ended, following = queue.finish(a.message_id)  # the caller's timeout path
    assert (ended, following) == (a, b)


def test_drain_returns_the_outstanding_call_first_then_the_queue_and_empties_it() -> None:
    queue = CallQueue()
    calls = [call(m) for m in "abc"]
    for c in calls:
        queue.submit(c)
    assert queue.drain() == calls
    assert queue.outstanding is None and list(queue.queued) == []
    assert queue.drain() == []


def test_after_drain_a_new_call_is_sent_at_once() -> None:
    queue = CallQueue()
    queue.submit(call("a"))
    queue.submit(call("b"))
    queue.drain()
    fresh = call("c")
    assert queue.submit(fresh) is fresh


def test_withdraw_forgets_an_unsent_call_outstanding_or_queued() -> None:
    queue = CallQueue()
    first, second, third = (call(f"m{n}") for n in range(3))
    queue.submit(first)
    queue.submit(second)
    queue.submit(third)
    assert queue.withdraw("m1") is None and [c.message_id for c in queue.queued] == ["m2"]
    assert queue.withdraw("m0") is third and queue.outstanding is third and not queue.queued
