"""Persistence: SQLite through sqlite-utils. Only this package writes SQL.

Public names: ``Store`` (see ``storage.db``), ``probe`` (does the database answer?), the timestamp helpers ``iso``
and ``parse_time``, and the value sets ``REGISTRATIONS`` and ``TAG_STATUSES``.
Invalid arguments to Store methods raise ``ValueError``.
"""

from storage.db import Store, probe
from storage.stations import REGISTRATIONS
from storage.tags import ID_TAG_MAX, TAG_STATUSES
from storage.timefmt import iso, normalize, parse_time

__all__ = [
    "ID_TAG_MAX",
    "REGISTRATIONS",
    "TAG_STATUSES",
    "Store",
    "iso",
    "normalize",
    "parse_time",
    "probe",
]
