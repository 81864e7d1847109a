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
        yield CounterMetricFamily("hub_gap_seqs_asked", "Sequence numbers asked again from stations",
                                  value=s["gap_seqs_asked"])
        yield GaugeMetricFamily("hub_stalled_threads", "Link or ingest threads silent past the stall limit",
                                value=len(s["stalled"]))


def install_metrics(app: FastAPI, stats: Callable[[], dict]) -> FastAPI:
    """Serve GET /metrics on the hub's app."""
    registry = CollectorRegistry()
    registry.register(HubCollector(stats))

    def metrics() -> Response:
        return Response(generate_latest(registry), media_type="text/plain; version=0.0.4; charset=utf-8")

    app.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False)
    return app
