"""Prometheus metrics: counted as things happen, or read from the running system at scrape time.

One CollectorRegistry per process, owned by the composition root (no module-level state).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from controlplane.translate.common import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, short_type

MAX_ENDPOINT_SERIES = 1000
"""Per-endpoint gauges are exported for at most this many (service, endpoint) pairs, in name order.

Only endpoints of the config are exported (addresses an Envoy pushes that are not configured are
ignored), so the count is bounded by the config; the cap keeps a large mesh from making every
scrape heavy. `controlplane_endpoint_series_omitted` says how many pairs were left out.
"""
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class Readings:
    """Values read at scrape time from the running system."""

    connected: Callable[[], int]
    behind: Callable[[], int]
    config_valid: Callable[[], bool]
    source_age: Callable[[], Mapping[str, float]]
    """Source name -> seconds since it was last read or heard from."""
    registrations: Callable[[], int]
    quarantined: Callable[[], int]
    services: Callable[[], Mapping[str, tuple[float, float, float | None]]] = dict
    """Per service, over the last minute: (requests/s, error ratio, p99 ms or None)."""


@dataclass(frozen=True)
class _TypeSeries:
    """The labelled series of one xDS resource type."""

    pushes: Counter
    nacks: Counter
    round_trip: Histogram
    convergence: Histogram


class Metrics:
    """The metrics of one control-plane process; also the xDS server's observer."""

    def __init__(self, readings: Readings) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.pushes = Counter("controlplane_xds_pushes", "xDS responses sent, by resource type", ["type"], registry=r)
        self.nacks = Counter("controlplane_xds_nacks", "xDS responses Envoys rejected, by type", ["type"], registry=r)
        # Every type's series exists from the start at 0, so Prometheus' increase() sees the
        # first NACK (a series that first appears at 1 has no increase).
        for type_url in (CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE):
            self.pushes.labels(short_type(type_url))
            self.nacks.labels(short_type(type_url))
        self.round_trip = Histogram(
            "controlplane_xds_push_round_trip_seconds",
            "Response sent until ACKed",
            ["type"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.convergence = Histogram(
            "controlplane_xds_convergence_seconds",
            "Config published until a proxy ACKed it",
            ["type"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.build = Histogram(
            "controlplane_snapshot_build_seconds",
            "Validate, translate and snapshot a config",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.rejected = Counter("controlplane_config_rejections", "Config edits refused as invalid", registry=r)
        self.alert_counts: Callable[[], Mapping[str, int]] = dict
        """Firing alerts by name (set by the composition root once alerts exist)."""
        self.endpoint_figures: Callable[[], Mapping[tuple[str, str], tuple[float, float, int]]] = dict
        """Per (service, endpoint), last minute: (requests/s, error ratio, Envoys that have it unhealthy)."""
        r.register(_Gauges(readings, lambda: self.alert_counts()))
        r.register(_EndpointGauges(lambda: self.endpoint_figures()))
        self._by_type: dict[str, _TypeSeries] = {}

    def pushed(self, type_url: str) -> None:
        self._series(type_url).pushes.inc()

    def acked(self, type_url: str, round_trip: float, since_publish: float) -> None:
        series = self._series(type_url)
        series.round_trip.observe(round_trip)
        series.convergence.observe(since_publish)

    def _series(self, type_url: str) -> _TypeSeries:
        """The per-type series, looked up by label once per type rather than on every push and ACK
        (prometheus_client takes a lock and builds the label key each time: 50 Envoys, 100 calls
        per change). Only the four served types are ever pushed, ACKed or NACKed."""
        found = self._by_type.get(type_url)
        if found is None:
            name = short_type(type_url)
            found = _TypeSeries(
                self.pushes.labels(name),
                self.nacks.labels(name),
                self.round_trip.labels(name),
                self.convergence.labels(name),
            )
            self._by_type[type_url] = found
        return found

    def nacked(self, type_url: str) -> None:
        self._series(type_url).nacks.inc()

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return bytes(generate_latest(self.registry))


class _Gauges(Collector):
    """Gauges computed from the running system at scrape time."""

    def __init__(self, readings: Readings, alerts: Callable[[], Mapping[str, int]]) -> None:
        self.readings, self.alerts = readings, alerts

    def collect(self) -> Iterator[Metric]:
        firing = GaugeMetricFamily("controlplane_alerts_firing", "Alerts firing, by name", labels=["alertname"])
        for name, count in sorted(self.alerts().items()):
            firing.add_metric([name], count)
        yield firing
        r = self.readings
        yield GaugeMetricFamily("controlplane_xds_connected_proxies", "Open xDS streams", value=r.connected())
        yield GaugeMetricFamily(
            "controlplane_xds_proxies_behind", "Proxies with a response not yet ACKed or NACKed", value=r.behind()
        )
        yield GaugeMetricFamily(
            "controlplane_config_valid", "1 when the sources give a valid config", value=1 if r.config_valid() else 0
        )
        ages = GaugeMetricFamily(
            "controlplane_source_sync_age_seconds", "Seconds since each source was last read", labels=["source"]
        )
        for source, age in sorted(r.source_age().items()):
            ages.add_metric([source], age)
        yield ages
        yield GaugeMetricFamily(
            "controlplane_registry_registrations", "Endpoints registered over gRPC", value=r.registrations()
        )
        yield GaugeMetricFamily(
            "controlplane_quarantined_resources", "Resources held back after a NACK", value=r.quarantined()
        )
        yield from _service_gauges(r.services())


def _service_gauges(figures: Mapping[str, tuple[float, float, float | None]]) -> Iterator[Metric]:
    """The traffic the Envoys pushed, per upstream service, over the last minute."""
    rate = GaugeMetricFamily("controlplane_service_request_rate", "Requests/s (last minute)", labels=["service"])
    errors = GaugeMetricFamily("controlplane_service_error_ratio", "Share of 5xx (last minute)", labels=["service"])
    p99 = GaugeMetricFamily("controlplane_service_latency_p99_seconds", "p99 latency (last minute)", labels=["service"])
    for service, (requests, error_ratio, p99_ms) in sorted(figures.items()):
        rate.add_metric([service], requests)
        errors.add_metric([service], error_ratio)
        if p99_ms is not None:
            p99.add_metric([service], p99_ms / 1000)
    yield from (rate, errors, p99)


class _EndpointGauges(Collector):
    """Per configured endpoint: the traffic and health the Envoys pushed, over the last minute."""

    def __init__(self, figures: Callable[[], Mapping[tuple[str, str], tuple[float, float, int]]]) -> None:
        self.figures = figures

    def collect(self) -> Iterator[Metric]:
        labels = ["service", "endpoint"]
        rate = GaugeMetricFamily("controlplane_endpoint_request_rate", "Requests/s (last minute)", labels=labels)
        errors = GaugeMetricFamily("controlplane_endpoint_error_ratio", "Share of 5xx (last minute)", labels=labels)
        unhealthy = GaugeMetricFamily(
            "controlplane_endpoint_unhealthy_envoys", "Envoys whose latest push has it unhealthy", labels=labels
        )
        figures = sorted(self.figures().items())
        for (service, endpoint), (requests, error_ratio, unhealthy_in) in figures[:MAX_ENDPOINT_SERIES]:
            rate.add_metric([service, endpoint], requests)
            errors.add_metric([service, endpoint], error_ratio)
            unhealthy.add_metric([service, endpoint], unhealthy_in)
        omitted = max(0, len(figures) - MAX_ENDPOINT_SERIES)
        yield from (rate, errors, unhealthy)
        yield GaugeMetricFamily(
            "controlplane_endpoint_series_omitted", "Endpoints left out of the per-endpoint gauges", value=omitted
        )
