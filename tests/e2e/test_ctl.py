"""End to end: the control script as an operator types it (issue 12, "The control script").

Against one running central system: ``--json`` after the command, an unknown
transaction, station or tag named as such (exit 3), a password that never
appears on the command line, and ``ctl ... | head`` ending quietly.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

from tests.support.chargepoint import ChargePoint
from tests.support.system import RUN, CentralSystem

pytestmark = pytest.mark.e2e


def _ctl(system: CentralSystem, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``run.py ctl`` without the --json that CentralSystem.ctl puts first."""
    return subprocess.run([sys.executable, RUN, "ctl", "--admin-port", str(system.admin_port), *args],
                          input=stdin, capture_output=True, text=True, timeout=60, cwd=str(system.tmp))


def test_json_is_accepted_after_the_command_too(csms: CentralSystem, station_id: str) -> None:
    csms.ctl_ok("station", "add", station_id)
    after = _ctl(csms, "station", "show", station_id, "--json")
    assert after.returncode == 0 and json.loads(after.stdout)["station"]["id"] == station_id
    human = _ctl(csms, "station", "show", station_id)
    assert human.returncode == 0 and not human.stdout.lstrip().startswith("{")


@pytest.mark.parametrize("args, what", [
    (("tx", "show", "987654321"), "unknown transaction: 987654321"),
    (("station", "show", "NO-SUCH-STATION"), "unknown station: NO-SUCH-STATION"),
    (("tag", "remove", "NO-SUCH-TAG"), "NO-SUCH-TAG"),
])
def test_an_unknown_transaction_station_or_tag_is_exit_3_and_says_so(csms: CentralSystem, args, what) -> None:
    result = _ctl(csms, *args, "--json")
    assert result.returncode == 3, result
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "NotFound" and what in error["description"]
    human = _ctl(csms, *args)
    assert human.returncode == 3 and what in human.stderr and human.stdout == ""


def test_set_password_reads_the_password_from_standard_input(csms: CentralSystem, station_id: str) -> None:
    csms.ctl_ok("station", "add", station_id)
    done = _ctl(csms, "station", "set-password", station_id, stdin="from-stdin-pw\n")
    assert done.returncode == 0, done
    with ChargePoint(csms.url, station_id, password="from-stdin-pw") as cp:
        assert cp.booted()["status"] == "Accepted"
    empty = _ctl(csms, "station", "set-password", station_id, stdin="")
    assert empty.returncode == 2 and "no password" in empty.stderr
    assert "from-stdin-pw" not in csms.log()


