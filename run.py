"""Entry point of the central system: ``serve`` (default), ``ctl``, ``sim``, ``bench``.

    python run.py [serve] [--host H] [--port 9000] [--metrics-port 9100] [--admin-port 1900]
                  [--db csms.db] [--heartbeat-interval 300] [--unknown-stations accept|reject|pending]
                  [--call-timeout 30] [--log-level INFO] ...
    python run.py ctl [--admin-port N] [--json] COMMAND [ARGS]
    python run.py sim --url ws://127.0.0.1:9000 --stations N --duration S [--rate R] [--ramp S] [--json]
    python run.py bench [--sizes 200,1000] ...

Every serve option also reads ``CSMS_<NAME>`` from the environment; the flag
wins. This module is the only one that reads ``os.environ``: it folds
everything into one frozen ``Settings`` passed down to the actors.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from dataclasses import fields

COMMANDS = ("serve", "ctl", "sim", "bench")
SHUTDOWN_DEADLINE = 10.0
INSTANCE_ENV = "CSMS_INSTANCE"
METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv.pop(0) if argv and argv[0] in COMMANDS else "serve"
    if command == "ctl":
        return ctl_main(argv)
    if command == "sim":
        from gateway.sim import simulator

        return simulator.main(argv)
    if command == "bench":
        from gateway.sim import bench

        return bench.main(argv)
    return serve(argv)


def ctl_main(argv: list[str] | None = None) -> int:
    from actors.control import client as control

    argv = list(sys.argv[1:] if argv is None else argv)
    return control.main(argv, default_admin_port=_env_int("CSMS_ADMIN_PORT", 1900))


# -- serve -----------------------------------------------------------------------------


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def serve_parser() -> argparse.ArgumentParser:
    from actors.settings import Settings

    defaults = Settings()
    env = os.environ
    parser = argparse.ArgumentParser(
        prog="run.py serve", description="Run the OCPP 1.6-J central system.",
        epilog="other commands: 'run.py ctl --help' (operate a running system), 'run.py sim --help' "
               "(simulated charge points), 'run.py bench --help' (benchmark against the peer baseline). "
               "Every option also reads CSMS_<NAME> from the environment (e.g. CSMS_PORT); the flag wins.",
    )

    def option(name: str, kind: type, help_text: str, **extra: object) -> None:
        attr = name.replace("-", "_")
        variable = "CSMS_" + attr.upper()
        default = env.get(variable, getattr(defaults, attr))
        if kind is bool:
            if variable in env and str(default).lower() not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                parser.exit(2, f"run.py serve: error: {variable}={env[variable]!r} is not a boolean (for --{name}: 1/0, true/false, yes/no, on/off)\n")
            default = str(default).lower() in ("1", "true", "yes", "on")
            parser.add_argument(f"--{name}", action=argparse.BooleanOptionalAction, default=default, help=help_text)
        else:
            try:
                value = kind(default)
            except ValueError:
                parser.exit(2, f"run.py serve: error: {variable}={env[variable]!r} is not a valid {kind.__name__} (for --{name})\n")
            choices = extra.get("choices")
            if variable in env and choices is not None and value not in choices:  # type: ignore[operator]
                parser.exit(2, f"run.py serve: error: {variable}={env[variable]!r}: choose from {', '.join(map(str, choices))} (for --{name})\n")  # type: ignore[call-overload]
            parser.add_argument(f"--{name}", type=kind, default=value, help=f"{help_text} (default: %(default)s)", **extra)  # type: ignore[arg-type]

    option("host", str, "address the OCPP listener binds")
    option("port", int, "OCPP-J WebSocket port")
    option("metrics-port", int, "Prometheus exposition port")
    option("admin-port", int, "actor-system admin port (loopback only)")
    option("api-port", int, "HTTP API port (keys: 'run.py ctl api-key create')")
    option("api-host", str, "address the HTTP API binds")
    option("db", str, "SQLite database file")
    option("heartbeat-interval", int, "seconds, returned in BootNotification.conf")
    option("unknown-stations", str, "accept: register unknown identities on their first upgrade; reject: HTTP 404; "
           "pending: HTTP 404 and listed for 'ctl station approve'", choices=["accept", "reject", "pending"])
    option("max-meter-values-per-message", int, "meterValue elements one MeterValues may carry (more: CALLERROR OccurenceConstraintViolation)")
    option("max-meter-values-per-minute", int, "meterValue elements one station may send per minute (more: CALLERROR GenericError, retried later)")
    option("meter-values-retention-days", float, "days meter values are kept before the scheduler prunes them; 0 keeps them for ever")
    option("unknown-per-minute", int, "new unknown identities each host registers or lists per minute")
    option("max-pending", int, "most identities listed for approval (--unknown-stations pending)")
    option("max-stations", int, "no unknown identity registers itself once this many stations are known")
    option("call-timeout", float, "seconds to wait for a charge point's answer")
    option("log-level", str, "DEBUG, INFO, WARNING or ERROR", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    option("log-format", str, "text lines, or one JSON object per line (time, level, logger, message, station)",
           choices=["text", "json"])
    option("hosts", int, "station-host processes; 0: one per core")
    option("ping-interval", float, "seconds between WebSocket pings; 0 disables")
    option("max-frame-size", int, "largest accepted WebSocket message in bytes")
    option("max-call-rate", int, "CALLs per second a connection may send before it is closed 1008; 0 disables")
    option("concurrent-tx", bool, "answer StartTransaction ConcurrentTx when the tag is already charging")
    option("boot-retry-interval", int, "interval returned with Pending/Rejected BootNotification.conf")
    option("per-station-labels", bool, "label the charging-limit gauge with station and connector (cardinality!)")
    parser.add_argument(
        "--data-transfer-vendor",
        action="append",
        default=[v for v in env.get("CSMS_DATA_TRANSFER_VENDOR", "").split(",") if v],
        metavar="VENDOR[:MSG1;MSG2]",
        help="accept DataTransfer from this vendorId (optionally only these messageIds); repeatable",
    )
    return parser


def build_settings(argv: list[str]):  # type: ignore[no-untyped-def]
    from actors.settings import Settings

    args = serve_parser().parse_args(argv)
    values = {f.name: getattr(args, f.name) for f in fields(Settings) if hasattr(args, f.name)}
    vendors = []
    for spec in args.data_transfer_vendor:
        vendor, _, ids = spec.partition(":")
        vendors.append((vendor, tuple(i for i in ids.split(";") if i)))
    values["data_transfer_vendors"] = tuple(vendors)
    values["log_level"] = args.log_level.upper()
    values["metrics_dir"] = os.environ.get(METRICS_ENV, "")
    values["parent_pid"] = os.getpid()
    if values.get("hosts", 0) <= 0:
        values["hosts"] = os.cpu_count() or 1
    return Settings(**values)


def serve(argv: list[str]) -> int:
    if "-h" in argv or "--help" in argv:
        serve_parser().print_help()
        return 0
    settings = build_settings(argv)
    # Every process of this node carries CSMS_INSTANCE=<admin port> (so leftovers
    # can be found by marker) and the metrics directory, which prometheus_client
    # reads at import: both must be in the environment at exec time.
    if os.environ.get(INSTANCE_ENV) != str(settings.admin_port) or not os.environ.get(METRICS_ENV):
        env = dict(os.environ)
        env[INSTANCE_ENV] = str(settings.admin_port)
        env[METRICS_ENV] = tempfile.mkdtemp(prefix=f"csms-metrics-{settings.admin_port}-")
        env["CSMS_OWNS_METRICS_DIR"] = "1"
        os.execve(sys.executable, [sys.executable, os.path.abspath(__file__), "serve", *argv], env)
    return _serve(settings)


def _raise_nofile(log: logging.Logger) -> None:
    """One descriptor per charge point: lift the soft NOFILE limit to the hard one
    (inherited by every process of the node). Many systems start services with a
    soft limit of 1024, which a host would reach at about a thousand stations."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard
    if hard == resource.RLIM_INFINITY:
        try:
            with open("/proc/sys/fs/nr_open") as f:  # an infinite soft limit is refused
                target = int(f.read())
        except (OSError, ValueError):
            return
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-files limit from %d: %s", soft, exc)
            return
    log.info("open-files limit: %s", target if soft < target else soft)


