"""Errors of the central system, and the one place they become CALLERROR codes.

Hierarchy::

    Exception
     +-- ocpp.exceptions.OCPPError
     |    +-- OcppCallError            Raised when an inbound frame or payload breaks OCPP-J;
     |         |                       carries the 1.6 error code (wire spelling)
     |         +-- (one instance per code: see CODES)
     +-- CommandError                  Raised when an operator command is invalid or cannot run;
     |                                 carries the control script's exit code
     +-- ValueError
          +-- CsrRefused               Raised when a charge point's certificate signing request
                                       cannot be signed; the message says why (SignCertificate
                                       is then answered Rejected, never a CALLERROR)

OCPP 1.6-J spells two codes differently from the 2.0.1 names the ``ocpp``
library raises: ``FormationViolation`` (library: ``FormatViolation``) and
``OccurenceConstraintViolation`` (library: ``OccurrenceConstraintViolation``).
``wire_code`` normalises them; it is the only place that does.
"""

from __future__ import annotations

from typing import Any

from ocpp.exceptions import OCPPError

# OCPP-J 1.6 §4.2.3, with the misspellings kept on purpose (JE 5.1/5.2).
CODES = frozenset(
    {
        "NotImplemented",
        "NotSupported",
        "InternalError",
        "ProtocolError",
        "SecurityError",
        "FormationViolation",
        "PropertyConstraintViolation",
        "OccurenceConstraintViolation",
        "TypeConstraintViolation",
        "GenericError",
    }
)

_LIBRARY_SPELLINGS = {
    "FormatViolation": "FormationViolation",
    "OccurrenceConstraintViolation": "OccurenceConstraintViolation",
}


def wire_code(code: str) -> str:
    """Return the OCPP 1.6-J spelling of an error code (unknown codes -> GenericError)."""
    code = _LIBRARY_SPELLINGS.get(code, code)
    return code if code in CODES else "GenericError"


class OcppCallError(OCPPError):
    """Raised when an inbound CALL (or frame) must be answered with a CALLERROR."""

    code = "GenericError"
    default_description = "Generic error"

    def __init__(self, code: str, description: str, details: dict[str, Any] | None = None):
        self.code = wire_code(code)
        self.description = description
        self.details = details or {}
        super().__init__(description, self.details)

    def __str__(self) -> str:
        return f"{self.code}: {self.description}"


class CommandError(Exception):
    """Raised when an operator command is invalid or cannot run; carries its ctl exit code."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class CsrRefused(ValueError):
    """Raised when a charge point's CSR cannot be signed (bad PEM or signature, wrong CN or O, weak key)."""
