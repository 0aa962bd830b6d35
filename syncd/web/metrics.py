"""Prometheus collectors for syncd, one registry per `Metrics` so tests and instances never collide."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable, Mapping
from typing import Literal

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest

PollOutcome = Literal["ok", "failed", "skipped"]
SyncVia = Literal["poll", "webhook"]
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
        self.inbox_given_up = Gauge(
            "syncd_inbox_given_up",
            "Webhook events the inbox stopped retrying and nobody requeued yet (measured at scrape time).",
            registry=self.registry,
        )
        self.conflicts_open = Gauge(
            "syncd_conflicts_open",
            "Conflicts waiting for a person, by mapping, object and field (measured at scrape time).",
            ["mapping", "object", "field"],
            registry=self.registry,
        )
        self.dead_letters = Gauge(
            "syncd_dead_letters",
            "Records parked as dead letters (failed, waiting to be retried or for a change), by mapping and object "
            "(measured at scrape time).",
            ["mapping", "object"],
            registry=self.registry,
        )

        self.poll_runs = Counter(
            "syncd_poll_runs",
            "Polling runs by job (mapping:object:side): completed (ok), failed, or skipped because the previous run "
            "still went on.",
            ["job", "outcome"],
            registry=self.registry,
        )
        self.sync_actions = Counter(
            "syncd_sync_actions",
            "What sync passes did to records (create, update, link, conflict, skip...), by mapping and object, and "
            "whether a poll or a webhook brought the change.",
            ["mapping", "object", "kind", "via"],
            registry=self.registry,
        )
        self.sync_errors = Counter(
            "syncd_sync_errors",
            "Records a sync pass could not bring in step (dead-lettered or retried later), by mapping and object.",
            ["mapping", "object", "via"],
            registry=self.registry,
        )

    def count_poll(self, job: str, outcome: PollOutcome) -> None:
        """Count one finished polling run."""
        self.poll_runs.labels(job=job, outcome=outcome).inc()

    def count_sync(
        self, via: SyncVia, mapping: str, obj: str, actions: Iterable[tuple[str, str]], errors: int = 0
    ) -> None:
        """Count what one pass over `mapping`'s `obj` did: `actions` are (object, kind) of each record it
        touched (a dependency synced first counts under its own object); errors count under `obj`."""
        for (action_object, kind), n in Tally(actions).items():
            self.sync_actions.labels(mapping=mapping, object=action_object, kind=kind, via=via).inc(n)
        if errors:
            self.sync_errors.labels(mapping=mapping, object=obj, via=via).inc(errors)

    @staticmethod
    def measure(gauge: Gauge, counts: Mapping[tuple[str, str, str], int] | Mapping[tuple[str, str], int]) -> None:
        """Set a labelled gauge to `counts` exactly: label sets no longer counted disappear instead of
        lingering at their last value."""
        gauge.clear()
        for labels, n in counts.items():
            gauge.labels(*labels).set(n)

    def value(self, name: str, **labels: str) -> float:
        """The current value of one sample (0 when it was never counted): what an operator's scrape shows."""
        return self.registry.get_sample_value(name, labels) or 0.0

    def count_webhook(self, connection: str, outcome: WebhookOutcome) -> None:
        """Count one delivery and how it was answered."""
        self.webhooks_received.labels(connection=connection, outcome=outcome).inc()

    def render(self) -> tuple[bytes, str]:
        """The registry in the Prometheus text format, with its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
