"""Planning SendLocalList updates: pure, no I/O.

Input: the central system's tags (``storage`` tag rows), what we believe the
station holds (``Store.local_list_state``) and the update type asked for.
Output: ``LocalListUpdate`` values, each one SendLocalList.req (``payload``).

Rules, with the spec they implement:

  rule                                        spec
  ------------------------------------------  ------------------------------------------------
  Full = the whole new list, every entry      §6.41 localAuthorizationList: "In case of a full
  with idTagInfo; an empty Full clears it     update this contains the list of values that form
                                              the new local authorization list in the Charge
                                              Point"; idTagInfo is required in a Full update
                                              (§5.15, OCTT TC_043_4)
  Differential = only the changes: entry      §6.41: "In case of a differential update it
  with idTagInfo = add/update, entry          contains the changes to be applied to the local
  without idTagInfo = delete                  authorization list in the Charge Point"
  listVersion never 0 or -1; always above     errata 3.52; §5.10 (0 = empty list, -1 = not
  what we believe and what was reported       supported); OCTT TC_043_5 "versionNumber greater
                                              than the initial listVersion"
  at most SendLocalListMaxLength entries      §6.41: "Maximum number of AuthorizationData
  per request                                 elements is available in the configuration key:
                                              SendLocalListMaxLength"
  idTags unique within one request,           §5.15 (unique idTags); errata 3.73/3.74: IdToken
  compared case-insensitively                 is a case-insensitive CiString20
  after Failed / VersionMismatch retry Full   §5.15: the Central System "SHOULD" then send a
                                              Full update

Decisions:
- A Differential that is not safe becomes a Full (not an error), unless
  ``force=True``. Not safe = the station reported (GetLocalListVersion) a
  version other than the one we believe, or our last SendLocalList ended
  Failed / VersionMismatch / Error (no answer: it may or may not have been
  applied). The Full carries the list the Differential aimed at (what we
  believe the station holds with the changes applied), so nothing outside
  ``only`` is dropped; it is sent even when there are no changes (a resync).
  The caller sees the switch in ``update_type`` of the result.
- Splitting: a Full longer than ``max_length`` is sent as a Full with the
  first chunk followed by Differentials adding the rest; every chunk has its
  own, increasing, version. Entries are sorted by lowercased idTag.
- ``only`` restricts the update to those idTags. Full: the listed tags that
  exist (the new list holds only them); unknown ones are left out.
  Differential: exactly those tags, a known tag with idTagInfo (even if
  unchanged), an unknown one as a deletion.
- A Differential without changes plans nothing (empty list returned).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from actors.ocpp.authorization import id_tag_info

__all__ = [
    "UPDATE_TYPES",
    "LocalListUpdate",
    "differential_is_safe",
    "entries_after",
    "payload",
    "plan_updates",
]

UPDATE_TYPES = ("Full", "Differential")
_UNSAFE_STATUSES = ("Failed", "VersionMismatch", "Error")


@dataclass(frozen=True)
class LocalListUpdate:
    """One SendLocalList.req: ``entries`` are localAuthorizationList items,
    ``{"idTag", "idTagInfo"}`` or ``{"idTag"}`` (a deletion, Differential only)."""

    version: int
    update_type: str
    entries: list[dict[str, Any]]


def _key(id_tag: str) -> str:
    return id_tag.lower()


def differential_is_safe(state: dict[str, Any]) -> bool:
    """True when a Differential against ``state["entries"]`` gives the list we expect."""
    reported = state.get("reported_version")
    if reported is not None and reported != state.get("version", 0):
        return False
    return state.get("last_status") not in _UNSAFE_STATUSES


def plan_updates(
    tags: list[dict[str, Any]],
    state: dict[str, Any],
    *,
    update_type: str,
    now: datetime,
    only: Sequence[str] | None = None,
    max_length: int | None = None,
    force: bool = False,
) -> list[LocalListUpdate]:
    """The SendLocalList requests to send, in order (see the module docstring).

    ``tags``: tag rows (id_tag, status, expiry, parent); ``state``: as
    ``Store.local_list_state``. Raises ValueError for an unknown update_type,
    max_length < 1, or two tags whose idTags differ only in case.
    """
    if update_type not in UPDATE_TYPES:
        raise ValueError(f"update_type must be one of {UPDATE_TYPES}")
    if max_length is not None and max_length < 1:
        raise ValueError("max_length must be at least 1")
    known: dict[str, dict[str, Any]] = {}
    for tag in tags:
        key = _key(tag["id_tag"])
        if key in known:
            raise ValueError(f"two tags with the idTag {tag['id_tag']!r} (case-insensitive)")
        known[key] = tag
    wanted = None if only is None else {_key(t): t for t in reversed(only)}

    if update_type == "Full":
        keys = known.keys() if wanted is None else known.keys() & wanted.keys()
        entries = [_entry(known[k]["id_tag"], known[k], now) for k in sorted(keys)]
    else:
        held = state.get("entries", {})
        if wanted is None:
            entries = _changes(known, held, now)
        else:
            entries = [
                _entry(known[k]["id_tag"], known[k], now) if k in known else {"idTag": wanted[k]}
                for k in sorted(wanted)
            ]
        if not force and not differential_is_safe(state):
            # OCPP 1.6 §5.15: after Failed/VersionMismatch the Central System
            # "SHOULD" send a Full update: the list the Differential aimed at.
            target = entries_after(held, LocalListUpdate(0, "Differential", entries))
            entries = [{"idTag": t, "idTagInfo": target[t]} for t in sorted(target, key=_key)]
            update_type = "Full"
        elif not entries:
            return []
    return _split(entries, update_type, _next_version(state), max_length)


def _entry(id_tag: str, tag: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {"idTag": id_tag, "idTagInfo": id_tag_info(tag, now)}


def _changes(
    known: dict[str, dict[str, Any]], held: dict[str, Any], now: datetime
) -> list[dict[str, Any]]:
    """Differential entries turning ``held`` ({idTag: idTagInfo}) into ``known``."""
    held_by_key = {_key(t): (t, info) for t, info in held.items()}
    changes: dict[str, dict[str, Any]] = {}
    for key, tag in known.items():
        entry = _entry(tag["id_tag"], tag, now)
        if key not in held_by_key or held_by_key[key][1] != entry["idTagInfo"]:
            changes[key] = entry
    for key, (id_tag, _info) in held_by_key.items():
        if key not in known:
            changes[key] = {"idTag": id_tag}
    return [changes[k] for k in sorted(changes)]


def _next_version(state: dict[str, Any]) -> int:
    # Errata 3.52: listVersion SHALL NOT be 0 or -1; above both what we believe
    # and what the station reported.
    reported = state.get("reported_version")
    return max(state.get("version", 0), reported if reported is not None else 0, 0) + 1


def _split(
    entries: list[dict[str, Any]], update_type: str, first_version: int, max_length: int | None
) -> list[LocalListUpdate]:
    size = max_length or max(len(entries), 1)
    chunks = [entries[i:i + size] for i in range(0, len(entries), size)] or [[]]
    return [
        LocalListUpdate(
            version=first_version + n,
            update_type=update_type if n == 0 else "Differential",
            entries=chunk,
        )
        for n, chunk in enumerate(chunks)
    ]


def entries_after(state_entries: dict[str, Any], update: LocalListUpdate) -> dict[str, Any]:
    """What the station holds ({idTag: idTagInfo}) after it Accepted ``update``:
    a Full replaces the list, a Differential adds, updates (case-insensitively,
    taking the new spelling) and deletes."""
    if update.update_type == "Full":
        return {e["idTag"]: dict(e["idTagInfo"]) for e in update.entries}
    held = dict(state_entries)
    for entry in update.entries:
        key = _key(entry["idTag"])
        for id_tag in [t for t in held if _key(t) == key]:
            del held[id_tag]
        if "idTagInfo" in entry:
            held[entry["idTag"]] = dict(entry["idTagInfo"])
    return held


def payload(update: LocalListUpdate) -> dict[str, Any]:
    """The SendLocalList.req payload of ``update``."""
    return {
        "listVersion": update.version,
        "updateType": update.update_type,
        "localAuthorizationList": [
            {k: (dict(v) if isinstance(v, dict) else v) for k, v in e.items()}
            for e in update.entries
        ],
    }
