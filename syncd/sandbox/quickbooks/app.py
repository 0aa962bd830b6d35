"""`QuickBooksSimulator`: one QuickBooks Online company under `/v3/company/{realm}` and Intuit's OAuth server
on the same port."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from aiohttp import web

from syncd.sandbox.base import Simulator, check_limits
from syncd.sandbox.clock import Clock
from syncd.sandbox.quickbooks.books import ENTITIES, Books
from syncd.sandbox.quickbooks.faults import INTERNAL, QboFault
from syncd.sandbox.quickbooks.oauth import DISCOVERY_PATH, IntuitOAuthServer, RollingTokenStore
from syncd.sandbox.quickbooks.routes import Limits, QboApi, fault_response, throttled
from syncd.sandbox.quickbooks.seeding import seed_company
from syncd.sandbox.quickbooks.webhooks import SIGNATURE_HEADER, encode_events, signature
from syncd.sandbox.seeding import SeedCounts, SeedWorld
from syncd.sandbox.webhook_dispatcher import WebhookDispatcher

REALM_ID = "9341453050298464"
# `window_s`/`window_max` are the per-minute window (the names every simulator takes, so that `syncd demo` and
# tests lift any of them alike); `daily_cap` is taken and ignored: QBO has no daily cap.
DEFAULT_LIMITS: dict[str, Any] = {"window_s": 60, "window_max": 500, "per_second": 10, "batch_per_minute": 40,
                                  "token_lifetime_s": 3600}  # fmt: skip
LIMIT_KEYS = frozenset({*DEFAULT_LIMITS, "daily_cap"})


class QuickBooksSimulator(Simulator):
    """One QBO company with its app's OAuth client, throttles and webhook subscription."""

    name: ClassVar[str] = "quickbooks"
    fault_exempt_prefixes: ClassVar[tuple[str, ...]] = ("/oauth2/", "/.well-known/", "/connect/")

    def __init__(self, *, clock: Clock = time.time, rng_seed: int = 0) -> None:
        super().__init__(clock=clock, rng_seed=rng_seed)
        self.realm_id = REALM_ID
        self.verifier_token = secrets.token_hex(18)
        self.tokens = RollingTokenStore(
            client_id="AB" + secrets.token_hex(24), client_secret=secrets.token_hex(20),
            lifetime_s=float(DEFAULT_LIMITS["token_lifetime_s"]), clock=clock, token_prefix="qbo-",
        )  # fmt: skip
        self.token_stores.append(self.tokens)
        self.limits = Limits(clock)
        self.quotas.extend(self.limits.counters())
        self.webhooks = WebhookDispatcher(
            stats=self.stats, faults=self.faults,
            encode=lambda events: encode_events(self.realm_id, events),
            sign=lambda method, url, body: {SIGNATURE_HEADER: signature(self.verifier_token, body)},
            max_batch=100, rng=self.rng,
        )  # fmt: skip
        self.webhook_dispatchers.append(self.webhooks)
        self.books = Books(clock)
        self._quiet = False
        self.api = QboApi(lambda: self.books, lambda: self.tokens, lambda: self.realm_id, self.limits, clock,
                          self._notify, self._count_throttled)  # fmt: skip

    def add_routes(self, app: web.Application) -> None:
        """The API, its guard, and the OAuth server."""
        self.api.add_to(app)
        IntuitOAuthServer(lambda: self.tokens, lambda: self.realm_id).add_to(app)

    def _count_throttled(self) -> None:
        self.stats.rate_limited += 1

    def _notify(self, entity: str, record_id: str, operation: str, stamp: str) -> None:
        if not self._quiet:
            self.webhooks.emit({"name": entity, "id": record_id, "operation": operation, "lastUpdated": stamp})

    # --- the Simulator contract ---

    def reset(self) -> None:
        """Drop every record (the app, grants and verifier token stay)."""
        self.books = Books(self.clock)
        self.api.replays.clear()

    def seed(self, world: SeedWorld, counts: SeedCounts) -> dict[str, int]:
        """Customers from people, invoices from deals, payments on them (no webhooks: an import)."""
        self._quiet = True
        try:
            return seed_company(self.books, world, counts)
        finally:
            self._quiet = False

    def default_limits(self) -> dict[str, Any]:
        """500 a minute, 10 a second, 40 batches a minute, one-hour access tokens."""
        return dict(DEFAULT_LIMITS)

    def apply_limits(self, body: Mapping[str, Any]) -> None:
        """Keys window_s and window_max (the per-minute window), per_second, batch_per_minute, token_lifetime_s,
        daily_cap (ignored: QBO has none); anything else is a ValueError. A window lifted above QBO's pace lifts
        the per-second and batch limits by the same factor, unless they are given too."""
        check_limits(body, LIMIT_KEYS)
        minute = self.limits.minute
        if "window_s" in body:
            minute.window_s = float(body["window_s"])
        if "window_max" in body:
            minute.window_max = int(body["window_max"])
        if "window_s" in body or "window_max" in body:
            pace = minute.window_max / minute.window_s
            factor = max(1.0, pace / (DEFAULT_LIMITS["window_max"] / DEFAULT_LIMITS["window_s"]))
            self.limits.second.window_max = int(DEFAULT_LIMITS["per_second"] * factor)
            self.limits.batch.window_max = int(DEFAULT_LIMITS["batch_per_minute"] * factor)
        if "per_second" in body:
            self.limits.second.window_max = int(body["per_second"])
        if "batch_per_minute" in body:
            self.limits.batch.window_max = int(body["batch_per_minute"])
        if "token_lifetime_s" in body:
            self.tokens.lifetime_s = float(body["token_lifetime_s"])

    def records(self, obj: str) -> list[dict[str, Any]] | None:
        """Customer, Invoice, Payment, Item (any case); deleted transactions flagged `deleted`."""
        entity = next((e for e in ENTITIES if e.lower() == obj.lower()), None)
        if entity is None:
            return None
        live = [{**self.books.render(entity, r), "deleted": False} for r in self.books.records[entity].values()]
        gone = [{"Id": i, "deleted": True} for i in self.books.deleted[entity]]
        return live + gone

    def fault_response(self, kind: Literal["error", "rate_limit"]) -> web.Response:
        """500 with an internal-error Fault, or the 429 throttle answer."""
        if kind == "rate_limit":
            return throttled(self.clock())
        return fault_response(QboFault(INTERNAL, "An application error has occurred while processing your "
                                       "request", "System Failure Error", status=500, kind="SystemFault"),
                              self.clock())  # fmt: skip

    def set_webhook_targets(self, urls: list[str]) -> None:
        """Every change is POSTed (names only) to each of these URLs from now on."""
        self.webhooks.targets = list(urls)

    def credentials(self, base: str) -> dict[str, str]:
        """base_url (the API host), discovery_url, OAuth client, refresh token, realm, verifier token."""
        return {
            "base_url": base,
            "discovery_url": base + DISCOVERY_PATH,
            "client_id": self.tokens.client_id,
            "client_secret": self.tokens.client_secret,
            "refresh_token": self.tokens.refresh_token,
            "realm_id": self.realm_id,
            "verifier_token": self.verifier_token,
        }

    def dump_state(self) -> dict[str, Any]:
        """Records, grants, verifier token and webhook targets as JSON-able data."""
        return {"books": self.books.dump(), "tokens": self.tokens.to_state(), "realm_id": self.realm_id,
                "verifier_token": self.verifier_token, "webhook_targets": list(self.webhooks.targets)}  # fmt: skip

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore what dump_state wrote."""
        self.books = Books(self.clock)
        self.books.load(dict(state["books"]))
        self.tokens.load_state(state["tokens"])
        self.realm_id = str(state.get("realm_id", self.realm_id))
        self.verifier_token = str(state.get("verifier_token", self.verifier_token))
        self.webhooks.targets = [str(u) for u in state.get("webhook_targets", [])]
