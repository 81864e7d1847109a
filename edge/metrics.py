"""Prometheus metrics of one station daemon (its own registry, served at /metrics)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass
class StationMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.stage_seconds = Histogram("edge_stage_seconds", "Time spent per inspection stage",
                                       ["stage"], buckets=STAGE_BUCKETS, registry=r)
        self.verdicts = Counter("edge_verdicts_total", "Verdicts by verdict and reason",
                                ["verdict", "reason"], registry=r)
        self.budget_misses = Counter("edge_budget_misses_total", "Inspections that missed their latency budget",
                                     registry=r)
        self.dropped = Counter("edge_dropped_total", "Items or data dropped or diverted, by reason",
                               ["what", "reason"], registry=r)
        self.queue_depth = Gauge("edge_queue_depth", "Items waiting per internal queue", ["queue"], registry=r)
        self.outbox_backlog = Gauge("edge_outbox_backlog", "Outbox rows not yet acknowledged by the hub",
                                    ["lane"], registry=r)
        self.device_up = Gauge("edge_device_up", "1 when a device link is up", ["device"], registry=r)
        self.routed = Counter("edge_items_routed_total", "Conveyor items at the divert gate, by route and reason",
                              ["route", "reason"], registry=r)
        self.bad_input = Counter("edge_bad_input_total", "Malformed input rejected, by source", ["source"],
                                 registry=r)
        self.risk_lanes = Counter("edge_risk_lanes_total", "Risk assessments of decided items, by lane and whether "
                                  "the bundle was stale or missing", ["lane", "bundle"], registry=r)

    def budget_misses_total(self) -> int:
        return int(self.registry.get_sample_value("edge_budget_misses_total") or 0)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def follow_devices(self, devices: Any) -> None:
        """Export the devices' own counters (reader rejects, unsent X-ray stops) at every scrape."""
        self.registry.register(DeviceCollector(devices))

    def follow_risk(self, counters: Callable[[], dict[str, int]], status: Callable[[], dict]) -> None:
        """Export the risk bundle counters and the bundle run (edge.risk.RiskRuntime) at every scrape."""
        self.registry.register(RiskCollector(counters, status))

    def follow_commands(self, counters: Callable[[], dict[str, int]]) -> None:
        """Export the hub's signed commands received, by outcome (edge.commands.CommandReceiver.counters)."""
        self.registry.register(CommandCollector(counters))

    def follow_shadow(self, stats: Callable[[], dict]) -> None:
        """Export a shadow model's agreement figures (models.shadow.ShadowRunner.stats) at every scrape."""
        self.registry.register(ShadowCollector(stats))


class SinceStart(Collector):
    """A count the station keeps since it started (a plain number on one of its objects, read at every scrape) as a
    counter (`<name>_total`): a restart starts it at 0 again, which Prometheus takes for a counter reset."""

    def __init__(self, name: str, doc: str, read: Callable[[], float | dict[str, float]], label: str | None = None):
        self.name, self.doc, self.read, self.label = name, doc, read, label

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.doc, labels=[self.label] if self.label else [])
        value = self.read()
        for label, n in (value.items() if isinstance(value, dict) else [(None, value)]):
            family.add_metric([label] if label is not None else [], n)
        yield family


def count_since_start(registry: CollectorRegistry, name: str, doc: str, read: Callable[[], float | dict[str, float]],
                      label: str | None = None) -> None:
    """Export `read()` (a number, or one per value of `label`) as the counter `name`_total on `registry`."""
    registry.register(SinceStart(name, doc, read, label))


class ShadowCollector(Collector):
    """The candidate model's scans by outcome and its detections against the active model's, per class."""

    def __init__(self, stats: Callable[[], dict]) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        s = self.stats()
        candidate = [s["candidate"]["name"], s["candidate"]["version"]]
        scans = CounterMetricFamily("edge_shadow_scans", "Scans offered to the shadow model, by outcome (compared, "
                                    "skipped_busy, skipped_pending, failed, verdict_agree, verdict_differ)",
                                    labels=["model", "version", "outcome"])
        for outcome, n in s["scans"].items():
            scans.add_metric([*candidate, outcome], n)
        yield scans
        found = CounterMetricFamily("edge_shadow_detections", "Detections matched at IoU 0.5: found by both models, "
                                    "only the active one or only the shadow", labels=["model", "version", "class", "found_by"])
        for label, counts in s["classes"].items():
            for found_by, n in counts.items():
                found.add_metric([*candidate, label, found_by], n)
        yield found



class CommandCollector(Collector):
    """Signed commands from the hub by outcome: applied, rejected (a forged, stale, replayed or malformed one),
    failed, dropped_queue_full, and the results reported or not sent."""

    def __init__(self, counters: Callable[[], dict[str, int]]) -> None:
        self.counters = counters

    def collect(self) -> Iterator[Metric]:
        commands = CounterMetricFamily("edge_commands", "Signed commands from the hub received, by outcome",
                                       labels=["outcome"])
        for outcome, n in sorted(self.counters().items()):
            commands.add_metric([outcome], n)
        yield commands


