"""`ZohoBooksSimulator`: Zoho Books v3 under `/books/v3` and its accounts server under `/oauth/v2` on one port."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from aiohttp import web

from syncd.sandbox.base import Simulator, check_limits
from syncd.sandbox.clock import Clock
from syncd.sandbox.oauth_tokens import TokenStore
from syncd.sandbox.quota import QuotaCounter
from syncd.sandbox.seeding import SeedCounts, SeedWorld
from syncd.sandbox.webhook_dispatcher import WebhookDispatcher
from syncd.sandbox.zohobooks.accounts import AccountsServer
from syncd.sandbox.zohobooks.addresses import AddressRoutes
from syncd.sandbox.zohobooks.contact_persons import ContactPersonRoutes
from syncd.sandbox.zohobooks.contacts import ContactRoutes, contact_json
from syncd.sandbox.zohobooks.context import BooksContext
from syncd.sandbox.zohobooks.errors import INTERNAL_ERROR, error_response
from syncd.sandbox.zohobooks.guard import BooksGuard, rate_limit_response
from syncd.sandbox.zohobooks.invoices import InvoiceRoutes, invoice_json
from syncd.sandbox.zohobooks.items import ItemRoutes, item_json
from syncd.sandbox.zohobooks.ledger import BooksLedger
from syncd.sandbox.zohobooks.organizations import OrganizationRoutes
from syncd.sandbox.zohobooks.payments import PaymentRoutes, payment_json
from syncd.sandbox.zohobooks.seeding import seed_books
from syncd.sandbox.zohobooks.webhooks import SIGNATURE_HEADER, encode_events, signature

API_PREFIX = "/books/v3"
ORGANIZATION_ID = "700000123456"
DEFAULT_LIMITS: dict[str, Any] = {"window_s": 60, "window_max": 100, "daily_cap": 10_000, "token_lifetime_s": 3600}


class ZohoBooksSimulator(Simulator):
    """One Zoho Books organisation with its OAuth client, quota and webhook subscription."""

    name: ClassVar[str] = "zohobooks"
    fault_exempt_prefixes: ClassVar[tuple[str, ...]] = ("/oauth/",)

    def __init__(self, *, clock: Clock = time.time, rng_seed: int = 0) -> None:
        super().__init__(clock=clock, rng_seed=rng_seed)
        self.organization_id = ORGANIZATION_ID
        self.webhook_secret = secrets.token_hex(16)  # Zoho wants 12-50 alphanumeric characters
        self.tokens = TokenStore(
            client_id="1000." + secrets.token_hex(15).upper(),
            client_secret=secrets.token_hex(21),
            lifetime_s=float(DEFAULT_LIMITS["token_lifetime_s"]),
            clock=clock,
            token_prefix="1000.",
        )
        self.token_stores.append(self.tokens)
        self.quota = QuotaCounter(
            window_s=DEFAULT_LIMITS["window_s"],
            window_max=DEFAULT_LIMITS["window_max"],
            daily_cap=DEFAULT_LIMITS["daily_cap"],
            clock=clock,
        )
        self.quotas.append(self.quota)
        self.webhooks = WebhookDispatcher(
            stats=self.stats,
            faults=self.faults,
            encode=encode_events,
            sign=lambda method, url, body: {SIGNATURE_HEADER: signature(self.webhook_secret, url, body)},
            max_batch=1,
            rng=self.rng,
        )
        self.webhook_dispatchers.append(self.webhooks)
        self._event_seq = 0
        self._quiet = False
        self.ctx = BooksContext(
            ledger=BooksLedger(), clock=clock, organization_id=self.organization_id, notify=self._notify
        )
        self.contact_routes = ContactRoutes(self.ctx)
        self.invoice_routes = InvoiceRoutes(self.ctx)
        self.payment_routes = PaymentRoutes(self.ctx)
        self.item_routes = ItemRoutes(self.ctx)
        self.person_routes = ContactPersonRoutes(self.ctx)
        self.address_routes = AddressRoutes(self.ctx)
        self.organization_routes = OrganizationRoutes(lambda: self.organization_id)

    # --- the application ---

    def add_routes(self, app: web.Application) -> None:
        """Books API routes, the accounts server, and the guard in front of the API."""
        guard = BooksGuard(
            prefix=API_PREFIX,
            organization_id=lambda: self.organization_id,
            tokens=lambda: self.tokens,
            quota=self.quota,
            on_rate_limited=self._count_rate_limited,
        )
        app.middlewares.append(guard.middleware)
        AccountsServer(lambda: self.tokens, lambda request: f"{request.scheme}://{request.host}").add_to(app)
        # Contact persons, addresses and organisations are not called by syncd: other readers of Books call them.
        for routes in (self.contact_routes, self.invoice_routes, self.payment_routes, self.item_routes,
                       self.person_routes, self.address_routes, self.organization_routes):
            routes.add_to(app, API_PREFIX)

    def _count_rate_limited(self) -> None:
        self.stats.rate_limited += 1

    def _notify(self, module: str, action: str, entity: dict[str, Any]) -> None:
        """Queue the webhook of one change (nothing while seeding: imports send no webhooks)."""
        if self._quiet:
            return
        self._event_seq += 1
        self.webhooks.emit(
            {
                "event_id": f"{self.organization_id}-{self._event_seq}",
                "event_type": f"{module}_{action}",
                "event_time": self.ctx.stamp(self.clock()),
                "organization_id": self.organization_id,
                "module": module,
                module: entity,
            }
        )

    # --- the Simulator contract ---

    def reset(self) -> None:
        """Drop every record (the OAuth client, grants and webhook secret stay)."""
        self.ctx.ledger = BooksLedger()

    def restore_defaults(self) -> None:
        """As after start, a payment followed by its invoices' webhooks again."""
        super().restore_defaults()
        self.payment_routes.invoice_webhooks = True

    def seed(self, world: SeedWorld, counts: SeedCounts) -> dict[str, int]:
        """Contacts from people (with their company), invoices from deals, payments on those invoices."""
        self._quiet = True
        try:
            return seed_books(self.contact_routes, self.invoice_routes, self.payment_routes, world, counts)
        finally:
            self._quiet = False

    def default_limits(self) -> dict[str, Any]:
        """100 requests a minute, 10,000 a day, one-hour access tokens."""
        return dict(DEFAULT_LIMITS)

    def apply_limits(self, body: Mapping[str, Any]) -> None:
        """Keys window_s, window_max, daily_cap, token_lifetime_s; anything else is a ValueError."""
        check_limits(body, DEFAULT_LIMITS, integers=("window_max", "daily_cap"))
        self.quota.apply(body)
        if "token_lifetime_s" in body:
            self.tokens.lifetime_s = float(body["token_lifetime_s"])

    def records(self, obj: str) -> list[dict[str, Any]] | None:
        """contacts, invoices, customerpayments (or payments), items; each with `deleted` true/false."""
        ctx = self.ctx
        ledger = ctx.ledger
        if obj == "contacts":
            return [{**contact_json(ctx, c), "deleted": c.deleted} for c in ledger.contacts.values()]
        if obj == "invoices":
            return [{**invoice_json(ctx, i), "deleted": i.deleted} for i in ledger.invoices.values()]
        if obj in ("customerpayments", "payments"):
            return [{**payment_json(ctx, p), "deleted": p.deleted} for p in ledger.payments.values()]
        if obj == "items":
            return [{**item_json(ctx, i), "deleted": i.deleted} for i in ledger.items.values()]
        return None

    def fault_response(self, kind: Literal["error", "rate_limit"]) -> web.Response:
        """500 `{"code": 1000, "message": "Internal error"}` or the window 429."""
        if kind == "rate_limit":
            return rate_limit_response(None, self.quota.daily_cap)
        return error_response(500, INTERNAL_ERROR, "Internal error")

    def set_webhook_targets(self, urls: list[str]) -> None:
        """Every change is POSTed to each of these URLs from now on."""
        self.webhooks.targets = list(urls)

    def credentials(self, base: str) -> dict[str, str]:
        """base_url (`…/books/v3`), accounts_url, OAuth client, refresh token, organisation, webhook secret."""
        return {
            "base_url": base + API_PREFIX,
            "accounts_url": base,
            "client_id": self.tokens.client_id,
            "client_secret": self.tokens.client_secret,
            "refresh_token": self.tokens.refresh_token,
            "organization_id": self.organization_id,
            "webhook_secret": self.webhook_secret,
        }

    def dump_state(self) -> dict[str, Any]:
        """Records, grants, webhook secret and targets as JSON-able data."""
        return {
            "ledger": self.ctx.ledger.model_dump(mode="json"),
            "tokens": self.tokens.to_state(),
            "organization_id": self.organization_id,
            "webhook_secret": self.webhook_secret,
            "webhook_targets": list(self.webhooks.targets),
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore what dump_state wrote."""
        self.ctx.ledger = BooksLedger.model_validate(state["ledger"])
        self.tokens.load_state(state["tokens"])
        self.organization_id = str(state.get("organization_id", self.organization_id))
        self.ctx.organization_id = self.organization_id
        self.webhook_secret = str(state.get("webhook_secret", self.webhook_secret))
        self.webhooks.targets = [str(u) for u in state.get("webhook_targets", [])]
