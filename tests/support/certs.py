"""The test suite's certificates: ``gateway.sim.certs`` and one PKI for the whole session (``--over-tls``)."""

from __future__ import annotations

import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gateway.sim.certs import ORGANISATION, Issued, client_context, issue, make_ca

__all__ = ["ORGANISATION", "Issued", "client_context", "issue", "make_ca", "session_client_context", "session_pki"]


@dataclass
class SessionPki:
    ca: Issued
    server: Issued


_session: SessionPki | None = None


def session_pki() -> SessionPki:
    """One CA and server certificate for the whole test session (``pytest --over-tls``)."""
    global _session
    if _session is None:
        folder = Path(tempfile.mkdtemp(prefix="csms-test-pki-"))
        ca = make_ca(folder, "session-ca")
        _session = SessionPki(ca, issue(ca, folder, "session-server", "localhost", server=True))
    return _session


def session_client_context() -> ssl.SSLContext:
    """A charge point's context that trusts the session's CA."""
    return client_context(session_pki().ca)
