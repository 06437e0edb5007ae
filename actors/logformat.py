"""Log line formats: ``--log-format text`` (the default) or ``json``, one object per line.

The JSON form is for log shippers (Loki, Elasticsearch, CloudWatch): ``time``
(UTC, ISO 8601), ``level``, ``logger``, ``message``, ``station`` when the
line is about one charge point (every such line starts "station ID: ..."),
and ``exception`` with the traceback text when there is one.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timezone

TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_STATION = re.compile(r"^station (\S+?)(?::| connector \S+:) ")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        station = _STATION.match(message)
        if station:
            line["station"] = station.group(1)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False)


def formatter_config(log_format: str) -> dict[str, object]:
    """The ``formatters`` entry of a logging dictConfig for ``log_format``."""
    if log_format == "json":
        return {"()": "actors.logformat.JsonFormatter"}
    return {"format": TEXT}


def formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT)
