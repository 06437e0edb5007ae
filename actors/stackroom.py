"""Run a call with room on CPython's frame data stack (a workaround for 3.11's chunk thrashing).

CPython 3.11 keeps interpreter frames in 16 KiB "data stack" chunks. A frame
that does not fit in the current chunk makes it mmap a new one, and when the
first frame of a chunk returns the chunk is munmapped at once. Code that keeps
calling across that boundary pays an mmap and a munmap per crossing. A station
actor handles every OCPP frame deep inside Thespian's call stack, and
jsonschema's recursive validation crossed the boundary about fifty times per
MeterValues: measured with strace, 54 mmap/munmap pairs per message, most of
the station process's CPU time (1 ms per message instead of ~0.15 ms), and the
same validation took 339 us at one call depth against 44 us at all others.

``call(fn, *args)`` goes through a function whose frame is larger than one
chunk, so CPython gives it a 32 KiB chunk whose spare room holds everything
below it: one mmap/munmap pair per call, wherever the caller stands. Call it
once per actor message, not per line of work.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_LOCALS = 2100  # x 8 bytes > 16 KiB: the frame cannot fit in a default chunk

# The locals are never assigned (``if False``): they only size the frame, for free.
_source = (
    "def _roomy(fn, args):\n    if False:\n"
    + "".join(f"        _{i} = None\n" for i in range(_LOCALS))
    + "    return fn(*args)\n"
)
_namespace: dict[str, Any] = {}
exec(compile(_source, "<actors.stackroom>", "exec"), _namespace)  # noqa: S102 - generated above, no input
_roomy = _namespace["_roomy"]


def call(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)``, started at the bottom of a fresh data-stack chunk with ~15 KiB spare."""
    result: T = _roomy(fn, args)
    return result
