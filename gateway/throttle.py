"""Failed-login throttling for HTTP Basic at the handshake, with no I/O.

Without it a guesser had about 57 tries a second and the right password still
worked after 600 wrong ones; every try cost a PBKDF2 hash on the threads that
admit every other charge point too. Failures are counted per identity and per
source address. After ``FREE`` failures of an identity (or ``FREE_PER_ADDRESS``
of an address), every attempt of that key inside its lock-out is answered 429
with ``Retry-After`` before any password is hashed, even a right one (or
guessing would go on); each failure after the free ones doubles the lock-out,
from ``FIRST_LOCKOUT`` up to ``MAX_LOCKOUT``. An identity's count is forgotten
``FORGET_AFTER`` seconds after its last failure and cleared by a successful
login. An address's count leaks one failure every ``ADDRESS_LEAK`` seconds:
many charge points share one address behind a site's NAT, and one of them
with a wrong password (failing at most every few minutes once locked out)
must not lock out its neighbours, while an address spraying guesses at many
identities fills it at once.

| failures of the key                        | next attempt                             |
|--------------------------------------------|------------------------------------------|
| fewer than FREE (address: FREE_PER_ADDRESS) | checked as usual                        |
| FREE + n, inside the lock-out              | 429, Retry-After: the seconds left       |
| FREE + n, after the lock-out               | checked; a failure locks out for 2^n x FIRST_LOCKOUT |

Each host process keeps its own counts (the kernel spreads connections over
the hosts), so a guesser gets at most ``FREE`` tries per host and lock-out.
The number of keys is bounded (``MAX_KEYS``): the oldest are forgotten first.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass

FREE = 3
FREE_PER_ADDRESS = 20
ADDRESS_LEAK = 60.0
FIRST_LOCKOUT = 1.0
MAX_LOCKOUT = 300.0
FORGET_AFTER = 900.0
MAX_KEYS = 100_000


@dataclass
class _Record:
    failures: float = 0.0
    locked_until: float = 0.0
    last_failure: float = 0.0


class LoginThrottle:
    """Counts of failed logins; thread-safe (the admission threads share one)."""

    def __init__(self) -> None:
        self._records: OrderedDict[str, _Record] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, identity: str, address: str, now: float) -> int | None:
        """Seconds to wait if this attempt is locked out (answer 429), else None."""
        with self._lock:
            waits = [r.locked_until - now for r in (self._get(f"id:{identity}", now), self._get(f"ip:{address}", now))
                     if r is not None and r.locked_until > now]
        return max(1, math.ceil(max(waits))) if waits else None

    def failed(self, identity: str, address: str, now: float) -> int:
        """Record a failed login; return the failures now counted for the identity."""
        with self._lock:
            counts = []
            for key, free in ((f"id:{identity}", FREE), (f"ip:{address}", FREE_PER_ADDRESS)):
                record = self._get(key, now) or _Record()
                if key.startswith("ip:") and record.failures:
                    record.failures = max(0.0, record.failures - (now - record.last_failure) / ADDRESS_LEAK)
                record.failures += 1
                record.last_failure = now
                if record.failures >= free:
                    record.locked_until = now + min(MAX_LOCKOUT, FIRST_LOCKOUT * 2 ** min(30, int(record.failures - free)))
                self._records[key] = record
                self._records.move_to_end(key)
                counts.append(record.failures)
            while len(self._records) > MAX_KEYS:
                self._records.popitem(last=False)
            return int(counts[0])

    def succeeded(self, identity: str) -> None:
        with self._lock:
            self._records.pop(f"id:{identity}", None)

    def _get(self, key: str, now: float) -> _Record | None:
        record = self._records.get(key)
        if record is not None and now - record.last_failure > FORGET_AFTER and record.locked_until <= now:
            del self._records[key]
            return None
        return record
