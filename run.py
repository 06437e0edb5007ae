"""Entry point of the central system: ``serve`` (default), ``ctl``, ``sim``, ``bench``, ``config show``.

    python run.py [serve] [--host H] [--port 9000] [--metrics-port 9100] [--admin-port 1900]
                  [--db csms.db] [--heartbeat-interval 300] [--unknown-stations accept|reject|pending]
                  [--call-timeout 30] [--log-level INFO] ...
    python run.py ctl [--admin-port N] [--json] COMMAND [ARGS]
    python run.py sim --url ws://127.0.0.1:9000 --stations N --duration S [--rate R] [--ramp S] [--json]
    python run.py bench [--sizes 200,1000] ...
    python run.py config show [--json] [--config FILE] [serve options]

Every serve option also reads ``CSMS_<NAME>`` from the environment and the
TOML file named by ``--config`` (or ``CSMS_CONFIG``); the flag wins, then the
environment, then the file (``actors.options``). This module is the only one
that reads ``os.environ``: it folds everything into one frozen ``Settings``
passed down to the actors.
"""

from __future__ import annotations

import argparse
import json
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
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported lazily at run time: `run.py ctl` and `sim` start faster without them
    from actors.options import Resolved
    from actors.settings import Settings

COMMANDS = ("serve", "ctl", "sim", "bench", "config")
SHUTDOWN_DEADLINE = 10.0
STOP_NOTICE_TIMEOUT = 0.5  # the registry's answer to StopNode, within SHUTDOWN_DEADLINE
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
    if command == "config":
        return config_main(argv)
    return serve(argv)


def ctl_main(argv: list[str] | None = None) -> int:
    """``run.py ctl`` / ``csmsctl``: the node's admin port as serve finds it, unless --admin-port says."""
    from actors import options
    from actors.control import client as control

    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a == "--admin-port" or a.startswith("--admin-port=") for a in argv):
        return control.main(argv)
    try:
        port = options.admin_port(os.environ)
    except options.OptionError as error:
        return control.usage_error(f"csmsctl: {error}", as_json="--json" in argv)
    return control.main(argv, default_admin_port=port)


# -- serve -----------------------------------------------------------------------------


def serve_parser(prog: str = "run.py serve") -> argparse.ArgumentParser:
    from actors import options

    parser = argparse.ArgumentParser(
        prog=prog, description="Run the OCPP 1.6-J central system.",
        epilog="other commands: 'run.py ctl --help' (operate a running system), 'run.py sim --help' "
               "(simulated charge points), 'run.py bench --help' (benchmark against the peer baseline), "
               "'run.py config show --help' (the settings a start would use, and where each comes from). "
               "Every option also reads CSMS_<NAME> from the environment (e.g. CSMS_PORT) and the --config "
               "file; the flag wins, then the environment, then the file.",
    )
    options.add_arguments(parser)
    return parser


def resolve_options(argv: list[str], prog: str = "run.py serve",
                    parser: argparse.ArgumentParser | None = None) -> tuple[argparse.Namespace, Resolved]:
    """Flags, environment, config file and defaults, each value with its source; a bad one: one line, exit 2."""
    from actors import options

    parser = parser or serve_parser(prog)
    args = parser.parse_args(argv)
    try:
        return args, options.resolve(args, os.environ)
    except options.OptionError as error:
        parser.exit(2, f"{prog}: error: {error}\n")


def settings_from(resolved: Resolved) -> Settings:
    """The frozen Settings a node runs with, from resolved option values."""
    from actors.settings import Settings

    values = {f.name: resolved.values[f.name] for f in fields(Settings) if f.name in resolved.values}
    vendors = []
    for spec in resolved.values["data_transfer_vendor"]:
        vendor, _, ids = spec.partition(":")
        vendors.append((vendor, tuple(i for i in ids.split(";") if i)))
    values["data_transfer_vendors"] = tuple(vendors)
    values["log_level"] = values["log_level"].upper()
    values["metrics_dir"] = os.environ.get(METRICS_ENV, "")
    values["parent_pid"] = os.getpid()
    if values.get("hosts", 0) <= 0:
        values["hosts"] = os.cpu_count() or 1
    return Settings(**values)


def _tls_problem(settings: Settings) -> str | None:
    """Why the TLS options cannot serve, or None (checked before anything starts)."""
    cert, key = settings.tls_cert, settings.tls_key
    if not (cert or key):
        if settings.tls_client_ca:
            return "--tls-client-ca needs --tls-cert and --tls-key (client certificates are checked over TLS)"
        if settings.plain_port:
            return "--plain-port is for a plain port beside a TLS --port: give --tls-cert and --tls-key"
        return None
    if not (cert and key):
        return "--tls-cert and --tls-key go together"
    if settings.plain_port == settings.port:
        return "--plain-port must differ from --port"
    from gateway.tls import TlsConfigError, server_context

    try:
        server_context(cert, key, settings.tls_client_ca)
    except TlsConfigError as exc:
        return str(exc)
    return None


