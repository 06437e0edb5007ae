"""actors.logformat: --log-format json is one object per line, naming the station when there is one."""

from __future__ import annotations

import json
import logging

from actors.logformat import JsonFormatter, formatter


def _record(msg: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            import sys

            exc_info = sys.exc_info()
    return logging.LogRecord("actors.host.station", logging.WARNING, __file__, 1, msg, args, exc_info)


def test_a_line_about_a_station_names_it_and_others_do_not():
    f = JsonFormatter()
    line = json.loads(f.format(_record("station %s: frame ignored: %s", "CP-7", "x")))
    assert line["station"] == "CP-7" and line["message"] == "station CP-7: frame ignored: x"
    assert line["level"] == "WARNING" and line["logger"] == "actors.host.station" and line["time"].endswith("+00:00")
    assert json.loads(f.format(_record("station %s connector 2: transaction 5 started", "CP-8")))["station"] == "CP-8"
    assert "station" not in json.loads(f.format(_record("station host 0 serving (pid 1)")))


def test_an_exception_is_one_field_of_the_same_line():
    out = JsonFormatter().format(_record("station CP-9: error handling %s", "Heartbeat", exc=True))
    assert "\n" not in out
    assert "ValueError: boom" in json.loads(out)["exception"]


def test_text_stays_the_default_format():
    assert formatter("text").format(_record("hello")).endswith("WARNING actors.host.station: hello")


def test_the_writer_of_a_station_host_is_not_taken_for_a_station():
    f = JsonFormatter()
    assert "station" not in json.loads(f.format(_record("station host writer: commit of %d events failed", 3)))
    assert "station" not in json.loads(f.format(_record("station host %d: the registry is gone; ending", 1)))
