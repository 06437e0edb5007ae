"""gateway.throttle: failed logins lock an identity and an address out, for longer each time."""

from __future__ import annotations

from gateway import throttle
from gateway.throttle import (
    ADDRESS_LEAK,
    FIRST_LOCKOUT,
    FORGET_AFTER,
    FREE,
    FREE_PER_ADDRESS,
    MAX_LOCKOUT,
    LoginThrottle,
)


def test_the_free_failures_are_checked_and_then_the_identity_is_locked_out_for_doubling_times():
    t = LoginThrottle()
    for _ in range(FREE - 1):
        assert t.retry_after("CP1", "10.0.0.1", 0.0) is None
        t.failed("CP1", "10.0.0.1", 0.0)
    assert t.retry_after("CP1", "10.0.0.1", 0.0) is None
    t.failed("CP1", "10.0.0.1", 0.0)  # the FREE-th failure
    assert t.retry_after("CP1", "10.0.0.1", 0.0) == FIRST_LOCKOUT
    # After the lock-out one more try is checked; failing it doubles the lock-out.
    now = FIRST_LOCKOUT + 0.01
    assert t.retry_after("CP1", "10.0.0.1", now) is None
    t.failed("CP1", "10.0.0.1", now)
    assert t.retry_after("CP1", "10.0.0.1", now) == 2 * FIRST_LOCKOUT
    for _ in range(40):
        now += MAX_LOCKOUT + 1
        t.failed("CP1", "10.0.0.1", now)
    assert t.retry_after("CP1", "10.0.0.1", now) == MAX_LOCKOUT


def test_an_address_guessing_at_many_identities_is_locked_out_for_all_of_them():
    t = LoginThrottle()
    for n in range(FREE_PER_ADDRESS):
        t.failed(f"CP{n}", "10.0.0.9", 0.0)
    assert t.retry_after("CP-never-tried", "10.0.0.9", 0.0) is not None
    assert t.retry_after("CP-never-tried", "10.0.0.10", 0.0) is None


def test_an_identity_locked_out_is_locked_out_from_every_address():
    t = LoginThrottle()
    for n in range(FREE):
        t.failed("CP1", f"10.0.1.{n}", 0.0)
    assert t.retry_after("CP1", "192.0.2.7", 0.0) is not None
    assert t.retry_after("CP2", "192.0.2.7", 0.0) is None


def test_a_success_clears_the_identity_and_old_failures_are_forgotten():
    t = LoginThrottle()
    t.failed("CP1", "10.0.0.1", 0.0)
    t.failed("CP1", "10.0.0.2", 0.0)
    t.succeeded("CP1")
    assert t.failed("CP1", "10.0.0.3", 1.0) == 1
    assert t.failed("CP1", "10.0.0.4", 1.0 + FORGET_AFTER + 1) == 1


def test_the_number_of_keys_is_bounded(monkeypatch):
    monkeypatch.setattr(throttle, "MAX_KEYS", 10)
    t = LoginThrottle()
    for n in range(50):
        t.failed(f"CP{n}", f"10.0.0.{n}", 0.0)
    assert len(t._records) == 10


def test_one_misconfigured_charger_behind_a_shared_address_does_not_lock_out_its_neighbours():
    t = LoginThrottle()
    now, failures = 0.0, 0
    for _ in range(500):  # a wrong password, tried again whenever its own lock-out ends
        wait = t.retry_after("BROKEN", "203.0.113.5", now)
        if wait is None:
            t.failed("BROKEN", "203.0.113.5", now)
            failures += 1
        assert t.retry_after("NEIGHBOUR", "203.0.113.5", now) is None, (now, failures)
        now += max(wait or 0, 1.0)
    assert failures > FREE_PER_ADDRESS  # more failures than the address allows at once
    assert now > 10 * ADDRESS_LEAK