class RiskCollector(Collector):
    """Risk bundles received by outcome (applied, duplicate, refused_<code>, refused_stored, bad_chunk, ...)
    and the bundle the station runs."""

    def __init__(self, counters: Callable[[], dict[str, int]], status: Callable[[], dict]) -> None:
        self.counters, self.status = counters, status

    def collect(self) -> Iterator[Metric]:
        bundles = CounterMetricFamily("edge_risk_bundles", "Risk bundles and chunks received, by outcome",
                                      labels=["outcome"])
        for outcome, n in sorted(self.counters().items()):
            bundles.add_metric([outcome], n)
        yield bundles
        status = self.status()
        version = GaugeMetricFamily("edge_risk_bundle_version", "The risk bundle version the station runs (0: none)")
        version.add_metric([], status["risk_version"] or 0)
        yield version
        stale = GaugeMetricFamily("edge_risk_bundle_stale", "1 while the risk bundle the station runs has expired")
        stale.add_metric([], int(status["risk_stale"]))
        yield stale


class DeviceCollector(Collector):
    """Counters kept by the device drivers themselves (edge.devices.Devices), read at each scrape."""

    def __init__(self, devices: Any) -> None:
        self.devices = devices

    def collect(self) -> Iterator[Metric]:
        rejects = CounterMetricFamily("edge_reader_rejects", "Tag reader frames and lines rejected by the decoder, "
                                      "by reason (EM4100: checksum, bad_body, too_long, interrupted, unframed; LLRP: "
                                      "bad_version, bad_length, truncated, unknown_parameter, missing_parameter, "
                                      "unknown_message, bad_field)",
                                      labels=["reader", "reason"])
        for name, reader in self.devices.readers.items():
            for reason, n in reader.decoder.stats.rejects.items():
                rejects.add_metric([name, reason], n)
        yield rejects
        reconnects = CounterMetricFamily("edge_reader_reconnects", "Reconnection attempts of network tag readers "
                                         "(LLRP) after a lost or refused session", labels=["reader"])
        for name, reader in self.devices.readers.items():
            if hasattr(reader, "reconnects"):
                reconnects.add_metric([name], reader.reconnects)
        yield reconnects
        failures = CounterMetricFamily("edge_reader_session_failures", "Network tag reader (LLRP) sessions ended by "
                                       "an error nothing foresaw (a driver fault: logged llrp.session_failed with "
                                       "its traceback); the reader connects again", labels=["reader"])
        for name, reader in self.devices.readers.items():
            if hasattr(reader, "session_failures"):
                failures.add_metric([name], reader.session_failures)
        yield failures
        seal_rejects = CounterMetricFamily("edge_seal_rejects", "E-seal messages rejected, by reason (serial ES1: "
                                           "checksum, version, bad_field, too_long, unframed; tag memory: checksum, "
                                           "version, bad_field, truncated)", labels=["reader", "reason"])
        for name, seals in self.devices.seals.items():
            for reason, n in seals.rejects.items():
                seal_rejects.add_metric([name, reason], n)
        yield seal_rejects
        stops = CounterMetricFamily("edge_xray_stops_failed", "STOP_SCAN requests for abandoned scans that could "
                                    "not be sent or were not acknowledged (retried on reconnect)", labels=["device"])
        rejected = CounterMetricFamily("edge_xray_frames_rejected", "Frames from the X-ray controller rejected (not "
                                       "COBS, bad length or CRC, oversize, a payload that does not fit its type), all "
                                       "sessions", labels=["device"])
        refused = CounterMetricFamily("edge_xray_scans_refused_fault", "Scans not started because the X-ray "
                                      "controller's STATUS reported a fault condition (HV_FAULT, TUBE_OVERTEMP, a bit "
                                      "the protocol does not define); each item went to manual", labels=["device"])
        unconfirmed = CounterMetricFamily("edge_xray_stops_unconfirmed", "STOP_SCAN requests after which STATUS "
                                          "still read scanning with no other scan of the host running: the "
                                          "controller was disarmed", labels=["device"])
        holds = CounterMetricFamily("edge_xray_holds", "Safe states (PLC link down, e-stop or interlock tripped, belt "
                                    "latched) that held the X-ray controller disarmed since start", labels=["device"])
        held = GaugeMetricFamily("edge_xray_held", "1 while the station holds the X-ray controller disarmed (a safe "
                                 "state: no ARM, no START_SCAN), 0 otherwise", labels=["device"])
        disarms = CounterMetricFamily("edge_xray_disarms_failed", "DISARM requests of holds that failed (no answer, "
                                      "NAK, read back armed or scanning); each was sent again at the next look (every "
                                      "0.1 s)", labels=["device"])
        unconfirmed_disarm = GaugeMetricFamily("edge_xray_disarm_unconfirmed", "1 while the X-ray controller is held "
                                               "and its last DISARM failed, none having read back disarmed since (the "
                                               "alarm xray_disarm_unconfirmed stands), 0 otherwise", labels=["device"])
        scanner = self.devices.scanner
        if scanner is not None:
            holds.add_metric([scanner.name], scanner.holds)
            held.add_metric([scanner.name], int(scanner.held is not None))
            disarms.add_metric([scanner.name], scanner.disarms_failed)
            unconfirmed_disarm.add_metric([scanner.name], int(scanner.disarm_unconfirmed is not None))
            stops.add_metric([scanner.name], scanner.stops_failed)
            unconfirmed.add_metric([scanner.name], scanner.stops_unconfirmed)
            rejected.add_metric([scanner.name], scanner.link.frames_rejected)
            refused.add_metric([scanner.name], scanner.scans_refused_faults)
        yield stops
        yield unconfirmed
        yield rejected
        yield refused
        yield holds
        yield held
        yield disarms
        yield unconfirmed_disarm
