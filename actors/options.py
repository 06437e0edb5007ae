"""The serve options: one table, and where each value comes from.

Every option of ``run.py serve`` is read from four places, the first that has
it wins:

| source    | spelling                                   | a bad value                                                |
|-----------|--------------------------------------------|------------------------------------------------------------|
| `flag`    | ``--metrics-port 9101``                    | argparse's usage error                                     |
| `env`     | ``CSMS_METRICS_PORT=9101``                 | ``CSMS_PORT='abc' is not a valid int (for --port)``        |
| `file`    | ``metrics-port = 9101`` in ``--config``    | ``config.toml: port = "abc" is not a valid int (for --port)`` |
| `default` | ``actors.settings.Settings``               |                                                            |

The file is TOML (``--config FILE``, or ``CSMS_CONFIG``), one key per option,
spelled as the flag (``metrics-port``) or as the variable (``metrics_port``);
TOML values are typed, so a number is written as a number (``port = "9000"``
is refused, as is a key no option has). Each bad value becomes an
``OptionError`` naming the option and the source, which run.py prints as one
line and exit 2: the caller hands in the environment, this module reads no
``os.environ`` (house style: only run.py does).
"""

from __future__ import annotations

import argparse
import difflib
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from actors.settings import Settings

CONFIG_ENV = "CSMS_CONFIG"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_SECRET_WORDS = ("password", "secret", "key", "token")
_PATHS = frozenset({"tls_key", "ca_key", "firmware_signing_key"})  # names like a secret, holds a file name


class OptionError(Exception):
    """Raised when a value of a serve option, or the config file itself, cannot be used.

    The message is one line naming the source and the option; run.py prints it
    after ``run.py serve: error:`` (or ``run.py config show``, ``csmsctl``) and exits 2.
    """


@dataclass(frozen=True)
class Option:
    """One serve option: its flag name, its type, its help text and, maybe, its choices."""

    name: str
    kind: type  # str, int, float, bool, or list (of str)
    help: str
    choices: tuple[str, ...] | None = None

    @property
    def attr(self) -> str:
        return self.name.replace("-", "_")

    @property
    def env(self) -> str:
        return "CSMS_" + self.attr.upper()

    @property
    def default(self) -> Any:
        if self.kind is list:
            return []
        return getattr(Settings(), self.attr)

    @property
    def secret(self) -> bool:
        return is_secret(self.name)

    def from_env(self, text: str) -> Any:
        """The value of ``CSMS_<NAME>=text``, or OptionError."""
        said = f"{self.env}={text!r}"
        if self.kind is bool:
            if text.lower() not in _TRUE + _FALSE:
                raise OptionError(f"{said} is not a boolean (for --{self.name}: 1/0, true/false, yes/no, on/off)")
            return text.lower() in _TRUE
        if self.kind is list:
            return [item for item in text.split(",") if item]
        try:
            value = self.kind(text)
        except ValueError:
            raise OptionError(f"{said} is not a valid {self.kind.__name__} (for --{self.name})") from None
        self._check_choice(value, said)
        return value

    def from_file(self, value: Any, said: str) -> Any:
        """The value of ``key = value`` in the config file (TOML-typed), or OptionError."""
        if self.kind is bool:
            if not isinstance(value, bool):
                raise OptionError(f"{said} is not a boolean (for --{self.name}: true or false)")
            return value
        if self.kind is list:
            items = [value] if isinstance(value, str) else value
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise OptionError(f"{said} is not a string or a list of strings (for --{self.name})")
            return list(items)
        if self.kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif self.kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        else:
            ok = isinstance(value, str)
        if not ok:
            kind = "string" if self.kind is str else self.kind.__name__
            raise OptionError(f"{said} is not a valid {kind} (for --{self.name})")
        value = self.kind(value)
        self._check_choice(value, said)
        return value

    def _check_choice(self, value: Any, said: str) -> None:
        if self.choices is not None and value not in self.choices:
            raise OptionError(f"{said}: choose from {', '.join(self.choices)} (for --{self.name})")


