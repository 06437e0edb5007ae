"""The WebSocket opening handshake decision, with no I/O.

Rules (OCPP-J 1.6 §3, errata JE 3.3, security white paper §2.3):

| request                                               | answer                                         |
|-------------------------------------------------------|------------------------------------------------|
| no identity in the path                               | 404                                            |
| unknown identity, unknown-stations = reject           | 404 (the CP retries with back-off, JE 3.3)      |
| unknown identity, unknown-stations = accept           | registered, then as a known one                |
| password set, Authorization missing / wrong / other user | 401 with WWW-Authenticate: Basic            |
| offers ocpp1.6                                        | 101 with exactly `Sec-WebSocket-Protocol: ocpp1.6` |
| offers no supported subprotocol                       | 101 without the header, then close (J §3.2)    |

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
MAX_IDENTITY = 255


def identity_from_path(path: str) -> str | None:
    """Return the charge point identity of a request path, or None when there is none."""
    segment = urlsplit(path).path.rstrip("/").rsplit("/", 1)[-1]
    try:
        identity = unquote(segment, errors="strict") if segment else ""
    except UnicodeDecodeError:  # percent-escapes that are not UTF-8
        return None
    if not identity or len(identity) > MAX_IDENTITY or any(unicodedata.category(c) == "Cc" for c in identity):
        return None
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
