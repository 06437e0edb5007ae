"""Persistence: SQLite through sqlite-utils. Only this package writes SQL.

Public names: ``Store`` (see ``storage.db``), ``probe`` (does the database answer?), the timestamp helpers ``iso``
and ``parse_time``, the value sets ``REGISTRATIONS``, ``TAG_STATUSES`` and ``SCOPES`` (of
API keys, with ``scope_allows``).
Invalid arguments to Store methods raise ``ValueError``.
"""

from storage.api_keys import SCOPES, scope_allows
from storage.db import Store, probe
from storage.stations import REGISTRATIONS
from storage.tags import ID_TAG_MAX, TAG_STATUSES
from storage.timefmt import iso, normalize, parse_time

__all__ = [
    "ID_TAG_MAX",
    "REGISTRATIONS",
    "SCOPES",
    "TAG_STATUSES",
    "Store",
    "iso",
    "normalize",
    "parse_time",
    "probe",
    "scope_allows",
]