OPTIONS: tuple[Option, ...] = (
    Option("host", str, "address the OCPP listener binds"),
    Option("port", int, "OCPP-J WebSocket port"),
    Option("metrics-port", int, "Prometheus exposition port"),
    Option("admin-port", int, "actor-system admin port (loopback only)"),
    Option("api-port", int, "HTTP API port (keys: 'run.py ctl api-key create')"),
    Option("api-host", str, "address the HTTP API binds"),
    Option("db", str, "SQLite database file"),
    Option("heartbeat-interval", int, "seconds, returned in BootNotification.conf"),
    Option("unknown-stations", str, "accept: register unknown identities on their first upgrade; reject: HTTP 404; "
           "pending: HTTP 404 and listed for 'ctl station approve'", ("accept", "reject", "pending")),
    Option("max-meter-values-per-message", int,
           "meterValue elements one MeterValues may carry (more: CALLERROR OccurenceConstraintViolation)"),
    Option("max-meter-values-per-minute", int,
           "meterValue elements one station may send per minute (more: CALLERROR GenericError, retried later)"),
    Option("meter-values-retention-days", float,
           "days meter values are kept before the scheduler prunes them; 0 keeps them for ever"),
    Option("event-retention-hours", float,
           "hours events are kept for GET /api/v1/events (a reconnect with Last-Event-ID gets what it missed); "
           "0 keeps them for ever"),
    Option("frame-log-per-station", int, "last frames kept per station, both directions (ctl station log); 0: none"),
    Option("audit-retention-days", float, "days operator actions are kept (ctl audit); 0 keeps them for ever"),
    Option("authorization-log-days", float,
           "days authorization decisions are kept (ctl explain tag); 0 keeps them for ever"),
    Option("data-transfer-retention-days", float,
           "days the data of accepted vendor DataTransfer messages is kept; 0 keeps it for ever"),
    Option("unknown-per-minute", int, "new unknown identities each host registers or lists per minute"),
    Option("max-pending", int, "most identities listed for approval (--unknown-stations pending)"),
    Option("max-stations", int, "no unknown identity registers itself once this many stations are known"),
    Option("call-timeout", float, "seconds to wait for a charge point's answer"),
    Option("log-level", str, "DEBUG, INFO, WARNING or ERROR", ("DEBUG", "INFO", "WARNING", "ERROR")),
    Option("log-format", str, "text lines, or one JSON object per line (time, level, logger, message, station)",
           ("text", "json")),
    Option("hosts", int, "station-host processes; 0: one per core"),
    Option("tls-cert", str, "server certificate (PEM): --port serves wss:// (TLS 1.2 or newer)"),
    Option("tls-key", str, "the server certificate's private key (PEM; RSA >= 2048 bits or EC >= 224)"),
    Option("tls-client-ca", str, "CA bundle (PEM) client certificates must chain to (security profile 3)"),
    Option("plain-port", int, "an extra plain ws:// port for security profiles 0 and 1 when --port is TLS; 0: none"),
    Option("ca-cert", str, "certificate (PEM) of the CA that signs charge points' CSRs; "
           "default: csms-ca.pem next to --db (made by 'ctl ca init')"),
    Option("ca-key", str, "the CA's private key (PEM); default: csms-ca.key next to --db"),
    Option("cpo-name", str, "the organisation (subject O) a charge point's CSR must name; empty: not checked"),
    Option("firmware-signing-cert", str, "certificate (PEM) sent with firmware signed by 'ctl signed-update-firmware'"),
    Option("firmware-signing-key", str, "its private key (PEM), which signs the firmware's SHA-256"),
    Option("ping-interval", float, "seconds between WebSocket pings; 0 disables"),
    Option("max-frame-size", int, "largest accepted WebSocket message in bytes"),
    Option("max-call-rate", int, "CALLs per second a connection may send before it is closed 1008; 0 disables"),
    Option("concurrent-tx", bool, "answer StartTransaction ConcurrentTx when the tag is already charging"),
    Option("boot-retry-interval", int, "interval returned with Pending/Rejected BootNotification.conf"),
    Option("per-station-labels", bool, "label the charging-limit gauge with station and connector (cardinality!)"),
    Option("data-transfer-vendor", list, "accept DataTransfer from this vendorId (optionally only these messageIds); "
           "repeatable; CSMS_DATA_TRANSFER_VENDOR takes a comma-separated list, the file a list of strings"),
)
BY_KEY = {key: option for option in OPTIONS for key in {option.name, option.attr}}


