"""The HTTP API's route table: every route declared once (spec/CONTROL.md, "HTTP API and web console").

Each :class:`Route` says its method, path, the scope a key needs (None: no
key), its parameters, request body and answer schema, and what serves it
(``kind``): a data-management command of the registry (``admin``, the
same ``actors.admin`` command ``ctl`` runs), an OCPP request (``call``),
the OpenAPI document, the health check, or the web console's files
(``console``: ``/`` and ``/console/{asset}``, no key; the page asks for one
and sends it with every request it makes). The aiohttp router
(``actors.httpapi.server``) and the OpenAPI document
(``actors.httpapi.openapi``) are both built from ``ROUTES``; nothing else
lists a route.

Scopes (``storage.api_keys``): ``read`` may only GET, ``operate`` may also
send OCPP requests, ``admin`` may also change stations, tags and keys (and
see the keys).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ROUTES", "Param", "Route", "SCHEMAS"]

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _list_of(name: str) -> Schema:
    return {"type": "array", "items": _ref(name)}


_TEXT: Schema = {"type": "string"}
_MAYBE_TEXT: Schema = {"type": ["string", "null"]}
_MAYBE_INT: Schema = {"type": ["integer", "null"]}
_FLAG: Schema = {"type": ["boolean", "integer", "null"], "description": "0/1 or false/true"}
_OBJECT: Schema = {"type": "object", "additionalProperties": True}

# The answers' shapes, in components/schemas. Rows may carry more columns than named here.
SCHEMAS: dict[str, Schema] = {
    "ErrorDetail": {
        "type": "object",
        "required": ["code", "description"],
        "properties": {"code": _TEXT, "description": _TEXT, "details": _OBJECT},
    },
    "Error": {
        "type": "object",
        "required": ["error"],
        "description": "A request that failed; for an OCPP request also station, action and request.",
        "properties": {"error": _ref("ErrorDetail"), "station": _TEXT, "action": _TEXT, "request": _OBJECT},
    },
    "CallAnswer": {
        "type": "object",
        "required": ["station", "action", "request"],
        "description": "The shape of 'ctl --json call': response on a CALLRESULT, error on a CALLERROR.",
        "properties": {"station": _TEXT, "action": _TEXT, "request": _OBJECT, "response": _OBJECT,
                       "error": _ref("ErrorDetail")},
    },
    "Station": {
        "type": "object",
        "required": ["id"],
        "additionalProperties": True,
        "properties": {"id": _TEXT, "registration": _TEXT, "connected": _FLAG, "ever_accepted": _FLAG,
                       "connectors": _MAYBE_INT, "vendor": _MAYBE_TEXT, "model": _MAYBE_TEXT,
                       "firmware_version": _MAYBE_TEXT, "last_seen": _MAYBE_TEXT},
    },
    "StationDetail": {
        "type": "object",
        "description": "What 'ctl station show' reports.",
        "required": ["station"],
        "properties": {"station": _ref("Station"), "connectors": {"type": "array", "items": _OBJECT},
                       "configuration": {"type": ["array", "object"]},
                       "unknown_configuration_keys": {"type": "array", "items": _TEXT},
                       "active_transactions": _list_of("Transaction"), "firmware": _OBJECT,
                       "events": {"type": "array", "items": _OBJECT}, "local_list": _OBJECT,
                       "reservations": {"type": "array", "items": _OBJECT},
                       "data_transfers": {"type": "array", "items": _OBJECT,
                                          "description": "the last accepted vendor DataTransfer messages"},
                       "installed_certificates": {"type": "array", "items": _OBJECT},
                       "issued_certificates": _list_of("IssuedCertificate")},
    },
    "Transaction": {
        "type": "object",
        "required": ["id", "station_id"],
        "additionalProperties": True,
        "properties": {"id": {"type": "integer"}, "station_id": _TEXT, "connector_id": {"type": "integer"},
                       "id_tag": _TEXT, "meter_start": {"type": "integer"}, "meter_stop": _MAYBE_INT,
                       "energy_wh": {"type": ["number", "null"]}, "stop_reason": _MAYBE_TEXT,
                       "started_at": _MAYBE_TEXT, "stopped_at": _MAYBE_TEXT},
    },
    "TransactionDetail": {
        "allOf": [_ref("Transaction"), {"type": "object", "properties": {"meter_values": {"type": "array", "items": _OBJECT}}}],
    },
    "Tag": {
        "type": "object",
        "required": ["id_tag", "status"],
        "properties": {"id_tag": _TEXT, "status": {"enum": ["Accepted", "Blocked", "Expired", "Invalid"]},
                       "expiry": _MAYBE_TEXT, "parent": _MAYBE_TEXT, "updated_at": _TEXT},
    },
    "Reservation": {"type": "object", "required": ["id", "station_id"], "additionalProperties": True,
                    "properties": {"id": {"type": "integer"}, "station_id": _TEXT, "connector_id": {"type": "integer"},
                                   "id_tag": _TEXT, "expiry_date": _TEXT, "status": _TEXT}},
    "ConnectorProfiles": {
        "type": "object",
        "required": ["connector_id", "profiles"],
        "properties": {"connector_id": {"type": "integer"}, "profiles": {"type": "array", "items": _OBJECT},
                       "limit_now_a": {"type": ["number", "null"]}},
    },
    "Status": {"type": "object", "additionalProperties": True,
               "properties": {"stations_known": {"type": "integer"}, "stations_connected": {"type": "integer"},
                              "transactions_active": {"type": "integer"}, "transactions_total": {"type": "integer"},
                              "started_at": _TEXT, "uptime_s": {"type": "integer"}}},
    "PendingStation": {"type": "object", "required": ["id"],
                       "properties": {"id": _TEXT, "address": _MAYBE_TEXT, "attempts": {"type": "integer"},
                                      "first_seen": _TEXT, "last_seen": _TEXT}},
    "ApiKey": {"type": "object", "required": ["name", "scope"],
               "properties": {"name": _TEXT, "scope": {"enum": ["read", "operate", "admin"]}, "created_at": _TEXT,
                              "last_used_at": _MAYBE_TEXT}},
    "NewApiKey": {"allOf": [_ref("ApiKey"), {"type": "object", "required": ["key"], "properties": {
        "key": {"type": "string", "description": "the key itself: shown in this answer only"}}}]},
    "Removed": {"type": "object", "additionalProperties": True},
    "Health": {"type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}},
    "Ready": {"type": "object", "required": ["status"],
              "properties": {"status": {"enum": ["ready", "not ready"]},
                             "not_ready": {"type": "array", "items": {"type": "string"}}}},
    "OpenApi": _OBJECT,
    "ConsoleFile": {"type": "string", "description": "a file of the web console (HTML, JavaScript or CSS)"},
    "Frame": {"type": "object", "required": ["seq", "at", "direction", "frame"], "description":
              "one WebSocket frame as sent or received (OCPP-J text)", "properties": {
                  "seq": {"type": "integer"}, "at": _TEXT, "direction": {"enum": ["in", "out"]}, "frame": _TEXT}},
    "AuditEntry": {"type": "object", "required": ["id", "at", "who", "command", "outcome"], "properties": {
        "id": {"type": "integer"}, "at": _TEXT,
        "who": {"type": "string", "description": "the API key's name, or local:<unix user> for ctl"},
        "command": {"type": "string", "description": "the OCPP action, or the data command (tag.add ...)"},
        "station_id": _MAYBE_TEXT, "payload": {}, "outcome": {
            "type": "string", "description": "result, error, timeout, not-connected, refused; done for data commands"},
        "answer": {"description": "the charge point's CALLRESULT payload, or the error"}}},
    "TagDecisions": {"type": "object", "required": ["id_tag", "decisions"], "properties": {
        "id_tag": _TEXT, "tag": {"oneOf": [_ref("Tag"), {"type": "null"}]},
        "decisions": {"type": "array", "items": {"type": "object", "properties": {
            "at": _TEXT, "station_id": _TEXT, "connector_id": _MAYBE_INT,
            "action": {"enum": ["Authorize", "StartTransaction", "SendLocalList"]},
            "status": _TEXT, "reason": {"enum": ["accepted", "unknown", "blocked", "expired", "invalid",
                                                 "parent blocked", "concurrent"]}}}}}},
    "EventStream": {"type": "string", "description":
                    "Server-Sent Events: 'id: N' (increasing), 'event: TYPE', 'data: {JSON}' per event; a comment "
                    "line every 15 s. Types and fields: station.connected {station, at}; station.disconnected "
                    "{station, at, reason}; station.booted {station, at, status, vendor, model}; connector.status "
                    "{station, at, connector, status, error_code, info}; transaction.started {station, at, "
                    "transaction_id, connector, id_tag_status}; transaction.stopped {station, at, transaction_id, "
                    "energy_wh, reason}; datatransfer {station, at, vendor_id, message_id, data}. Reconnect with "
                    "'Last-Event-ID: N' (or ?last_event_id=N) to get every kept event after N first."},
    "IssuedCertificate": {
        "type": "object", "required": ["serial", "station_id", "status"], "additionalProperties": True,
        "description": "A certificate the node's CA issued for a station's CSR; the PEM (certificate) only per station.",
        "properties": {"serial": _TEXT, "station_id": _TEXT, "subject": _TEXT, "not_before": _TEXT, "not_after": _TEXT,
                       "status": {"enum": ["Issued", "Accepted", "Rejected", "Failed"]}, "issued_at": _TEXT,
                       "answered_at": _MAYBE_TEXT, "certificate": _TEXT}},
    "SecurityEvent": {
        "type": "object", "required": ["id", "type"], "additionalProperties": True,
        "description": "A station's SecurityEventNotification (timestamp, tech_info, received_at), or one of the "
                       "central system's own (station_id, address, detail, at).",
        "properties": {"id": {"type": "integer"}, "type": _TEXT, "timestamp": _MAYBE_TEXT, "tech_info": _MAYBE_TEXT,
                       "received_at": _TEXT, "station_id": _MAYBE_TEXT, "address": _MAYBE_TEXT,
                       "detail": _MAYBE_TEXT, "at": _TEXT}},
}


@dataclass(frozen=True)
class Param:
    """A path or query parameter; ``arg`` names the admin command's argument it becomes (default: ``name``)."""

    name: str
    where: str  # "path" | "query"
    schema: Schema
    description: str
    arg: str = ""

    @property
    def argument(self) -> str:
        return self.arg or self.name


