"""The folders show the architecture (issue 8, "Layout"): the imports between them hold.

Each check imports modules in a fresh interpreter and looks at ``sys.modules``,
so what is loaded lazily at run time counts as well as what a module names at
its top.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _modules(package: str) -> list[str]:
    path = ROOT / package.replace(".", "/")
    return [package] + [f"{package}.{m.name}" for m in pkgutil.iter_modules([str(path)]) if not m.ispkg]


def _loaded_after_importing(modules: list[str]) -> set[str]:
    script = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout))


SERVER = ["run", "actors.registry", "actors.host.actor", "actors.scheduler", "actors.exporter",
          "gateway.gateway", *_modules("storage"), *_modules("metrics")]


def test_the_server_never_imports_the_simulator_or_the_control_client() -> None:
    loaded = _loaded_after_importing(SERVER)
    assert "actors.host.worker" in loaded and "actors.ocpp.core" in loaded  # the check sees the server
    assert not {m for m in loaded if m.startswith(("gateway.sim", "actors.control"))}


PEER_SCRIPT = "gateway.sim.peer_central_system"  # a script the benchmark runs, serving on import


def test_the_simulator_imports_nothing_of_the_server() -> None:
    loaded = _loaded_after_importing([m for m in _modules("gateway.sim") if m != PEER_SCRIPT])
    assert "gateway.sim.station" in loaded
    server = {m for m in loaded if m.split(".")[0] in ("actors", "storage", "metrics")} | {
        m for m in loaded if m.startswith("gateway.") and not m.startswith("gateway.sim")}
    assert not server


def test_the_peer_baseline_imports_only_libraries() -> None:
    import ast

    tree = ast.parse((ROOT / (PEER_SCRIPT.replace(".", "/") + ".py")).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert "ocpp" in imported and "websockets" in imported
    assert not imported & {"actors", "gateway", "storage", "metrics", "run"}


def test_only_the_adapters_reach_into_thespian_internals() -> None:
    offenders = []
    for path in ROOT.glob("**/*.py"):
        relative = path.relative_to(ROOT)
        if relative.parts[0] in (".venv", "tests") or relative.parts[:2] == ("actors", "adapters"):
            continue
        text = path.read_text()
        if "thespian.system" in text:
            offenders.append(str(relative))
    assert offenders == []


# The OCPP logic does no I/O (issue 8, "One pass per frame"): what it may import.
# cryptography: X.509 parsing and signing in memory (the CA's decisions, actors.ocpp.pki); the
# files of the CA are read by actors.certificate_authority, outside the OCPP logic.
OCPP_MAY_IMPORT = ("actors.ocpp", "actors.errors", "actors.messages", "actors.settings", "storage.timefmt",
                   "ocpp", "jsonschema", "cryptography")
IO_MODULES = {"sqlite3", "socket", "asyncio", "select", "selectors", "subprocess", "threading", "time",
              "multiprocessing", "http", "urllib", "ssl", "fcntl", "shutil", "tempfile", "random"}


def _imports(path: Path) -> set[str]:
    import ast

    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):  # function-level imports count too
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names if node.module in ("actors", "storage"))
    return found - {"__future__"}


def test_the_ocpp_logic_imports_no_io_no_storage_and_no_metrics() -> None:
    checked = sorted((ROOT / "actors" / "ocpp").glob("*.py")) + [
        ROOT / "actors" / f"{name}.py" for name in ("errors", "messages", "settings")]
    offenders = {}
    for path in checked:
        bad = set()
        for name in _imports(path):
            top = name.split(".")[0]
            if top in sys.stdlib_module_names:
                if top in IO_MODULES:
                    bad.add(name)
            elif not name.startswith(OCPP_MAY_IMPORT) and name not in ("actors", "storage"):
                bad.add(name)
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert len(checked) > 10 and not offenders


def test_the_import_check_sees_a_store_or_a_metric_import(tmp_path: Path) -> None:
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text("def f():\n    import metrics\n    from storage import Store\n    import time\n")
    assert {"metrics", "storage", "storage.Store", "time"} <= _imports(sneaky)
