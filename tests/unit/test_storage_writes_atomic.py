"""Every Store method a ``Write`` effect may name is atomic by itself.

The station glue (``actors.host.station``) runs a step with a single write
without a savepoint around it. That is only safe if each such method is one
SQL statement (atomic in SQLite) or wraps its statements in ``self.write()``
(a savepoint inside the host's group commit).
"""

from __future__ import annotations

import inspect

import storage
from actors.ocpp.effects import WRITES


def test_every_write_is_one_statement_or_its_own_savepoint() -> None:
    loose = []
    for op in sorted(WRITES):
        source = inspect.getsource(getattr(storage.Store, op))
        if source.count("execute") > 1 and "self.write()" not in source:
            loose.append(op)
    assert len(WRITES) > 10 and not loose

