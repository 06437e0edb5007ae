"""What a scrape of ``/metrics`` returns.

Two sources are joined at scrape time:

* the counters and histograms of every process, read from the multiprocess
  directory by prometheus_client's ``MultiProcessCollector``;
* the state gauges (stations known, connected and silent, transactions
  active, connectors by status and error code, the database's disk),
  computed by :class:`StateCollector` from a ``summary()`` callable (the
  exporter wires it to storage, in its own process);
* ``csms_build_info``, the version of what runs.

Without a multiprocess directory (a single-process run) the default
``REGISTRY`` of the calling process stands in for the first source.
"""

from __future__ import annotations

import logging
import platform
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import cache
from importlib import metadata

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from metrics.catalogue import CONNECTOR_ERROR_CODES, CONNECTOR_STATUSES

__all__ = ["STATE_GAUGES", "BuildInfo", "StateCollector", "render"]

log = logging.getLogger(__name__)

Summary = Callable[[], Mapping[str, object]]

# summary() key -> (metric name, help)
STATE_GAUGES: tuple[tuple[str, str, str], ...] = (
    ("stations_known", "csms_stations_known", "Charge points known to the central system."),
    ("stations_connected", "csms_stations_connected", "Charge points connected now."),
    ("transactions_active", "csms_transactions_active", "Transactions in progress."),
    ("charging_limited_connectors", "csms_charging_limited_connectors",
     "Connectors (0 = whole charge point) with a charging-profile limit in force now."),
    ("certificates_expiring", "csms_certificates_expiring",
     "Certificates the node's CA issued to charge points (not refused by them) that expire within 30 days."),
    ("database_bytes", "csms_database_bytes", "Size of the SQLite database with its write-ahead log."),
    ("database_filesystem_free_bytes", "csms_database_filesystem_free_bytes",
     "Bytes free for the service on the filesystem that holds the database."),
    ("database_filesystem_size_bytes", "csms_database_filesystem_size_bytes",
     "Size of the filesystem that holds the database."),
)
CONNECTORS_GAUGE = "csms_connectors"
CONNECTOR_ERRORS_GAUGE = "csms_connector_errors"
SILENT_GAUGE = "csms_stations_silent"
LIMIT_GAUGE = "csms_charging_limit_amperes"


class StateCollector(Collector):
    """Gauges computed at scrape time from ``summary()``.

    ``summary()`` returns ``{"stations_known": int, "stations_connected": int,
    "transactions_active": int}``. A key it leaves out is not exposed; a
    ``summary()`` that raises is logged and the gauges are skipped, so the rest
    of the scrape still succeeds.
    """

    def __init__(self, summary: Summary) -> None:
        self._summary = summary

    def describe(self) -> Iterable[Metric]:
        # Lets a registry check names without calling summary() at register time.
        return [GaugeMetricFamily(name, doc) for _key, name, doc in STATE_GAUGES]

    def collect(self) -> Iterator[Metric]:
        try:
            values = self._summary()
        except Exception:
            log.error("state summary failed; state gauges skipped in this scrape", exc_info=True)
            return
        for key, name, doc in STATE_GAUGES:
            value = values.get(key)
            if value is None:
                continue
            yield GaugeMetricFamily(name, doc, value=float(value))  # type: ignore[arg-type]
        limits = values.get("charging_limits")
        if limits is not None:  # only when the operator enabled per-station labels
            family = GaugeMetricFamily(
                LIMIT_GAUGE, "Charging limit in force now per connector, in A (composite of installed profiles).",
                labels=["station", "connector"],
            )
            for item in limits:  # type: ignore[union-attr, attr-defined]
                family.add_metric([str(item["station"]), str(item["connector"])], float(item["limit_a"]))
            yield family
        connectors = values.get("connectors")
        if connectors is not None:
            yield from connector_families(connectors)  # type: ignore[arg-type]
        silent = values.get("stations_silent")
        if silent is not None:
            family = GaugeMetricFamily(
                SILENT_GAUGE, "Charge points once accepted that sent nothing for more than twice their "
                "heartbeat interval, by whether their connection is still open.", labels=["connected"])
            for connected in (True, False):
                family.add_metric(["true" if connected else "false"], float(silent.get(connected, 0)))  # type: ignore[attr-defined]
            yield family


def connector_families(rows: Iterable[Mapping[str, object]]) -> Iterator[Metric]:
    """``csms_connectors{status}`` and ``csms_connector_errors{error_code}`` from counted rows.

    Every OCPP status and error code is exposed, at 0 when no connector has
    it, so that a query for Faulted has a series before the first fault; a
    value outside OCPP 1.6 (or none yet) is folded into "other" (bounded).
    """
    by_status = dict.fromkeys(sorted(CONNECTOR_STATUSES), 0.0)
    by_error = dict.fromkeys(sorted(CONNECTOR_ERROR_CODES - {"NoError"}), 0.0)
    for row in rows:
        status, code, n = row.get("status"), row.get("error_code"), float(row["n"])  # type: ignore[arg-type]
        key = status if status in CONNECTOR_STATUSES else "other"
        by_status[key] = by_status.get(key, 0.0) + n
        if code is not None and code != "NoError":
            key = code if code in CONNECTOR_ERROR_CODES else "other"
            by_error[key] = by_error.get(key, 0.0) + n
    family = GaugeMetricFamily(CONNECTORS_GAUGE, "Connectors of connected charge points by the status they "
                               "last reported (connector 0, the charge point itself, not included).",
                               labels=["status"])
    for status, n in by_status.items():
        family.add_metric([status], n)
    yield family
    family = GaugeMetricFamily(CONNECTOR_ERRORS_GAUGE, "Connectors of connected charge points whose last "
                               "StatusNotification carried this error code (NoError not counted).",
                               labels=["error_code"])
    for code, n in by_error.items():
        family.add_metric([code], n)
    yield family


@cache
def _versions() -> tuple[str, str, str]:
    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "unknown"

    return version("csms"), platform.python_version(), version("thespian")


class BuildInfo(Collector):
    """``csms_build_info{version, python, thespian} 1``: what runs, for dashboards and upgrades."""

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily("csms_build_info", "The running central system: package version, Python "
                                   "and Thespian versions (always 1).", labels=["version", "python", "thespian"])
        family.add_metric(list(_versions()), 1.0)
        yield family


class _Forward(Collector):
    """Forwards the metrics of another registry (the single-process fallback)."""

    def __init__(self, source: CollectorRegistry) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        return iter(self._source.collect())


def render(summary: Summary, *, multiproc_dir: str | None = None) -> tuple[bytes, str]:
    """Return the body and content type of one scrape.

    ``multiproc_dir`` names the multiprocess directory; when it is None,
    prometheus_client looks at ``PROMETHEUS_MULTIPROC_DIR`` itself, and when
    that is unset too the default ``REGISTRY`` of this process is exposed.
    """
    registry = CollectorRegistry()
    try:
        MultiProcessCollector(registry, path=multiproc_dir or None)
    except ValueError:
        if multiproc_dir:
            log.error("metrics directory %r is missing; exposing this process only", multiproc_dir)
        registry.register(_Forward(REGISTRY))
    registry.register(StateCollector(summary))
    registry.register(BuildInfo())
    return generate_latest(registry), CONTENT_TYPE_LATEST