@dataclass(frozen=True)
class Route:
    """One endpoint. ``kind``: "admin" (runs the registry command ``command``), "call", "openapi", "health",
    "ready", "console". ``media``: the answer's media type."""

    method: str
    path: str
    operation: str
    summary: str
    scope: str | None
    answer: str  # a name in SCHEMAS, or "[Name]" for a list of them
    kind: str = "admin"
    command: str = ""
    params: tuple[Param, ...] = ()
    body: Schema | None = None
    status: int = 200
    errors: tuple[int, ...] = ()
    media: str = "application/json"  # of the answer; "text/event-stream" for the event stream

    @property
    def answer_schema(self) -> Schema:
        return _list_of(self.answer[1:-1]) if self.answer.startswith("[") else _ref(self.answer)


_STATION = Param("id", "path", _TEXT, "the charge point's identity")
_STATION_QUERY = Param("station", "query", _TEXT, "only this charge point's")

ROUTES: tuple[Route, ...] = (
    Route("GET", "/", "console", "the web console (spec/CONTROL.md); it asks for a key and sends it itself", None,
          "ConsoleFile", kind="console", media="text/html"),
    Route("GET", "/console/{asset}", "consoleAsset", "a file of the web console: its script modules and style",
          None, "ConsoleFile", kind="console", media="text/*",
          params=(Param("asset", "path", _TEXT, "the file's name"),), errors=(404,)),
    Route("GET", "/healthz", "health", "the process answers", None, "Health", kind="health"),
    Route("GET", "/readyz", "ready", "200 only when the actor system, every station host and the database "
          "answer; 503 with the same body naming what does not", None, "Ready", kind="ready"),
    Route("GET", "/api/v1/openapi.json", "openapi", "this OpenAPI document", None, "OpenApi", kind="openapi"),
    Route("GET", "/api/v1/status", "status", "stations connected/known, active transactions, uptime (ctl status)",
          "read", "Status", command="status"),
    Route("GET", "/api/v1/stations", "listStations", "registered charge points (ctl station list)", "read",
          "[Station]", command="station.list"),
    Route("GET", "/api/v1/stations/{id}", "showStation",
          "a charge point: connectors, configuration, transactions, events (ctl station show)", "read",
          "StationDetail", command="station.show", params=(_STATION,), errors=(404,)),
    Route("PUT", "/api/v1/stations/{id}", "putStation", "register or update a charge point (ctl station add)",
          "admin", "Station", command="station.add", params=(_STATION,), errors=(422,), body={
              "type": "object", "additionalProperties": False, "properties": {
                  "password": {"type": "string", "description": "HTTP Basic password; stored salted and hashed"},
                  "registration": {"enum": ["accepted", "pending", "rejected"]},
                  "connectors": {"type": "integer", "minimum": 0}}}),
    Route("GET", "/api/v1/stations/{id}/log", "stationLog",
          "the charge point's last frames, both directions, oldest first (ctl station log)", "read", "[Frame]",
          command="station.log", params=(_STATION, Param("limit", "query", {"type": "integer", "minimum": 1},
                                                         "at most this many, the newest (default 50)")),
          errors=(404, 422)),
    Route("GET", "/api/v1/events", "events", "the event stream (Server-Sent Events) of what the charge points did",
          "read", "EventStream", kind="events", media="text/event-stream", params=(
              Param("last_event_id", "query", {"type": "integer", "minimum": 0},
                    "like the Last-Event-ID header: first every kept event after this id"),)),
    Route("GET", "/api/v1/audit", "audit", "operator actions, newest first: who, what, when, the answer (ctl audit)",
          "admin", "[AuditEntry]", command="audit.list", params=(
              _STATION_QUERY, Param("limit", "query", {"type": "integer", "minimum": 1}, "at most this many (50)")),
          errors=(422,)),
    Route("GET", "/api/v1/tags/{id_tag}/decisions", "tagDecisions",
          "the recent authorization decisions about an idTag: where, when, status and reason (ctl explain tag)",
          "read", "TagDecisions", command="tag.explain", params=(
              Param("id_tag", "path", _TEXT, "the idTag"),
              Param("limit", "query", {"type": "integer", "minimum": 1}, "at most this many (20)")), errors=(422,)),
    Route("DELETE", "/api/v1/stations/{id}", "removeStation",
          "forget a charge point, closing its connection (ctl station remove)", "admin", "Removed",
          command="station.remove", params=(_STATION,), errors=(404,)),
    Route("GET", "/api/v1/stations/{id}/profiles", "listProfiles",
          "charging profiles the central system believes are installed, per connector (ctl profile list)",
          "read", "[ConnectorProfiles]", command="profile.list",
          params=(Param("id", "path", _TEXT, "the charge point's identity", arg="station"),), errors=(404,)),
    Route("POST", "/api/v1/stations/{id}/calls/{action}", "call",
          "send an OCPP 1.6 request to the charge point (ctl call); 200 for a CALLRESULT or CALLERROR",
          "operate", "CallAnswer", kind="call",
          params=(_STATION, Param("action", "path", _TEXT, "the OCPP action, e.g. Reset")),
          body={"type": "object", "description": "the OCPP request payload", "additionalProperties": True},
          errors=(400, 404, 409, 422, 504)),
    Route("GET", "/api/v1/stations/{id}/security-events", "listSecurityEvents",
          "the station's SecurityEventNotifications, newest first (ctl security-events ID)", "read",
          "[SecurityEvent]", command="security-events", params=(_STATION,), errors=(404,)),
    Route("GET", "/api/v1/security-events", "listOwnSecurityEvents",
          "the central system's own security log: failed logins, refused TLS handshakes and certificates, "
          "security-profile refusals (ctl security-events --own)", "read", "[SecurityEvent]",
          command="security-events", params=(Param("own", "query", _FLAG, "must be true: the central system's own"),),
          errors=(422,)),
    Route("GET", "/api/v1/certificates", "listCertificates",
          "certificates the node's CA issued, newest first (ctl certificate list)", "read", "[IssuedCertificate]",
          command="certificate.list", params=(_STATION_QUERY,)),
    Route("GET", "/api/v1/pending-stations", "listPending",
          "identities that tried to connect while unknown (ctl station list --pending)", "read",
          "[PendingStation]", command="station.pending"),
    Route("POST", "/api/v1/pending-stations/{id}/approve", "approveStation",
          "register an identity waiting for approval (ctl station approve)", "admin", "Station",
          command="station.approve", params=(_STATION,), errors=(404, 422)),
    Route("GET", "/api/v1/transactions", "listTransactions", "transactions, newest first (ctl tx list)", "read",
          "[Transaction]", command="tx.list", params=(
              _STATION_QUERY, Param("active", "query", {"type": "boolean"}, "only transactions without a stop"))),
    Route("GET", "/api/v1/transactions/{txid}", "showTransaction",
          "one transaction with its meter values and flags (ctl tx show)", "read", "TransactionDetail",
          command="tx.show", params=(Param("txid", "path", {"type": "integer"}, "transaction id", arg="id"),),
          errors=(404,)),
    Route("GET", "/api/v1/tags", "listTags", "every idTag (ctl tag list)", "read", "[Tag]", command="tag.list"),
    Route("PUT", "/api/v1/tags/{id_tag}", "putTag", "create or update an idTag (ctl tag add)", "admin", "Tag",
          command="tag.add", params=(Param("id_tag", "path", _TEXT, "the idTag (at most 20 characters)"),),
          errors=(422,), body={"type": "object", "additionalProperties": False, "properties": {
              "status": {"enum": ["Accepted", "Blocked", "Expired", "Invalid"]},
              "expiry": {"type": "string", "description": "ISO 8601"},
              "parent": {"type": "string", "description": "parent idTag (a group)"}}}),
    Route("DELETE", "/api/v1/tags/{id_tag}", "removeTag", "delete an idTag (ctl tag remove)", "admin", "Removed",
          command="tag.remove", params=(Param("id_tag", "path", _TEXT, "the idTag"),), errors=(404,)),
    Route("GET", "/api/v1/reservations", "listReservations", "reservations, with their state (ctl reservation list)",
          "read", "[Reservation]", command="reservation.list", params=(_STATION_QUERY,)),
    Route("GET", "/api/v1/api-keys", "listApiKeys", "names, scopes, created, last used; never a key (ctl api-key list)",
          "admin", "[ApiKey]", command="api-key.list"),
    Route("POST", "/api/v1/api-keys", "createApiKey", "a new key, in this answer only (ctl api-key create)", "admin",
          "NewApiKey", command="api-key.create", status=201, errors=(422,), body={
              "type": "object", "required": ["name", "scope"], "additionalProperties": False, "properties": {
                  "name": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
                  "scope": {"enum": ["read", "operate", "admin"]}}}),
    Route("DELETE", "/api/v1/api-keys/{name}", "revokeApiKey", "delete a key (ctl api-key revoke)", "admin",
          "Removed", command="api-key.revoke", params=(Param("name", "path", _TEXT, "the key's name"),),
          errors=(404,)),
)

