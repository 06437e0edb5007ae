"""The control script (``run.py ctl`` / ``csmsctl``): an external client of the actor system.

It connects to the admin port on loopback, asks the registry for a station
actor, and sends it a command message; the station actor performs the OCPP
exchange and replies. Data-management commands go to the registry. Exit codes
and JSON shapes follow spec/CONTROL.md:

| code | meaning                                                        |
|------|----------------------------------------------------------------|
| 0    | done; for a CALL: the charge point answered with a CALLRESULT  |
| 2    | usage error (bad arguments, payload invalid against the schema)|
| 3    | unknown charge point, or not connected                         |
| 4    | no answer within the call timeout                              |
| 5    | the charge point answered with a CALLERROR                     |
| 6    | the central system is not running / not reachable              |
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pwd
import socket
import sys
from typing import Any

from actors.control import commands, render
from actors.errors import CommandError, OcppCallError
from actors.messages import (
    AdminCommand,
    AdminReply,
    CallReply,
    LookupStation,
    SendCall,
    StationAddressReply,
)
from actors.operator_calls import call_document, error_document, invalid_payload

OK, USAGE, UNKNOWN, TIMEOUT, CALLERROR, UNREACHABLE = 0, 2, 3, 4, 5, 6
OUTCOME_EXIT = {"result": OK, "error": CALLERROR, "timeout": TIMEOUT, "not-connected": UNKNOWN, "refused": USAGE}
ASK_TIMEOUT = 30.0


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        raise CommandError(f"{self.prog}: {message}", USAGE)


def build_parser(default_admin_port: int) -> argparse.ArgumentParser:
    parser = _Parser(prog="csmsctl", description="Operate the OCPP 1.6 central system.")
    parser.add_argument("--admin-port", type=int, default=default_admin_port, help="actor-system admin port (loopback)")
    parser.add_argument("--json", action="store_true", help="print exactly one JSON document")
    parser.add_argument("--timeout", type=float, default=None, help="seconds to wait for an answer (default: call timeout + 10)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    commands.add_data_commands(sub)
    commands.add_call_commands(sub)
    commands.document(parser)
    return parser


def main(argv: list[str], *, default_admin_port: int = 1900) -> int:
    """Run one control command; a closed stdout (``ctl ... | head``) ends it quietly."""
    try:
        return _main(argv, default_admin_port)
    except BrokenPipeError:
        # The reader went away: say nothing more (Python would print a traceback at exit).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return OK


def usage_error(message: str, *, as_json: bool) -> int:
    """Exit 2 with ``message``: one line on stderr, or one JSON document with --json."""
    return _fail(message, USAGE, as_json)


def _main(argv: list[str], default_admin_port: int) -> int:
    # --json is accepted anywhere: before the command (CONTROL.md) or after it.
    as_json = "--json" in argv
    argv = [a for a in argv if a != "--json"]
    try:
        args = build_parser(default_admin_port).parse_args(argv)
        args.json = as_json
        if args.command == "station" and args.verb == "set-password" and args.password is None:
            args.password = _read_password(args.id)
        request = commands.to_request(args)
    except CommandError as error:
        return _fail(error.message, error.exit_code, as_json)
    except OcppCallError as error:
        return _fail(invalid_payload(error), USAGE, as_json)
    if not _admin_port_open(args.admin_port):
        return _fail(f"the central system is not running (nothing listens on admin port {args.admin_port})", UNREACHABLE, as_json)
    try:
        system = _connect(args.admin_port)
    except Exception as exc:  # Thespian raises various errors when the admin is gone
        return _fail(f"cannot reach the central system on admin port {args.admin_port}: {exc}", UNREACHABLE, as_json)
    if isinstance(request, AdminCommand):
        return _run_admin(system, dataclasses.replace(request, requested_by=operator()), args)
    return _run_call(system, request, args)


def _run_admin(system: Any, request: AdminCommand, args: argparse.Namespace) -> int:
    reply = system.ask(_registry(system), request, ASK_TIMEOUT)
    if not isinstance(reply, AdminReply):
        return _fail("no answer from the central system", UNREACHABLE, args.json)
    if reply.error is not None:
        name = "NotFound" if reply.exit_code == UNKNOWN else None  # an unknown transaction, station, tag...
        return _fail(reply.error, reply.exit_code, args.json, name=name)
    if args.json:
        print(json.dumps(reply.result, default=str))
    else:
        print(render.render_admin(request.command, reply.result))
    return OK


def _run_call(system: Any, request: commands.CallRequest, args: argparse.Namespace) -> int:
    lookup = system.ask(_registry(system), LookupStation(request.station, action=request.action,
                                                         payload=request.payload, requested_by=operator()), ASK_TIMEOUT)
    if not isinstance(lookup, StationAddressReply):
        return _fail("no answer from the central system", UNREACHABLE, args.json)
    if not lookup.known:
        # NotConnected, as before: scripts test it; the description says it is unknown.
        return _fail(f"unknown charge point {request.station!r}", UNKNOWN, args.json, request)
    if "upgrade_to" in request.options:
        downgrade = _downgrade(system, request, args)
        if downgrade is not None:
            return downgrade
    if lookup.address is None:
        return _fail(f"charge point {request.station!r} is not connected", UNKNOWN, args.json, request)
    if args.command == "remote-stop" and not args.force:
        refused = _unknown_transaction(system, request, args)
        if refused is not None:
            return refused
    timeout = args.timeout if args.timeout is not None else lookup.call_timeout + 10.0
    if "sign_firmware" in request.options:
        signed = _signed_by_node(system, request, args)
        if not isinstance(signed, commands.CallRequest):
            return signed
        request = signed
    if "upgrade_to" in request.options:
        return _upgrade(system, lookup.address, request, args, timeout)
    reply = system.ask(lookup.address, SendCall(request.action, request.payload, request.options, request.station,
                                                requested_by=operator()), timeout)
    if not isinstance(reply, CallReply):
        return _fail(f"no answer from {request.station!r} within {timeout:.0f} s", TIMEOUT, args.json, request)
    return _print_reply(reply, args)


def _print_reply(reply: CallReply, args: argparse.Namespace) -> int:
    document = call_document(reply)
    code = OUTCOME_EXIT.get(reply.outcome, CALLERROR)
    # "refused": the central system would break an OCPP rule by sending it (exit 2).
    if args.json:
        print(json.dumps(document, default=str))
    elif reply.outcome == "result":
        print(render.render_result(reply.station, reply.action, reply.response or {}))
    else:
        error = reply.error or {}
        print(f"{reply.station} {reply.action}: {error.get('code')}: {error.get('description')}", file=sys.stderr)
    return code


def _signed_by_node(system: Any, request: commands.CallRequest, args: argparse.Namespace) -> commands.CallRequest | int:
    """signed-update-firmware --firmware FILE: the node signs the file's SHA-256 with its firmware signing key."""
    options = dict(request.options)
    digest = options.pop("sign_firmware")
    reply = system.ask(_registry(system), AdminCommand("firmware.sign", {"sha256": digest}), ASK_TIMEOUT)
    if not isinstance(reply, AdminReply):
        return _fail("no answer from the central system", UNREACHABLE, args.json)
    if reply.error is not None:
        return _fail(reply.error, reply.exit_code, args.json, request)
    payload = dict(request.payload)
    payload["firmware"] = {**payload["firmware"], **reply.result}
    try:
        return commands.prepare_call(request.station, request.action, payload, options)
    except OcppCallError as error:
        return _fail(invalid_payload(error), USAGE, args.json, request)


