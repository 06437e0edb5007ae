"""The security extension (white paper "Improved security for OCPP 1.6-J"): handlers and bookkeeping.

Charge-point messages (handlers, as in ``actors.ocpp.core``):

| message                          | answer                | kept                                               |
|----------------------------------|-----------------------|----------------------------------------------------|
| SecurityEventNotification        | {} (A04.FR.03)        | station event ``security``; counted by type         |
| LogStatusNotification            | {}                    | station event ``log`` with its requestId (N01.FR.07)|
| SignedFirmwareStatusNotification | {}                    | station event ``signed-firmware`` with its requestId|
| SignCertificate                  | Accepted if the CSR   | the certificate issued; then CertificateSigned.req |
|                                  | passes (``pki``) and a| (the chain) is queued to the station, after the    |
|                                  | CA is there; else     | answer; a refusal is logged at WARNING with why    |
|                                  | Rejected (A02.FR.04)  |                                                    |

Answers to the central system's security requests (``RESULT_HOOKS``, and
``failure`` for a CALLERROR, a timeout or a lost connection), whoever sent
them (a named ``ctl`` command or ``ctl call``): each is kept as a station
event ``security-call`` (request, response); besides,

| request                    | answered                  | also                                         |
|----------------------------|---------------------------|----------------------------------------------|
| CertificateSigned          | Accepted / Rejected       | the issued certificate's status              |
| GetInstalledCertificateIds | Accepted (hashes)/NotFound| the station's hashes of that type replaced   |
| DeleteCertificate          | Accepted                  | that hash removed                            |
| GetLog, SignedUpdateFirmware | (prepare) no requestId  | one allocated: the station's highest + 1     |
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from actors.errors import CsrRefused
from actors.ocpp import pki

if TYPE_CHECKING:
    from actors.ocpp.core import Context

log = logging.getLogger(__name__)

Payload = dict[str, Any]

# White paper, appendix 1 "Security events": the types csms_security_events_total{type}
# is labelled with; anything else a charge point sends is counted as "other".
SECURITY_EVENT_TYPES = frozenset({
    "FirmwareUpdated", "FailedToAuthenticateAtCentralSystem", "CentralSystemFailedToAuthenticate",
    "SettingSystemTime", "StartupOfTheDevice", "ResetOrReboot", "SecurityLogWasCleared",
    "ReconfigurationOfSecurityParameters", "MemoryExhaustion", "InvalidMessages", "AttemptedReplayAttacks",
    "TamperDetectionActivated", "InvalidFirmwareSignature", "InvalidFirmwareSigningCertificate",
    "InvalidCentralSystemCertificate", "InvalidChargePointCertificate", "InvalidTLSVersion",
    "InvalidTLSCipherSuite",
})

SECURITY_CALLS = frozenset({
    "CertificateSigned", "DeleteCertificate", "ExtendedTriggerMessage", "GetInstalledCertificateIds", "GetLog",
    "InstallCertificate", "SignedUpdateFirmware",
})
WITH_REQUEST_ID = frozenset({"GetLog", "SignedUpdateFirmware"})


def event_label(event_type: str) -> str:
    """The metric label of a security event type: the white paper's name, else "other"."""
    return event_type if event_type in SECURITY_EVENT_TYPES else "other"


# -- charge-point messages -----------------------------------------------------------


def security_event_notification(ctx: Context, req: Payload) -> Payload:
    # A04.FR.03: "The Central System SHALL confirm every SecurityEventNotification".
    ctx.write("record_station_event", ctx.station_id, "security", req["type"], ctx.now, detail=req)
    ctx.count("security_event", event_label(req["type"]))
    log.warning("station %s: security event %s", ctx.station_id, req["type"][:50])
    return {}


def log_status_notification(ctx: Context, req: Payload) -> Payload:
    ctx.write("record_station_event", ctx.station_id, "log", req["status"], ctx.now, detail=req)
    return {}


def signed_firmware_status_notification(ctx: Context, req: Payload) -> Payload:
    ctx.write("record_station_event", ctx.station_id, "signed-firmware", req["status"], ctx.now, detail=req)
    return {}