@dataclass(frozen=True)
class Resolved:
    """Every option's value and where it came from (``SOURCES``), and the config file used, if any."""

    values: dict[str, Any]  # attr -> value
    sources: dict[str, str]  # attr -> "flag" | "env" | "file" | "default"
    config: str | None  # the config file read, if any
    config_source: str | None  # flag | env

    def shown(self, attr: str) -> Any:
        """The value as it may be printed: anything secret is masked."""
        value = self.values[attr]
        return "***" if value and is_secret(attr) else value


def is_secret(name: str) -> bool:
    """Named like a password, key, secret or token (``api_secret``): never printed.
    ``tls-key`` (and ``ca-key``, ``firmware-signing-key``) names the file of a key, which an operator needs to see; the key stays in it."""
    attr = name.replace("-", "_")
    return attr not in _PATHS and any(word in attr.split("_") for word in _SECRET_WORDS)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Every serve option as a flag whose value is None unless given (so the source is known)."""
    parser.add_argument("--config", metavar="FILE", default=None,
                        help=f"TOML file with any of these options (key = option name); also {CONFIG_ENV}")
    for option in OPTIONS:
        default = f" (default: {', '.join(option.default) or 'none'})" if option.kind is list else \
            f" (default: {option.default})"
        text = (option.help + default).replace("%", "%%")
        if option.kind is bool:
            parser.add_argument(f"--{option.name}", action=argparse.BooleanOptionalAction, default=None, help=text)
        elif option.kind is list:
            parser.add_argument(f"--{option.name}", action="append", default=None, metavar="VENDOR[:MSG1;MSG2]",
                                help=text)
        else:
            parser.add_argument(f"--{option.name}", type=option.kind, default=None, choices=option.choices,
                                help=text)


def resolve(args: argparse.Namespace, env: Mapping[str, str]) -> Resolved:
    """Fold parsed flags, ``env`` and the config file (``--config`` or CSMS_CONFIG) into one Resolved."""
    path = args.config if args.config is not None else env.get(CONFIG_ENV) or None
    config_source = None if path is None else "flag" if args.config is not None else "env"
    from_file = read_file(path) if path is not None else {}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for option in OPTIONS:
        flag = getattr(args, option.attr)
        if flag is not None:
            values[option.attr], sources[option.attr] = flag, "flag"
        elif option.env in env:
            values[option.attr], sources[option.attr] = option.from_env(env[option.env]), "env"
        elif option.attr in from_file:
            values[option.attr], sources[option.attr] = from_file[option.attr], "file"
        else:
            values[option.attr], sources[option.attr] = option.default, "default"
    return Resolved(values, sources, path, config_source)


def admin_port(env: Mapping[str, str]) -> int:
    """The admin port a node started in this environment listens on, for the control script:
    CSMS_ADMIN_PORT, else ``admin-port`` in the CSMS_CONFIG file, else the default."""
    option = BY_KEY["admin_port"]
    if option.env in env:
        return int(option.from_env(env[option.env]))
    path = env.get(CONFIG_ENV) or None
    if path is not None:
        return int(read_file(path).get(option.attr, option.default))
    return int(option.default)


def read_file(path: str) -> dict[str, Any]:
    """The options set in the TOML file at ``path``, checked: attr -> value, or OptionError."""
    try:
        with open(path, "rb") as f:
            document = tomllib.load(f)
    except OSError as exc:
        raise OptionError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise OptionError(f"{path}: not valid TOML: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise OptionError(f"{path}: not valid TOML: {exc}") from None
    values: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    for key, value in document.items():
        option = BY_KEY.get(key)
        if option is None:
            raise OptionError(f"{path}: unknown option {_key(key)}{_did_you_mean(key)}")
        if option.attr in spelled:
            raise OptionError(f"{path}: {_key(spelled[option.attr])} and {_key(key)} are the same option "
                              f"(--{option.name}); set it once")
        spelled[option.attr] = key
        values[option.attr] = option.from_file(value, f"{path}: {_key(key)} = {_toml(value)}")
    return values


def _key(key: str) -> str:
    return key if key and all(c.isalnum() or c in "-_" for c in key) else json.dumps(key, ensure_ascii=False)


def _toml(value: Any) -> str:
    """A value as it looks in the file (near enough for an error message)."""
    if isinstance(value, dict):
        return "{...} (a table)"
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):  # dates and times
        return str(value)


def _did_you_mean(key: str) -> str:
    close = difflib.get_close_matches(key.replace("_", "-"), [o.name for o in OPTIONS], n=1)
    return f" (did you mean {close[0]}?)" if close else ""
