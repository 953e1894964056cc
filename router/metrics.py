"""Prometheus metrics, one registry per application (so tests can run many apps).

Label values are bounded: sources and routes are fixed sets, pipelines are the team
model's ids or `unknown`, reasons are the router's own error codes.
"""

from __future__ import annotations

__all__ = ["Metrics"]

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

# `_created` series double every counter's cardinality and no dashboard here reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """The router's metrics and the registry that exposes them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.alerts_received = Counter(
            "router_alerts_received",
            "Alerts accepted and stored, by inbound format and pipeline.",
            ["source", "pipeline"],
            registry=self.registry,
        )
        self.alerts_rejected = Counter(
            "router_alerts_rejected",
            "Inbound requests refused, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.incidents_open = Gauge(
            "router_incidents_open",
            "Incidents not yet resolved.",
            registry=self.registry,
        )
        self.notifications = Counter(
            "router_notifications",
            "Delivery attempts by channel and result (sent, retried, dead).",
            ["channel", "result"],
            registry=self.registry,
        )
        self.delivery_seconds = Histogram(
            "router_notification_delivery_seconds",
            "From the notification's creation to its delivery.",
            ["channel"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
            registry=self.registry,
        )
        self.outbox_depth = Gauge(
            "router_outbox_depth", "Notifications not yet delivered.", registry=self.registry
        )
        self.outbox_oldest_seconds = Gauge(
            "router_outbox_oldest_undelivered_seconds",
            "Age of the oldest notification not yet delivered (0 when none).",
            registry=self.registry,
        )
        self.dead_letters = Gauge(
            "router_notifications_dead_letters",
            "Notifications that exhausted their retry budget.",
            registry=self.registry,
        )
        self.delivery_workers = Gauge(
            "router_delivery_workers_running",
            "Delivery worker processes alive (0 when the serving process delivers itself).",
            registry=self.registry,
        )
        self.oncall_gap = Gauge(
            "router_oncall_gap",
            "1 while the on-call rules leave nobody as effective primary, else 0.",
            registry=self.registry,
        )
        self.escalations_exhausted = Gauge(
            "router_incidents_escalation_exhausted",
            "Open incidents whose escalation ran through every step and round without an ack.",
            registry=self.registry,
        )
        self.request_duration = Histogram(
            "router_http_request_duration_seconds",
            "HTTP request latency, by route, method and status.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric."""
        return generate_latest(self.registry)