def test_a_reader_that_stops_early_ends_the_control_script_quietly(csms: CentralSystem) -> None:
    with sqlite3.connect(csms.db, timeout=30) as db:  # enough tags for more output than a pipe holds
        db.executemany("INSERT OR IGNORE INTO tags (id_key, id_tag, status, updated_at) VALUES (?, ?, 'Accepted', ?)",
                       [(f"pipe-tag-{n:05d}", f"PIPE-TAG-{n:05d}", "2026-12-06T00:00:00.000Z") for n in range(4000)])
    proc = subprocess.Popen([sys.executable, RUN, "ctl", "--admin-port", str(csms.admin_port), "tag", "list"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(csms.tmp))
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()  # as `| head -1` does, then the reader is gone
    proc.stdout.close()
    code = proc.wait(60)
    assert "id_tag" in first
    assert proc.stderr.read() == ""  # no BrokenPipeError traceback
    assert code == 0


def test_a_bad_environment_value_is_one_line_naming_the_option(tmp_path) -> None:
    import os

    env = {**os.environ, "CSMS_PORT": "abc"}
    done = subprocess.run([sys.executable, RUN, "--db", str(tmp_path / "x.db")], env=env, capture_output=True,
                          text=True, timeout=60, cwd=str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["run.py serve: error: CSMS_PORT='abc' is not a valid int (for --port)"]


@pytest.mark.parametrize("text, line", [
    ('port = "abc"\n', 'run.py serve: error: config.toml: port = "abc" is not a valid int (for --port)'),
    ("prot = 9000\n", "run.py serve: error: config.toml: unknown option prot (did you mean port?)"),
    ("port = \n", "run.py serve: error: config.toml: not valid TOML: Invalid value (at line 1, column 8)"),
])
def test_a_bad_config_file_is_one_line_naming_the_file_and_the_option(tmp_path, text: str, line: str) -> None:
    (tmp_path / "config.toml").write_text(text)
    done = subprocess.run([sys.executable, RUN, "--config", "config.toml", "--db", str(tmp_path / "x.db")],
                          capture_output=True, text=True, timeout=60, cwd=str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [line]
    assert not (tmp_path / "x.db").exists()  # refused before anything started


def test_a_missing_config_file_named_by_csms_config_is_one_line(tmp_path) -> None:
    import os

    env = {**os.environ, "CSMS_CONFIG": "nowhere.toml"}
    done = subprocess.run([sys.executable, RUN, "config", "show", "--json"], env=env, capture_output=True,
                          text=True, timeout=60, cwd=str(tmp_path))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "run.py config show: error: nowhere.toml: cannot read it: No such file or directory"]


def test_a_node_started_with_a_config_file_serves_its_values_and_config_show_says_where_each_came_from(
        tmp_path_factory) -> None:
    import os

    tmp = tmp_path_factory.mktemp("configfile")
    (tmp / "csms.toml").write_text('heartbeat-interval = 123\nlog_level = "WARNING"\nport = 1\n')
    system = CentralSystem(tmp, extra_args=["--config", "csms.toml"]).start()  # its --port flag wins over port = 1
    try:
        with ChargePoint(system.url, "CONFIGFILE-1") as cp:
            assert cp.booted()["interval"] == 123
    finally:
        system.stop()
    assert " INFO " not in system.log()  # log_level = "WARNING" from the file
    env = {**os.environ, "CSMS_HEARTBEAT_INTERVAL": "77"}
    shown = subprocess.run([sys.executable, RUN, "config", "show", "--config", "csms.toml", "--port", "9009", "--json"],
                           env=env, capture_output=True, text=True, timeout=60, cwd=str(tmp))
    assert shown.returncode == 0, shown
    document = json.loads(shown.stdout)
    assert document["config"] == {"file": "csms.toml", "source": "flag"}
    found = {name: (entry["value"], entry["source"]) for name, entry in document["options"].items()}
    assert found["port"] == (9009, "flag") and found["heartbeat_interval"] == (77, "env")
    assert found["log_level"] == ("WARNING", "file") and found["metrics_port"] == (9100, "default")
    human = subprocess.run([sys.executable, RUN, "config", "show", "--config", "csms.toml"],
                           capture_output=True, text=True, timeout=60, cwd=str(tmp))
    assert human.returncode == 0 and not human.stdout.lstrip().startswith("{")
    rows = {line.split()[0]: line.split()[1:] for line in human.stdout.splitlines()[2:]}
    assert rows["heartbeat-interval"] == ["123", "file"] and rows["port"] == ["1", "file"]


def test_the_control_script_finds_the_admin_port_in_the_file_named_by_csms_config(csms: CentralSystem) -> None:
    import os

    (csms.tmp / "ctl.toml").write_text(f"admin-port = {csms.admin_port}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CSMS_")} | {"CSMS_CONFIG": "ctl.toml"}
    done = subprocess.run([sys.executable, RUN, "ctl", "status", "--json"], env=env, capture_output=True, text=True,
                          timeout=60, cwd=str(csms.tmp))
    assert done.returncode == 0, done
    assert "stations_known" in json.loads(done.stdout)
    bad = subprocess.run([sys.executable, RUN, "ctl", "status"], env=env | {"CSMS_ADMIN_PORT": "abc"},
                         capture_output=True, text=True, timeout=60, cwd=str(csms.tmp))
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().splitlines() == ["csmsctl: CSMS_ADMIN_PORT='abc' is not a valid int (for --admin-port)"]


def test_run_py_help_lists_the_other_commands() -> None:
    done = subprocess.run([sys.executable, RUN, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    for command in ("run.py ctl --help", "run.py sim --help", "run.py bench --help", "run.py config show --help"):
        assert command in " ".join(done.stdout.split())


def test_remote_stop_of_a_transaction_not_active_on_that_station_asks_for_force(csms: CentralSystem, station_id: str) -> None:
    from tests.support.octt import nothing_received

    csms.ctl_ok("tag", "add", "CTL-TAG")
    answers = {"RemoteStopTransaction": lambda p: {"status": "Accepted"}}
    with ChargePoint(csms.url, station_id, handlers=answers) as cp, \
            ChargePoint(csms.url, station_id + "-B", handlers=answers) as other:
        cp.booted()
        other.booted()
        tx = cp.start(1, "CTL-TAG", 0)["transactionId"]
        for wrong, why in ((987654321, "is not known"), (tx, f"belongs to {station_id}")):
            target = station_id + "-B" if wrong == tx else station_id
            refused = _ctl(csms, "remote-stop", target, "--transaction", str(wrong), "--json")
            assert refused.returncode == 2, refused
            assert why in json.loads(refused.stdout)["error"]["description"] and "--force" in refused.stdout
        assert nothing_received(cp) and nothing_received(other)
        forced = _ctl(csms, "remote-stop", station_id, "--transaction", "987654321", "--force", "--json")
        assert forced.returncode == 0 and cp.wait_call("RemoteStopTransaction") == {"transactionId": 987654321}
        right = _ctl(csms, "remote-stop", station_id, "--transaction", str(tx), "--json")
        assert right.returncode == 0 and json.loads(right.stdout)["response"] == {"status": "Accepted"}
        assert cp.wait_call("RemoteStopTransaction") == {"transactionId": tx}


def test_db_backup_is_an_online_consistent_copy_that_a_new_node_starts_from(csms: CentralSystem, station_id: str,
                                                                             tmp_path, tmp_path_factory) -> None:
    import threading

    csms.ctl_ok("tag", "add", "BACKUP-TAG")
    copy = tmp_path / "backup.db"
    with ChargePoint(csms.url, station_id) as cp:
        cp.booted()
        tx = cp.start(1, "BACKUP-TAG", 100)["transactionId"]
        stop = threading.Event()

        def meter() -> None:  # the station keeps writing while the copy is taken
            n = 0
            while not stop.is_set() and n < 500:
                n += 1
                cp.call("MeterValues", {"connectorId": 1, "transactionId": tx, "meterValue": [
                    {"timestamp": "2026-12-06T10:00:00Z", "sampledValue": [{"value": str(n)}]}]})

        writer = threading.Thread(target=meter, daemon=True)
        writer.start()
        try:
            done = _ctl(csms, "db", "backup", str(copy), "--json")
        finally:
            stop.set()
            writer.join(30)
    assert done.returncode == 0, done
    result = json.loads(done.stdout)
    assert result["file"] == str(copy) and result["bytes"] == copy.stat().st_size > 0
    with sqlite3.connect(f"file:{copy}?mode=ro", uri=True) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT station_id FROM transactions WHERE id = ?", [tx]).fetchone() == (station_id,)
    again = _ctl(csms, "db", "backup", str(copy))
    assert again.returncode == 2 and "exists" in again.stderr
    # Restoring is starting from the copy: a new node on it knows the transaction.
    restored = CentralSystem(tmp_path_factory.mktemp("restored"), db=str(copy)).start()
    try:
        assert restored.ctl_ok("tx", "show", str(tx))["meter_start"] == 100
    finally:
        restored.stop()


def test_log_format_json_writes_one_object_per_line_naming_the_station(tmp_path_factory) -> None:
    system = CentralSystem(tmp_path_factory.mktemp("jsonlog"), extra_args=["--log-format", "json"]).start()
    try:
        with ChargePoint(system.url, "JSONLOG-1") as cp:
            assert cp.booted()["status"] == "Accepted"
            cp.send_raw('[2,"bad-1","Heartbeat",{"mood":"grumpy"}]')  # a WARNING about this station
            cp.wait_answer("bad-1")
    finally:
        system.stop()
    lines = [line for line in system.log().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert records and all({"time", "level", "logger", "message"} <= set(r) for r in records)
    about = [r for r in records if r.get("station") == "JSONLOG-1"]
    assert any(r["level"] == "WARNING" for r in about), about
    assert any("connected" in r["message"] for r in about)
