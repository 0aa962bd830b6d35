"""Prometheus collectors for syncd, one registry per `Metrics` so tests and instances never collide."""

from __future__ import annotations

from typing import Literal

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest

WebhookOutcome = Literal[
    "accepted", "duplicate", "rejected", "malformed", "unknown_connection", "too_large", "store_error"
]


class Metrics:
    """The process's collectors; other parts add theirs to `registry`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.webhooks_received = Counter(
            "syncd_webhooks_received",
            "Webhook deliveries received, by connection and how they were answered.",
            ["connection", "outcome"],
            registry=self.registry,
        )
        self.inbox_pending = Gauge(
            "syncd_inbox_pending",
            "Webhook events stored in the inbox and not processed yet (measured at scrape time).",
            registry=self.registry,
        )

    def count_webhook(self, connection: str, outcome: WebhookOutcome) -> None:
        """Count one delivery and how it was answered."""
        self.webhooks_received.labels(connection=connection, outcome=outcome).inc()

    def render(self) -> tuple[bytes, str]:
        """The registry in the Prometheus text format, with its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