def _upgrade(system: Any, address: Any, request: commands.CallRequest, args: argparse.Namespace, timeout: float) -> int:
    """upgrade-security-profile (TC_083): ChangeConfiguration SecurityProfile N, then, once Accepted, Reset Hard.

    A downgrade was refused before (``_downgrade``).
    """
    steps: list[dict[str, Any]] = []
    reply = system.ask(address, SendCall(request.action, request.payload, {}, request.station,
                                         requested_by=operator()), timeout)
    if not isinstance(reply, CallReply):
        return _fail(f"no answer from {request.station!r} within {timeout:.0f} s", TIMEOUT, args.json, request)
    steps.append(call_document(reply))
    if reply.outcome == "result" and (reply.response or {}).get("status") == "Accepted":
        reset = system.ask(address, SendCall("Reset", {"type": "Hard"}, {}, request.station,
                                             requested_by=operator()), timeout)
        if not isinstance(reset, CallReply):
            return _fail(f"no answer to Reset from {request.station!r} within {timeout:.0f} s", TIMEOUT, args.json, request)
        reply = reset
        steps.append(call_document(reset))
    document = {**steps[-1], "steps": steps}
    code = OUTCOME_EXIT.get(reply.outcome, CALLERROR)
    if args.json:
        print(json.dumps(document, default=str))
    else:
        for step in steps:
            if "response" in step:
                print(render.render_result(step["station"], step["action"], step["response"] or {}))
            else:
                print(f"{step['station']} {step['action']}: {step['error'].get('code')}: {step['error'].get('description')}",
                      file=sys.stderr)
    return code


