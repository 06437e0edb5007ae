"""What a scrape of ``/metrics`` returns.

Two sources are joined at scrape time:

* the counters and histograms of every process, read from the multiprocess
  directory by prometheus_client's ``MultiProcessCollector``;
* the state gauges (stations known and connected, transactions active),
  computed by :class:`StateCollector` from a ``summary()`` callable (the
  exporter wires it to ``storage.Store.summary``).

Without a multiprocess directory (a single-process run) the default
``REGISTRY`` of the calling process stands in for the first source.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

__all__ = ["STATE_GAUGES", "StateCollector", "render"]

log = logging.getLogger(__name__)

Summary = Callable[[], Mapping[str, object]]

# summary() key -> (metric name, help)
STATE_GAUGES: tuple[tuple[str, str, str], ...] = (
    ("stations_known", "csms_stations_known", "Charge points known to the central system."),
    ("stations_connected", "csms_stations_connected", "Charge points connected now."),
    ("transactions_active", "csms_transactions_active", "Transactions in progress."),
    ("charging_limited_connectors", "csms_charging_limited_connectors",
     "Connectors (0 = whole charge point) with a charging-profile limit in force now."),
)
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
    return generate_latest(registry), CONTENT_TYPE_LATEST
