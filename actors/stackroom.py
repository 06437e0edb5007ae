"""Give a forked actor process room on CPython's frame data stack (a workaround for 3.11's chunk thrashing).

CPython 3.11 keeps interpreter frames in 16 KiB "data stack" chunks. A frame
that does not fit in the current chunk makes it mmap a new one, and when the
first frame of a chunk returns the chunk is munmapped at once. Code that keeps
calling across that boundary pays an mmap and a munmap per crossing. A station
actor handles every OCPP frame deep inside Thespian's call stack, and
jsonschema's recursive validation crossed the boundary about fifty times per
MeterValues: measured with strace, 54 mmap/munmap pairs per message, most of
the station process's CPU time (1 ms per message instead of ~0.15 ms), and the
same validation took 339 us at one call depth against 44 us at all others.

A station actor is forked by Thespian inside the supervisor's ``createActor``
call, and its process runs its whole life above that point of the stack.
``fork_room(fn, *args)`` calls ``fn`` through a function whose frame is just
over 64 KiB, so CPython gives it a fresh 128 KiB chunk with ~60 KiB spare: a
process forked inside ``fn`` keeps that chunk, and its actor loop, message
handling and validation all fit in it. No mmap per message at all (strace:
2 in 5 s at 500 msg/s, against one pair per message when each message was
given its own 32 KiB chunk instead).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_LOCALS = 8300  # x 8 bytes > 64 KiB: CPython allocates a 128 KiB chunk for the frame

# The locals are never assigned (``if False``): they only size the frame, for free.
_source = (
    "def _roomy(fn, args):\n    if False:\n"
    + "".join(f"        _{i} = None\n" for i in range(_LOCALS))
    + "    return fn(*args)\n"
)
_namespace: dict[str, Any] = {}
exec(compile(_source, "<actors.stackroom>", "exec"), _namespace)  # noqa: S102 - generated above, no input
_roomy = _namespace["_roomy"]


def fork_room(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` at the bottom of a fresh 128 KiB data-stack chunk with ~60 KiB spare."""
    result: T = _roomy(fn, args)
    return result