def _serve(settings) -> int:  # type: ignore[no-untyped-def]
    from actors.logformat import formatter

    logging.basicConfig(level=settings.log_level)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter(settings.log_format))
    log = logging.getLogger("csms")
    owns_metrics_dir = os.environ.get("CSMS_OWNS_METRICS_DIR") == "1"
    if not _port_free("127.0.0.1", settings.admin_port):
        log.error("admin port %d is in use: is another central system running?", settings.admin_port)
        return 1

    from thespian.actors import ActorSystem

    from actors.adapters import loopback, peercred
    from actors.messages import RegistryFailed, RegistryStarted, StartRegistry
    from actors.registry import GLOBAL_NAME, RegistryActor, instance_pids, kill_instance
    from storage import Store

    Store(settings.db).close()  # create and migrate here; actors open it with migrate_schema=False
    _raise_nofile(log)
    loopback.install()
    peercred.install()
    system = ActorSystem("multiprocTCPBase", {"Admin Port": settings.admin_port}, logDefs=_log_defs(settings.log_level, settings.log_format))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    code = 0

    def start_registry(retry_for: float = 0.0) -> RegistryStarted:
        deadline = time.monotonic() + retry_for
        while True:
            try:
                registry = system.createActor(RegistryActor, globalName=GLOBAL_NAME)
                break
            except Exception:
                # Restoring: the admin may still hold the dead registry's global name
                # until it has seen the child exit.
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)
        ready = system.ask(registry, StartRegistry(settings), 60)
        if isinstance(ready, RegistryFailed):
            raise RuntimeError(ready.reason)
        if not isinstance(ready, RegistryStarted):
            raise RuntimeError("the registry did not start")
        return ready

    try:
        ready = start_registry()
        admin_pid = _parent_of(ready.pid)
        log.info(
            "central system ready: OCPP ws://%s:%d/<chargePointId> on %d station hosts, metrics http://%s:%d/metrics, "
            "HTTP API http://%s:%d/api/v1/, admin port %d (loopback), db %s",
            settings.host, ready.port, settings.hosts, settings.host, settings.metrics_port,
            settings.api_host, settings.api_port, settings.admin_port, settings.db,
        )
        while not stop.wait(0.5):
            if _alive(ready.pid):
                continue
            # The registry was killed: its node is headless. End what is left of it
            # (hosts, scheduler, gateway, exporter; not the admin) and start it anew.
            log.error("the registry (pid %d) is gone: restarting the node's actors", ready.pid)
            # Keep the admin and its other children (Thespian's logger): the registry's
            # orphans are no longer the admin's children.
            keep = (os.getpid(), admin_pid, *(p for p in instance_pids(settings.admin_port) if _parent_of(p) == admin_pid))
            for pid in instance_pids(settings.admin_port):
                if pid not in keep:
                    _kill(pid)
            _wait_gone(settings.admin_port, keep=keep, timeout=5.0)
            ready = start_registry(retry_for=15.0)
            log.info("registry restored (pid %d)", ready.pid)
        log.info("stopping")
    except Exception as exc:
        log.error("cannot start the central system: %s", exc)
        code = 1
    finally:
        _shutdown(system, settings.admin_port, kill_instance)
        if owns_metrics_dir and settings.metrics_dir:
            shutil.rmtree(settings.metrics_dir, ignore_errors=True)
    return code


def _parent_of(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie is dead)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def _wait_gone(admin_port: int, *, keep: tuple[int, ...], timeout: float) -> None:
    from actors.registry import instance_pids

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and [p for p in instance_pids(admin_port) if p not in keep and _alive(p)]:
        time.sleep(0.05)


def _shutdown(system, admin_port: int, kill_instance) -> None:  # type: ignore[no-untyped-def]
    """Stop the actor system within SHUTDOWN_DEADLINE, then kill whatever is left."""
    done = threading.Thread(target=system.shutdown, daemon=True)
    done.start()
    done.join(SHUTDOWN_DEADLINE - 2.0)
    deadline = time.monotonic() + 1.0
    from actors.registry import instance_pids

    while time.monotonic() < deadline and [p for p in instance_pids(admin_port) if p != os.getpid() and _alive(p)]:
        time.sleep(0.05)
    kill_instance(admin_port, exclude=os.getpid())


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _log_defs(level: str, log_format: str = "text") -> dict:
    from actors.logformat import formatter_config

    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": formatter_config(log_format)},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain", "level": level}},
        "root": {"handlers": ["stderr"], "level": level},
    }


if __name__ == "__main__":
    sys.exit(main())
