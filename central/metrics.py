"""Prometheus metrics of one central app: request counters, and per-device gauges read at scrape time.

Use::

    metrics = Metrics(engine, settings.fleet, clock=time.time)   # its own registry per app
    metrics.batches.inc()
    metrics.responses.labels(result="accepted").inc(12)
    body, content_type = metrics.render()                        # GET /metrics

Counters count what this process answered since it started (Prometheus scrapes
each process; ``sum()`` over them). The per-device gauges are read from the
database at every scrape, so every process reports the whole fleet. Labels are
the device id and its location, never anything about a visitor. Revoked devices
are left out of the per-device gauges.
"""

from __future__ import annotations

from typing import Callable

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.process_collector import ProcessCollector
from sqlalchemy import Engine, select

from central.fleet import assess
from central.models import Device
from central.settings import FleetSettings

_devices = Device.__table__
RESULTS = ("accepted", "duplicate", "rejected")
FETCH_RESULTS = ("sent", "not_modified", "none")


class Metrics:
    """The counters the routes increment, and a registry that also reads the devices table."""

    def __init__(self, engine: Engine, fleet: FleetSettings, *, clock: Callable[[], float]):
        self.registry = CollectorRegistry()
        r = self.registry
        self.batches = Counter("balie_batches", "Batches stored (answered 200)", registry=r)
        self.responses = Counter("balie_responses", "Responses in stored batches, by result",
                                 ["result"], registry=r)
        self.answers = Counter("balie_answers_stored", "Answers stored (of accepted responses)",
                               registry=r)
        self.heartbeats = Counter("balie_heartbeats", "Heartbeats recorded", registry=r)
        self.questionnaire_fetches = Counter(
            "balie_questionnaire_fetches", "Questionnaire requests answered, by result: sent "
            "(200), not_modified (304), none (404: nothing published)", ["result"], registry=r)
        self.errors = Counter("balie_http_errors", "Requests answered with an error, by status "
                              "and error code", ["status", "error"], registry=r)
        for result in RESULTS:
            self.responses.labels(result=result)
        for result in FETCH_RESULTS:
            self.questionnaire_fetches.labels(result=result)
        r.register(DeviceCollector(engine, fleet, clock))
        ProcessCollector(registry=r)

    def render(self) -> tuple[bytes, str]:
        """The text exposition format and its content type (reads the database: blocking)."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class DeviceCollector:
    """Per-device gauges from the ``devices`` table at scrape time, and fleet counts."""

    LABELS = ["device", "location"]

    def __init__(self, engine: Engine, fleet: FleetSettings, clock: Callable[[], float]):
        self.engine = engine
        self.fleet = fleet
        self.clock = clock

    def _families(self) -> dict[str, GaugeMetricFamily]:
        gauge = GaugeMetricFamily
        return {
            "last_seen": gauge("balie_device_last_seen_timestamp_seconds",
                               "When central last received a batch or heartbeat (Unix seconds); "
                               "absent before the first", labels=self.LABELS),
            "backlog": gauge("balie_device_backlog",
                             "Responses waiting on the device, by its last heartbeat",
                             labels=self.LABELS),
            "quarantined": gauge("balie_device_quarantined",
                                 "Responses in the device's quarantine, by its last heartbeat",
                                 labels=self.LABELS),
            "silent": gauge("balie_device_silent", "1: nothing received for [fleet] "
                            "silent_after_s", labels=self.LABELS),
            "no_ratings": gauge("balie_device_no_ratings", "1: the last heartbeat reports "
                                "[fleet] no_ratings_after_s of opening time without a response",
                                labels=self.LABELS),
            "out_of_order": gauge("balie_device_out_of_order", "1: the last heartbeat says the "
                                  "terminal shows its out-of-order screen (it cannot take answers)",
                                  labels=self.LABELS),
            "devices": gauge("balie_devices", "Enrolled devices: active (not revoked), revoked, "
                             "and the active ones silent / with no ratings / out of order",
                             labels=["state"]),
        }

    def describe(self):
        """The families without samples (so registering does not query the database)."""
        return list(self._families().values())

    def collect(self):
        """Read the devices now; one sample per device and family."""
        families = self._families()
        now = self.clock()
        with self.engine.connect() as conn:
            conn = conn.execution_options(sqlite_begin="DEFERRED")
            rows = conn.execute(select(
                _devices.c.id, _devices.c.location, _devices.c.created_at,
                _devices.c.last_seen_at, _devices.c.backlog, _devices.c.quarantined,
                _devices.c.quiet_open_s, _devices.c.out_of_order, _devices.c.revoked_at,
            ).order_by(_devices.c.id)).all()
        counts = {"active": 0, "revoked": 0, "silent": 0, "no_ratings": 0, "out_of_order": 0}
        for row in rows:
            if row.revoked_at is not None:
                counts["revoked"] += 1
                continue
            health = assess(row, self.fleet, now)
            labels = [row.id, row.location]
            counts["active"] += 1
            counts["silent"] += health.silent
            counts["no_ratings"] += health.no_ratings
            counts["out_of_order"] += health.out_of_order
            if row.last_seen_at is not None:
                families["last_seen"].add_metric(labels, row.last_seen_at)
            if row.backlog is not None:
                families["backlog"].add_metric(labels, row.backlog)
            if row.quarantined is not None:
                families["quarantined"].add_metric(labels, row.quarantined)
            families["silent"].add_metric(labels, int(health.silent))
            families["no_ratings"].add_metric(labels, int(health.no_ratings))
            families["out_of_order"].add_metric(labels, int(health.out_of_order))
        for state, count in counts.items():
            families["devices"].add_metric([state], count)
        return list(families.values())