def _downgrade(system: Any, request: commands.CallRequest, args: argparse.Namespace) -> int | None:
    """Exit 2 for a profile at or below the station's: downgrading is not possible via OCPP (A00.FR.005)."""
    target = int(request.options["upgrade_to"])
    shown = system.ask(_registry(system), AdminCommand("station.show", {"id": request.station}), ASK_TIMEOUT)
    if isinstance(shown, AdminReply) and shown.error is None and isinstance(shown.result, dict):
        current = int(shown.result["station"].get("security_profile") or 0)
        if target <= current:
            return _fail(f"{request.station} has security profile {current}; only an upgrade is possible "
                         f"(white paper A00.FR.005)", USAGE, args.json, request)
    return None


def _unknown_transaction(system: Any, request: commands.CallRequest, args: argparse.Namespace) -> int | None:
    """Exit 2 unless the transaction to stop is active on that station, as far as the central system knows."""
    tx_id = request.payload.get("transactionId")
    reply = system.ask(_registry(system), AdminCommand("tx.show", {"id": tx_id}), ASK_TIMEOUT)
    shown = reply.result if isinstance(reply, AdminReply) and reply.error is None else None
    if isinstance(shown, dict) and shown.get("station_id") == request.station and shown.get("active"):
        return None
    why = "is not known" if shown is None else (
        f"belongs to {shown.get('station_id')}" if shown.get("station_id") != request.station else "has stopped")
    return _fail(f"transaction {tx_id} {why}, not active on {request.station} (see ctl tx list --station "
                 f"{request.station} --active); --force sends RemoteStopTransaction anyway", USAGE, args.json, request)


def operator() -> str:
    """Who runs this command, for the audit log: ``local:<unix user>`` (peercred makes sure
    only the central system's own user reaches it; the name says who that was locally)."""
    try:
        name = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        name = str(os.getuid())
    return f"local:{name}"


def _read_password(station_id: str) -> str:
    """The password from a prompt (a terminal) or the first line of standard input."""
    if sys.stdin.isatty():
        import getpass

        password = getpass.getpass(f"password for {station_id}: ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise CommandError("no password given (as an argument, at the prompt or on standard input)", USAGE)
    return password


def _fail(message: str, code: int, as_json: bool, request: Any = None, name: str | None = None) -> int:
    if as_json:
        call = request if isinstance(request, commands.CallRequest) else None
        print(json.dumps(error_document(name or _code_name(code), message, call)))
    else:
        print(message, file=sys.stderr)
    return code


def _code_name(code: int) -> str:
    return {USAGE: "UsageError", UNKNOWN: "NotConnected", TIMEOUT: "Timeout", UNREACHABLE: "Unreachable"}.get(code, "Error")


def _admin_port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2.0):
            return True
    except OSError:
        return False


def _connect(port: int) -> Any:
    from thespian.actors import ActorSystem

    from actors.adapters import loopback, peercred

    loopback.install()
    peercred.install()
    return ActorSystem("multiprocTCPBase", {"Admin Port": port}, logDefs=_QUIET_LOGS)


def _registry(system: Any) -> Any:
    return system.createActor("actors.registry.RegistryActor", globalName="csms-registry")


_QUIET_LOGS = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"null": {"class": "logging.NullHandler"}},
    "root": {"handlers": ["null"], "level": "CRITICAL"},
}
