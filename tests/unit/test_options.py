"""Serve options from flag, environment, config file and default (issue 12, "Configuration file")."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from actors import options
from actors.options import OptionError


def _resolve(argv: list[str], env: dict[str, str] | None = None) -> options.Resolved:
    parser = argparse.ArgumentParser()
    options.add_arguments(parser)
    return options.resolve(parser.parse_args(argv), env or {})


def _file(tmp_path: Path, text: str, name: str = "config.toml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_a_flag_wins_over_the_environment_which_wins_over_the_file_which_wins_over_the_default(tmp_path: Path) -> None:
    config = _file(tmp_path, 'port = 9001\nhost = "10.0.0.1"\ndb = "file.db"\n')
    resolved = _resolve(["--config", config, "--port", "9003"], {"CSMS_PORT": "9002", "CSMS_HOST": "10.0.0.2"})
    assert (resolved.values["port"], resolved.sources["port"]) == (9003, "flag")
    assert (resolved.values["host"], resolved.sources["host"]) == ("10.0.0.2", "env")
    assert (resolved.values["db"], resolved.sources["db"]) == ("file.db", "file")
    assert (resolved.values["metrics_port"], resolved.sources["metrics_port"]) == (9100, "default")
    assert resolved.config == config and resolved.config_source == "flag"


def test_every_settings_field_an_operator_sets_is_an_option() -> None:
    from dataclasses import fields

    from actors.settings import Settings

    internal = {"metrics_dir", "parent_pid", "data_transfer_vendors"}  # set by run.py, or from data-transfer-vendor
    assert {f.name for f in fields(Settings)} - internal <= {o.attr for o in options.OPTIONS}


def test_csms_config_names_the_file_and_the_flag_names_another(tmp_path: Path) -> None:
    one, two = _file(tmp_path, "port = 1111\n", "one.toml"), _file(tmp_path, "port = 2222\n", "two.toml")
    from_env = _resolve([], {"CSMS_CONFIG": one})
    assert from_env.values["port"] == 1111 and from_env.config_source == "env"
    assert _resolve(["--config", two], {"CSMS_CONFIG": one}).values["port"] == 2222


def test_keys_may_be_spelled_as_the_flag_or_as_the_variable(tmp_path: Path) -> None:
    resolved = _resolve(["--config", _file(tmp_path, "metrics-port = 9101\nheartbeat_interval = 60\n")])
    assert resolved.values["metrics_port"] == 9101 and resolved.values["heartbeat_interval"] == 60


def test_one_option_spelled_both_ways_in_one_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match=r"metrics-port and metrics_port are the same option \(--metrics-port\)"):
        _resolve(["--config", _file(tmp_path, "metrics-port = 1\nmetrics_port = 2\n")])


def test_typed_values_from_the_file_booleans_floats_and_lists(tmp_path: Path) -> None:
    text = 'concurrent-tx = true\ncall-timeout = 5\nping-interval = 2.5\ndata-transfer-vendor = ["ACME:a;b", "X"]\n'
    resolved = _resolve(["--config", _file(tmp_path, text)])
    assert resolved.values["concurrent_tx"] is True
    assert resolved.values["call_timeout"] == 5.0 and isinstance(resolved.values["call_timeout"], float)
    assert resolved.values["ping_interval"] == 2.5
    assert resolved.values["data_transfer_vendor"] == ["ACME:a;b", "X"]


@pytest.mark.parametrize("line, message", [
    ('port = "abc"', 'config.toml: port = "abc" is not a valid int (for --port)'),
    ('port = "9000"', 'config.toml: port = "9000" is not a valid int (for --port)'),
    ("port = 9000.5", "config.toml: port = 9000.5 is not a valid int (for --port)"),
    ("port = true", "config.toml: port = true is not a valid int (for --port)"),
    ("host = 5", "config.toml: host = 5 is not a valid string (for --host)"),
    ('call-timeout = "soon"', 'config.toml: call-timeout = "soon" is not a valid float (for --call-timeout)'),
    ('concurrent-tx = "yes"', 'config.toml: concurrent-tx = "yes" is not a boolean (for --concurrent-tx: true or false)'),
    ('unknown-stations = "maybe"',
     'config.toml: unknown-stations = "maybe": choose from accept, reject, pending (for --unknown-stations)'),
    ("data-transfer-vendor = [1]",
     "config.toml: data-transfer-vendor = [1] is not a string or a list of strings (for --data-transfer-vendor)"),
    ("prot = 9000", "config.toml: unknown option prot (did you mean port?)"),
    ("[serve]\nport = 9000", "config.toml: unknown option serve"),
    ("config = 'other.toml'", "config.toml: unknown option config"),
])
def test_a_bad_value_in_the_file_names_the_file_the_key_and_the_option(tmp_path: Path, monkeypatch, line: str,
                                                                      message: str) -> None:
    monkeypatch.chdir(tmp_path)
    _file(tmp_path, line + "\n")
    with pytest.raises(OptionError) as raised:
        _resolve(["--config", "config.toml"])
    assert str(raised.value) == message


def test_a_file_that_is_not_toml_or_cannot_be_read_is_one_line(tmp_path: Path) -> None:
    broken = _file(tmp_path, "port = \n")
    with pytest.raises(OptionError, match=r"config.toml: not valid TOML: .*line 1"):
        _resolve(["--config", broken])
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe")
    with pytest.raises(OptionError, match=r"binary.toml: not valid TOML: not UTF-8"):
        _resolve(["--config", str(binary)])
    with pytest.raises(OptionError, match=r"missing.toml: cannot read it: No such file or directory"):
        _resolve(["--config", str(tmp_path / "missing.toml")])


@pytest.mark.parametrize("env, message", [
    ({"CSMS_PORT": "abc"}, "CSMS_PORT='abc' is not a valid int (for --port)"),
    ({"CSMS_CONCURRENT_TX": "maybe"},
     "CSMS_CONCURRENT_TX='maybe' is not a boolean (for --concurrent-tx: 1/0, true/false, yes/no, on/off)"),
    ({"CSMS_LOG_FORMAT": "xml"}, "CSMS_LOG_FORMAT='xml': choose from text, json (for --log-format)"),
])
def test_a_bad_environment_value_names_the_variable_and_the_option(env: dict[str, str], message: str) -> None:
    with pytest.raises(OptionError) as raised:
        _resolve([], env)
    assert str(raised.value) == message


def test_the_environment_gives_booleans_and_comma_separated_vendors() -> None:
    resolved = _resolve([], {"CSMS_PER_STATION_LABELS": "on", "CSMS_DATA_TRANSFER_VENDOR": "A,B:m1;m2"})
    assert resolved.values["per_station_labels"] is True
    assert resolved.values["data_transfer_vendor"] == ["A", "B:m1;m2"]


def test_values_named_like_a_secret_are_masked_when_shown() -> None:
    assert options.is_secret("api-key") and options.is_secret("api_secret") and options.is_secret("station-password")
    assert not options.is_secret("tls-key")  # the file's name, shown; the key stays in the file
    assert not any(option.secret for option in options.OPTIONS)  # none today
    resolved = options.Resolved({"api_secret": "hunter2", "port": 9000, "db_password": ""}, {}, None, None)
    assert resolved.shown("api_secret") == "***" and resolved.shown("port") == 9000
    assert resolved.shown("db_password") == ""  # nothing set, nothing to hide


def test_the_readme_example_file_is_accepted(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    example = readme.split("```toml\n", 1)[1].split("```", 1)[0]
    resolved = _resolve(["--config", _file(tmp_path, example)])
    assert resolved.sources["unknown_stations"] == "file" and resolved.values["unknown_stations"] == "pending"
    assert resolved.values["data_transfer_vendor"] == ["ACME", "Contoso:msg1;msg2"]


def test_the_control_script_finds_the_admin_port_in_the_environment_then_the_config_file(tmp_path: Path) -> None:
    config = _file(tmp_path, "admin-port = 1901\nport = 9001\n")
    assert options.admin_port({}) == 1900
    assert options.admin_port({"CSMS_CONFIG": config}) == 1901
    assert options.admin_port({"CSMS_CONFIG": config, "CSMS_ADMIN_PORT": "1902"}) == 1902
    assert options.admin_port({"CSMS_CONFIG": _file(tmp_path, "port = 9001\n", "other.toml")}) == 1900
    with pytest.raises(OptionError, match="CSMS_ADMIN_PORT='x' is not a valid int"):
        options.admin_port({"CSMS_ADMIN_PORT": "x"})