def config_main(argv: list[str]) -> int:
    """``run.py config show [--json] [serve options]``: every option, its value and where it came from."""
    usage = "usage: run.py config show [--json] [--config FILE] [serve options]\n"
    if not argv or argv[0] in ("-h", "--help"):
        (sys.stdout if argv else sys.stderr).write(usage)
        return 0 if argv else 2
    if argv[0] != "show":
        sys.stderr.write(f"{usage}run.py config: error: unknown subcommand {argv[0]!r} (choose from show)\n")
        return 2
    parser = serve_parser("run.py config show")
    parser.description = ("Print the settings 'run.py serve' with the same options would start with: every option, "
                          "its value and where it came from (flag, env, file or default). Secrets are masked.")
    parser.add_argument("--json", action="store_true", help="print exactly one JSON document")
    args, resolved = resolve_options(argv[1:], "run.py config show", parser)
    shown = {attr: resolved.shown(attr) for attr in resolved.values}
    shown["hosts"] = settings_from(resolved).hosts  # what serve starts with: 0 is one per core
    config = None if resolved.config is None else {"file": resolved.config, "source": resolved.config_source}
    if args.json:
        text = json.dumps({"config": config,
                           "options": {a: {"value": v, "source": resolved.sources[a]} for a, v in shown.items()}})
    else:
        named = "none" if config is None else \
            f"{config['file']} (from {'--config' if config['source'] == 'flag' else 'CSMS_CONFIG'})"
        rows = [("option", "value", "source")]
        rows += [(a.replace("_", "-"), _shown_value(v), resolved.sources[a]) for a, v in shown.items()]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
        text = "\n".join([f"config file: {named}", *lines])
    try:
        print(text)
    except BrokenPipeError:  # `config show | head`: the reader went away, say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _shown_value(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "-"
    return str(value)


def build_settings(argv: list[str]) -> Settings:
    return settings_from(resolve_options(argv)[1])


def serve(argv: list[str]) -> int:
    if "-h" in argv or "--help" in argv:
        serve_parser().print_help()
        return 0
    settings = build_settings(argv)
    problem = _tls_problem(settings)
    if problem:
        serve_parser().exit(2, f"run.py serve: error: {problem}\n")
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
    stopped_by: list[str] = []

    def on_signal(signum: int, _frame: object) -> None:
        stopped_by.append(signal.Signals(signum).name)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    code = 0
    registry = None

    def start_registry(retry_for: float = 0.0) -> RegistryStarted:
        nonlocal registry
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
            "central system ready: OCPP %s://%s:%d/<chargePointId>%s on %d station hosts, metrics http://%s:%d/metrics, "
            "HTTP API http://%s:%d/api/v1/, admin port %d (loopback), db %s",
            "wss" if settings.tls_cert else "ws", settings.host, ready.port,
            f" and ws://{settings.host}:{settings.plain_port}/<chargePointId>" if settings.plain_port else "",
            settings.hosts, settings.host, settings.metrics_port,
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
        why = stopped_by[0] if stopped_by else "asked to"
        log.info("stopping (%s)", why)
        if _alive(ready.pid):
            _tell_registry_stopping(system, registry, why, log)
    except Exception as exc:
        log.error("cannot start the central system: %s", exc)
        code = 1
    finally:
        _shutdown(system, settings.admin_port, kill_instance)
        if owns_metrics_dir and settings.metrics_dir:
            shutil.rmtree(settings.metrics_dir, ignore_errors=True)
    return code


def _tell_registry_stopping(system, registry, why: str, log: logging.Logger) -> None:  # type: ignore[no-untyped-def]
    """Before the actor system ends them: the registry is not to take its children's
    ends for crashes (and restart them) while the node stops. Briefly: the whole stop
    has SHUTDOWN_DEADLINE, and a registry that does not answer is stopped anyway."""
    from actors.messages import NodeStopping, StopNode

    if registry is None:
        return
    try:
        confirmed = isinstance(system.ask(registry, StopNode(why), STOP_NOTICE_TIMEOUT), NodeStopping)
    except Exception:  # the admin may be going too (a signal to the whole group)
        confirmed = False
    if not confirmed:
        log.warning("the registry did not confirm the stop within %.1f s; stopping anyway", STOP_NOTICE_TIMEOUT)


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
    done.join(SHUTDOWN_DEADLINE - 2.0 - STOP_NOTICE_TIMEOUT)
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
