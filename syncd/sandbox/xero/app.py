"""`XeroSimulator`: the Accounting API under `/api.xro/2.0`, the identity server (`/connect/token`,
`/connections`) and webhooks, on one port."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from aiohttp import web

from syncd.sandbox.base import Simulator, check_limits
from syncd.sandbox.clock import Clock
from syncd.sandbox.quota import QuotaCounter
from syncd.sandbox.seeding import SeedCounts, SeedWorld
from syncd.sandbox.webhook_dispatcher import WebhookDispatcher
from syncd.sandbox.xero.api import AccountingRoutes
from syncd.sandbox.xero.books import INVOICES, KINDS, XeroBooks, render
from syncd.sandbox.xero.guard import XeroGuard, rate_limited
from syncd.sandbox.xero.identity import IdentityServer, RotatingTokenStore, new_tenant
from syncd.sandbox.xero.organisation import OrganisationRoutes
from syncd.sandbox.xero.seeding import seed_xero
from syncd.sandbox.xero.webhooks import SIGNATURE_HEADER, encode_events, intent_to_receive, signature
from syncd.sandbox.xero.wire import json_response

API_PREFIX = "/api.xro/2.0"
INTENT_RETRY_S = 5.0  # how soon a target that failed the intent-to-receive check is checked again
# Xero's documented limits per organisation (and per app across organisations); access tokens live 30 minutes.
DEFAULT_LIMITS: dict[str, Any] = {
    "window_s": 60, "window_max": 60, "daily_cap": 5_000, "app_window_max": 10_000, "concurrent_max": 5,
    "token_lifetime_s": 1800,
}  # fmt: skip


class XeroSimulator(Simulator):
    """One Xero organisation, one OAuth app and its webhook subscription."""

    name: ClassVar[str] = "xero"
    fault_exempt_prefixes: ClassVar[tuple[str, ...]] = ("/connect/", "/identity/", "/connections", "/Connections")

    def __init__(self, *, clock: Clock = time.time, rng_seed: int = 0) -> None:
        super().__init__(clock=clock, rng_seed=rng_seed)
        self.tenant = new_tenant()
        self.tokens = RotatingTokenStore(
            client_id=secrets.token_hex(16).upper(),
            client_secret=secrets.token_urlsafe(36),
            lifetime_s=float(DEFAULT_LIMITS["token_lifetime_s"]),
            clock=clock,
        )
        self.token_stores.append(self.tokens)
        self.quota = QuotaCounter(window_s=60, window_max=60, daily_cap=5_000, clock=clock)
        self.app_quota = QuotaCounter(window_s=60, window_max=10_000, daily_cap=10**9, clock=clock)
        self.quotas.extend([self.quota, self.app_quota])
        self.guard = XeroGuard(
            prefix=API_PREFIX, tokens=lambda: self.tokens, tenant_id=lambda: self.tenant["tenant_id"],
            quota=self.quota, app_quota=self.app_quota, on_rate_limited=self._count_rate_limited,
        )  # fmt: skip
        self.webhooks = WebhookDispatcher(
            stats=self.stats,
            faults=self.faults,
            encode=lambda events: encode_events(events, self.rng),
            sign=lambda method, url, body: {SIGNATURE_HEADER: signature(self.tenant["webhook_key"], body)},
            rng=self.rng,
        )
        self.webhook_dispatchers.append(self.webhooks)
        self.books = XeroBooks(rng=self.rng, now_ms=self._now_ms)
        self.routes = AccountingRoutes(books=lambda: self.books, now_ms=self._now_ms, after_write=self._notify)
        self.event_sequence = 0
        # Each target's intent-to-receive result: only verified targets get events.
        self.intent: dict[str, bool] = {}
        self._intents: set[asyncio.Task[None]] = set()
        self._checking: set[str] = set()
        self._checked_at: dict[str, float] = {}
        self._targets: list[str] = []

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _count_rate_limited(self) -> None:
        self.stats.rate_limited += 1

    # --- the application ---

    def add_routes(self, app: web.Application) -> None:
        """The Accounting API behind its guard, and the identity server."""
        app.middlewares.append(self.guard.middleware)
        IdentityServer(lambda: self.tokens, lambda: self.tenant).add_to(app)
        self.routes.add_to(app, API_PREFIX)
        OrganisationRoutes(tenant=lambda: self.tenant, books=lambda: self.books, now_ms=self._now_ms,
                           after_write=self._notify).add_to(app, API_PREFIX)  # fmt: skip

    def _notify(self) -> None:
        """Queue a webhook event for each contact or invoice changed by the last write."""
        changed, self.books.changed = self.books.changed, []
        self._check_unverified()
        if not self.webhooks.targets:
            return  # no verified subscription: nothing is sent, and no sequence number is used
        for kind, record, created in changed:
            if kind.event_category is None:
                continue
            self.event_sequence += 1
            record_id = record[kind.id_key]
            moment = datetime.fromtimestamp(self.clock(), UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
            self.webhooks.emit({
                "_seq": self.event_sequence,
                "resourceUrl": f"https://api.xero.com{API_PREFIX}/{kind.collection}/{record_id}",
                "resourceId": record_id, "eventDateUtc": moment, "eventType": "CREATE" if created else "UPDATE",
                "eventCategory": kind.event_category, "tenantId": self.tenant["tenant_id"],
                "tenantType": "ORGANISATION",
            })  # fmt: skip

    # --- the Simulator contract ---

    def reset(self) -> None:
        """Drop every record (the app, grants, tenant and webhook key stay)."""
        self.books.clear()
        self.routes.replays.clear()

    def restore_defaults(self) -> None:
        """As after start: also no verified webhook targets and event sequence numbers from 1 again."""
        super().restore_defaults()
        self.intent.clear()
        self._checked_at.clear()
        self.event_sequence = 0

    def seed(self, world: SeedWorld, counts: SeedCounts) -> dict[str, int]:
        """Contacts from people, authorised invoices from seed invoices, payments on them (no webhooks)."""
        return seed_xero(self.books, world, counts)

    def default_limits(self) -> dict[str, Any]:
        """60 calls a minute, 5,000 a day, 5 at once, 10,000 a minute per app, 30-minute access tokens."""
        return dict(DEFAULT_LIMITS)

    def apply_limits(self, body: Mapping[str, Any]) -> None:
        """Keys of DEFAULT_LIMITS with positive numbers; anything else is a ValueError."""
        check_limits(body, DEFAULT_LIMITS, integers=set(DEFAULT_LIMITS) - {"window_s", "token_lifetime_s"})
        self.quota.apply(body)
        if "window_s" in body:
            self.app_quota.window_s = float(body["window_s"])
        if "app_window_max" in body:
            self.app_quota.window_max = int(body["app_window_max"])
        if "concurrent_max" in body:
            self.guard.concurrent_max = int(body["concurrent_max"])
        if "token_lifetime_s" in body:
            self.tokens.lifetime_s = float(body["token_lifetime_s"])

    def records(self, obj: str) -> list[dict[str, Any]] | None:
        """Contacts, Invoices, Payments or Items (any case) as GET answers them, `deleted` for deleted/voided
        invoices, deleted payments and archived contacts."""
        kind = next((k for name, k in KINDS.items() if name.lower() == obj.lower()), None)
        if kind is None:
            return None
        out = []
        for record in self.books.records[kind.collection].values():
            gone = record.get("Status") in ("DELETED", "VOIDED") or record.get("ContactStatus") == "ARCHIVED"
            out.append({**render(kind, record), "deleted": gone})
        return out

    def fault_response(self, kind: Literal["error", "rate_limit"]) -> web.Response:
        """500 with Xero's error body, or the minute limit's 429."""
        if kind == "rate_limit":
            return rate_limited("minute", 60)
        return json_response({"ErrorNumber": 500, "Type": "UnknownErrorException",
                              "Message": "An error occurred in Xero."}, status=500)  # fmt: skip

    def set_webhook_targets(self, urls: list[str]) -> None:
        """Subscribe `urls`; each gets events once it passed the intent-to-receive check."""
        self._targets = list(urls)
        self.webhooks.targets = [u for u in urls if self.intent.get(u)]
        self._check_unverified()

    def _check_unverified(self) -> None:
        """Start the intent-to-receive check of each target not verified yet (none in flight for it, the last
        one over INTENT_RETRY_S ago): as a person re-runs it in the portal once the receiver is up."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop yet: checked when the app starts
        now = time.monotonic()
        for url in self._targets:
            if self.intent.get(url) or url in self._checking or now - self._checked_at.get(url, -1e9) < INTENT_RETRY_S:
                continue
            self._checking.add(url)
            self._checked_at[url] = now
            task = loop.create_task(self._check_intent(url))
            self._intents.add(task)
            task.add_done_callback(self._intents.discard)

    async def _check_intent(self, url: str) -> None:
        try:
            self.intent[url] = await intent_to_receive(url, self.tenant["webhook_key"], self.rng)
        finally:
            self._checking.discard(url)
        self.webhooks.targets = [u for u in self._targets if self.intent.get(u)]

    async def drain_webhooks(self, timeout_s: float = 10.0) -> None:
        """Wait for intent checks in flight, then for every delivery."""
        if self._intents:
            await asyncio.wait_for(asyncio.gather(*list(self._intents)), timeout_s)
        await super().drain_webhooks(timeout_s)

    async def _on_startup(self, app: web.Application) -> None:
        await super()._on_startup(app)
        if self._targets:
            self.set_webhook_targets(self._targets)

    def credentials(self, base: str) -> dict[str, str]:
        """base_url (`…/api.xro/2.0`), identity_url, OAuth client, refresh token, tenant, webhook key."""
        return {
            "base_url": base + API_PREFIX,
            "identity_url": base,
            "authorize_url": base + "/identity/connect/authorize",
            "client_id": self.tokens.client_id,
            "client_secret": self.tokens.client_secret,
            "refresh_token": self.tokens.refresh_token,
            "tenant_id": self.tenant["tenant_id"],
            "webhook_key": self.tenant["webhook_key"],
        }

    def dump_state(self) -> dict[str, Any]:
        """Records, grants, tenant and webhook targets as JSON-able data."""
        return {"books": self.books.dump(), "tokens": self.tokens.to_state(), "tenant": dict(self.tenant),
                "webhook_targets": list(self._targets), "event_sequence": self.event_sequence}  # fmt: skip

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore what dump_state wrote."""
        self.books.load(state["books"])
        self.tokens.load_state(state["tokens"])
        self.tenant = {str(k): str(v) for k, v in state["tenant"].items()}
        self._targets = [str(u) for u in state.get("webhook_targets", [])]
        self.event_sequence = int(state.get("event_sequence", 0))


__all__ = ["INVOICES", "XeroSimulator"]
