"""The Thespian version our adapters patch (``actors.adapters.loopback``, ``actors.adapters.peercred``).

Both replace private methods of Thespian's TCP transport, so each refuses to
install on any other version than the one pinned in ``setup.cfg``.
"""

from __future__ import annotations

from importlib.metadata import version as package_version

PINNED_THESPIAN = "4.0.1"


def check_pinned(adapter: str) -> None:
    """Raise RuntimeError unless the installed Thespian is the pinned one."""
    version = package_version("thespian")
    if version != PINNED_THESPIAN:  # pragma: no cover
        raise RuntimeError(f"{adapter} is written for Thespian {PINNED_THESPIAN}, found {version}")
