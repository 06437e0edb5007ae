"""The WebSocket opening handshake decision, with no I/O.

Rules (OCPP-J 1.6 §3, errata JE 3.3, security white paper §2.3):

| request                                               | answer                                         |
|-------------------------------------------------------|------------------------------------------------|
| no identity in the path                               | 404                                            |
| identity with ``/``, control characters, more than 48 | 400 (``BadIdentity``): ``ctl`` could not       |
| characters, or percent-escapes that are not UTF-8     | manage it                                      |
| no ``ocpp1.6`` among the offered subprotocols          | 400, before any upgrade (J §3.2, TC_088)       |
| unknown identity, unknown-stations = reject           | 404 (the CP retries with back-off, JE 3.3)      |
| unknown identity, unknown-stations = accept           | registered after the upgrade                   |
| password set, Authorization missing / wrong / other user | 401 with WWW-Authenticate: Basic            |
| otherwise                                             | 101 with exactly `Sec-WebSocket-Protocol: ocpp1.6` |

The identity is the last path segment, percent-decoded (J §3.1.1); any prefix
before it is allowed (``/ocpp/CP1``).
"""

from __future__ import annotations

import base64
import binascii
import unicodedata
from collections.abc import Sequence
from urllib.parse import unquote, urlsplit

SUBPROTOCOL = "ocpp1.6"
# The identity is a chargeBoxIdentity: an identifierString of at most 48 characters
# (OCPP 1.6 BootNotification/Authorize use CiString20..50; the security whitepaper's
# 48 for the identity). Every identity admitted must be one ``ctl`` can name.
MAX_IDENTITY = 48


class BadIdentity(ValueError):
    """The path names an identity that is refused (HTTP 400); ``str()`` says why."""


def identity_problem(identity: str) -> str | None:
    """Why ``identity`` cannot be a charge point's identity, or None when it can."""
    if not identity:
        return "empty charge point identity"
    if len(identity) > MAX_IDENTITY:
        return f"charge point identity longer than {MAX_IDENTITY} characters"
    if "/" in identity:
        return "charge point identity contains '/'"
    if any(unicodedata.category(c) == "Cc" for c in identity):
        return "charge point identity contains control characters"
    return None


def identity_from_path(path: str) -> str | None:
    """The charge point identity of a request path; None when there is none.

    Raises ``BadIdentity`` for one that is refused (``identity_problem``).
    """
    segment = urlsplit(path).path.rstrip("/").rsplit("/", 1)[-1]
    if not segment:
        return None
    try:
        identity = unquote(segment, errors="strict")
    except UnicodeDecodeError:
        raise BadIdentity("charge point identity with percent-escapes that are not UTF-8") from None
    problem = identity_problem(identity)
    if problem is not None:
        raise BadIdentity(problem)
    return identity


def select_subprotocol(offered: Sequence[str]) -> str | None:
    """``ocpp1.6`` when offered; None (no header, then close) otherwise."""
    return SUBPROTOCOL if SUBPROTOCOL in offered else None


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """Decode an ``Authorization: Basic ...`` header into (user, password), or None."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic" or not token:
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None