def sign_certificate(ctx: Context, req: Payload) -> Payload:
    # A02.FR.04: "Accepted if it can process the request, else Rejected".
    authority = ctx.authority()
    if authority is None:
        log.warning("station %s: SignCertificate rejected: no certificate authority configured (ctl ca init)",
                    ctx.station_id)
        return {"status": "Rejected"}
    try:
        csr = pki.check_csr(req["csr"], ctx.station_id, ctx.settings.cpo_name or None)
    except CsrRefused as refused:
        log.warning("station %s: SignCertificate rejected: %s", ctx.station_id, refused)
        return {"status": "Rejected"}
    certificate = pki.sign(csr, authority, ctx.now, x509.random_serial_number())
    chain = pki.chain_pem(certificate, authority)
    serial = pki.serial_hex(certificate.serial_number)
    ctx.write("record_issued_certificate", ctx.station_id, serial, certificate.subject.rfc4514_string(),
              certificate.not_valid_before_utc, certificate.not_valid_after_utc,
              certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"), ctx.now)
    # A02.FR.11/12: the signed certificate goes to the charge point in CertificateSigned.req,
    # queued after this answer like any CALL of the central system.
    ctx.call("CertificateSigned", {"certificateChain": chain})
    log.info("station %s: certificate %s issued (until %s)", ctx.station_id, serial,
             certificate.not_valid_after_utc.isoformat())
    return {"status": "Accepted"}


HANDLERS = {
    "SecurityEventNotification": security_event_notification,
    "LogStatusNotification": log_status_notification,
    "SignedFirmwareStatusNotification": signed_firmware_status_notification,
    "SignCertificate": sign_certificate,
}


# -- the central system's requests ----------------------------------------------------------


def prepare(ctx: Context, action: str, payload: Payload) -> Payload:
    """A GetLog or SignedUpdateFirmware without requestId gets the station's next one."""
    if action in WITH_REQUEST_ID and "requestId" not in payload:
        payload = {**payload, "requestId": ctx.view.next_request_id(ctx.station_id)}
    return payload


def _summary(pem: Any) -> str:
    """A certificate (chain) as kept in the event history: who and which, not the PEM."""
    try:
        chain = pki.certificates(str(pem))
    except ValueError:
        return f"(not a PEM certificate, {len(str(pem))} characters)"
    return "; ".join(f"{c.subject.rfc4514_string()} serial {pki.serial_hex(c.serial_number)}" for c in chain)


def compact(request: Payload) -> Payload:
    """The request as kept: certificates summarised (a chain is kilobytes, station show lists 20 events)."""
    kept = dict(request)
    for key in ("certificate", "certificateChain"):
        if key in kept:
            kept[key] = _summary(kept[key])
    if isinstance(kept.get("firmware"), dict) and "signingCertificate" in kept["firmware"]:
        kept["firmware"] = {**kept["firmware"], "signingCertificate": _summary(kept["firmware"]["signingCertificate"])}
    return kept


def _kept(ctx: Context, action: str, request: Payload, status: str, response: Payload | None) -> None:
    detail: Payload = {"action": action, "request": compact(request)}
    if response is not None:
        detail["response"] = response
    ctx.write("record_station_event", ctx.station_id, "security-call", status, ctx.now, detail=detail)


def _issued_serial(request: Payload) -> str | None:
    try:
        return pki.serial_hex(pki.first_certificate(request["certificateChain"]).serial_number)
    except (ValueError, KeyError):
        return None


def answered(ctx: Context, action: str, request: Payload, response: Payload) -> None:
    status = str(response.get("status", "Accepted"))
    _kept(ctx, action, request, status, response)
    if action == "CertificateSigned":
        serial = _issued_serial(request)
        if serial is not None and status in ("Accepted", "Rejected"):
            ctx.write("set_issued_certificate_status", ctx.station_id, serial, status, ctx.now)
    elif action == "GetInstalledCertificateIds":
        hashes = response.get("certificateHashData", []) if status == "Accepted" else []
        ctx.write("replace_installed_certificates", ctx.station_id, request["certificateType"], hashes, ctx.now)
    elif action == "DeleteCertificate" and status == "Accepted":
        ctx.write("remove_installed_certificate", ctx.station_id, request["certificateHashData"])


def _hook(action: str) -> Any:
    return lambda ctx, request, response: answered(ctx, action, request, response)


RESULT_HOOKS = {action: _hook(action) for action in SECURITY_CALLS}


def failure(ctx: Context, action: str, request: Payload, outcome: str) -> None:
    """A security request that was not answered with a CALLRESULT (CALLERROR, timeout, not connected)."""
    if action not in SECURITY_CALLS:
        return
    _kept(ctx, action, request, "Failed", {"outcome": outcome})
    if action == "CertificateSigned":
        serial = _issued_serial(request)
        if serial is not None:
            ctx.write("set_issued_certificate_status", ctx.station_id, serial, "Failed", ctx.now)
