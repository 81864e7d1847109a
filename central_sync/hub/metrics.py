"""Prometheus metrics of one hub process, read from `Hub.stats()` at every scrape (its own registry)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from fastapi import FastAPI, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class HubCollector(Collector):
    """Links up, sessions, queued messages per lane, ingest outcomes by kind, stalled threads."""

    def __init__(self, stats: Callable[[], dict]) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        s = self.stats()
        yield GaugeMetricFamily("hub_connected", "1 when every broker link of this hub is up", value=int(s["connected"]))
        yield CounterMetricFamily("hub_sessions", "Broker sessions opened by this hub process", value=s["sessions"])
        queued = GaugeMetricFamily("hub_queued_messages", "Messages received and waiting for ingest", labels=["lane"])
        for lane, n in sorted(s["queued"].items()):
            queued.add_metric([lane], n)
        yield queued
        ingested = CounterMetricFamily("hub_ingest", "Ingest outcomes by kind (records, images, malformed, "
                                       "rejected, store_errors, worker_crashes, ...)", labels=["kind"])
        for kind, n in sorted(s["counters"].items()):
            ingested.add_metric([kind], n)
        yield ingested
        yield CounterMetricFamily("hub_outbox_dropped", "Acks and commands dropped, oldest first, while the priority "
                                  "link was down and OUTBOX_MAX waited (stations send again what was not acknowledged)",
                                  value=s.get("outbox_dropped", 0))
        yield CounterMetricFamily("hub_gap_seqs_asked", "Sequence numbers asked again from stations",
                                  value=s["gap_seqs_asked"])
        yield CounterMetricFamily("hub_gap_seqs_given_up", "Sequence numbers asked for so often without coming "
                                  "that they are no longer asked for (a record the station parked)",
                                  value=s.get("gap_seqs_given_up", 0))
        yield GaugeMetricFamily("hub_stalled_threads", "Link or ingest threads silent past the stall limit",
                                value=len(s["stalled"]))


class PkiCollector(Collector):
    """The CRL's time left (Mosquitto refuses every client once it is out) and certificates expiring."""

    def __init__(self, report: Callable[[], dict]) -> None:
        self.report = report

    def collect(self) -> Iterator[Metric]:
        r = self.report()
        yield GaugeMetricFamily("hub_crl_seconds_left", "Seconds until the broker's CRL passes its nextUpdate "
                                "(then every client is refused); 0 when it cannot be read", value=r["crl"]["seconds_left"])
        yield GaugeMetricFamily("hub_crl_warning", "1 when the CRL must be re-issued now (edge-hub pki crl)",
                                value=int(r["crl"]["warn"]))
        yield GaugeMetricFamily("hub_certificates_expiring", "Live certificates expiring within 30 days",
                                value=len(r["expiring"]))


def install_metrics(app: FastAPI, stats: Callable[[], dict], pki: Callable[[], dict] | None = None) -> FastAPI:
    """Serve GET /metrics on the hub's app (with the CA's figures when `pki` reports them)."""
    registry = CollectorRegistry()
    registry.register(HubCollector(stats))
    if pki is not None:
        registry.register(PkiCollector(pki))

    def metrics() -> Response:
        return Response(generate_latest(registry), media_type="text/plain; version=0.0.4; charset=utf-8")

    app.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False)
    return app
