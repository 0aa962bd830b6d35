"""The counters a simulator keeps of what it served and sent."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Stats:
    """What a simulator has served and sent, for GET /_sandbox/stats."""

    requests: Counter[str] = field(default_factory=Counter)
    responses: Counter[int] = field(default_factory=Counter)
    rate_limited: int = 0
    webhooks_sent: int = 0
    webhooks_failed: int = 0
    webhooks_retried: int = 0
    in_flight: int = 0  # requests being handled now (a handler goes on after its client gave up waiting)

    def to_json(self) -> dict[str, Any]:
        """The counters as JSON (status codes become string keys)."""
        return {
            "requests": dict(self.requests),
            "responses": {str(status): n for status, n in sorted(self.responses.items())},
            "rate_limited": self.rate_limited,
            "webhooks_sent": self.webhooks_sent,
            "webhooks_failed": self.webhooks_failed,
            "webhooks_retried": self.webhooks_retried,
            "in_flight": self.in_flight,
        }

    def clear(self) -> None:
        """Zero every counter."""
        self.requests.clear()
        self.responses.clear()
        self.rate_limited = self.webhooks_sent = self.webhooks_failed = self.webhooks_retried = 0
