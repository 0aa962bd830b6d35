"""The HubSpot CRM v3 simulator: credentials, quotas, the request gateway and the Simulator hooks."""

from __future__ import annotations

import json
import math
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

from aiohttp import web

from syncd.sandbox.base import Simulator
from syncd.sandbox.control_plane import json_error
from syncd.sandbox.hubspot.associations import AssociationStore, AssociationType, Edge
from syncd.sandbox.hubspot.catalog import (
    DEFAULT_PROPERTIES,
    OBJECT_TYPE_IDS,
    UNGRANTED_OBJECTS,
    resolve_object_type,
)
from syncd.sandbox.hubspot.errors import HubSpotError, json_response
from syncd.sandbox.hubspot.oauth import HUB_ID, add_oauth_routes, check_bearer
from syncd.sandbox.hubspot.objects import CrmStore, Record
from syncd.sandbox.hubspot.webhooks import (
    AppSettings,
    HubSpotWebhookDispatcher,
    RoutedEvents,
    Subscriptions,
    encode_events,
    signed_headers,
)
from syncd.sandbox.oauth_tokens import TokenStore
from syncd.sandbox.quota import QuotaCounter, QuotaDecision
from syncd.sandbox.seeding import SeedCounts, SeedWorld

ApiHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]

APP_ID = 54321
DEFAULT_LIMITS: dict[str, Any] = {
    "window_s": 10.0,
    "window_max": 100,
    "daily_cap": 250_000,
    "token_lifetime_s": 1800.0,
    "search_lag_s": 0.0,
    # CRM search has its own limit on top of the general one: 4 requests a second (contracts README; HubSpot's
    # changelog "crm-search-api-rate-limit-increase").
    "search_per_s": 4,
}


class HubSpotSimulator(Simulator):
    """HubSpot CRM v3 on loopback: objects, search, associations v4, properties, OAuth, webhooks."""

    name = "hubspot"
    fault_exempt_prefixes = ("/oauth/",)

    def __init__(self, *, clock: Callable[[], float] = time.time, rng_seed: int = 0) -> None:
        super().__init__(clock=clock, rng_seed=rng_seed)
        self.client_id = f"hubspot-client-{rng_seed}"
        self.client_secret = f"hubspot-secret-{self.rng.getrandbits(64):016x}"
        # The signature key of HubSpot webhooks is the app's client secret.
        self.app_secret = self.client_secret
        # The Webhooks management API authenticates the developer account, not the app: its own key (`hapikey`),
        # a UUID like HubSpot's, from its own generator so that the simulator's other random draws stay as they were.
        self.developer_api_key = str(uuid.UUID(int=random.Random(f"hubspot-developer-{rng_seed}").getrandbits(128),
                                               version=4))
        self.tokens = TokenStore(
            client_id=self.client_id, client_secret=self.client_secret, lifetime_s=1800.0, clock=clock,
            token_prefix="hs-",
        )
        self.token_expiry: dict[str, float] = {}
        self.token_stores.append(self.tokens)
        self.quota = QuotaCounter(window_s=10.0, window_max=100, daily_cap=250_000, clock=clock)
        self.quotas.append(self.quota)
        # Fixed one-second windows; the daily cap is the general quota's business, so this one never binds.
        self.search_quota = QuotaCounter(window_s=1.0, window_max=4, daily_cap=2**62, clock=clock)
        self.quotas.append(self.search_quota)
        self.search_lag_s = 0.0
        self.store = CrmStore(clock=clock, on_change=self._on_change)
        self.associations = AssociationStore(on_change=self._on_association_change)
        self.subscriptions = Subscriptions(app_id=APP_ID, portal_id=HUB_ID, clock=clock)
        self.dispatcher = HubSpotWebhookDispatcher(
            stats=self.stats, faults=self.faults, encode=encode_events,
            sign=lambda method, url, body: signed_headers(self.app_secret, method, url, body),
            rng=self.rng,
        )
        # The app's own deliveries, to the target URL of its webhook settings (none until someone sets it).
        self.app_dispatcher = HubSpotWebhookDispatcher(
            stats=self.stats, faults=self.faults, encode=encode_events,
            sign=lambda method, url, body: signed_headers(self.app_secret, method, url, body),
            rng=self.rng,
        )
        self.app_settings: AppSettings | None = None
        self.webhook_dispatchers.extend([self.dispatcher, self.app_dispatcher])
        self._quiet = False  # true while seeding: seeded records are pre-existing data, not events
        self._secondly: dict[int, int] = {}

    # --- Simulator hooks ---

    def add_routes(self, app: web.Application) -> None:
        """OAuth, objects, search, properties, associations, the Webhooks management API, and the published
        endpoints other readers call: schemas, pipelines, owners, legacy v1/v2 properties and records."""
        from syncd.sandbox.hubspot.associations_api import add_association_routes
        from syncd.sandbox.hubspot.associations_v3 import add_v3_association_routes
        from syncd.sandbox.hubspot.legacy_properties import add_legacy_property_routes
        from syncd.sandbox.hubspot.legacy_records import add_legacy_record_routes
        from syncd.sandbox.hubspot.objects_api import add_object_routes
        from syncd.sandbox.hubspot.owners import add_owner_routes
        from syncd.sandbox.hubspot.pipelines import add_pipeline_routes
        from syncd.sandbox.hubspot.properties_api import add_property_routes
        from syncd.sandbox.hubspot.schemas_api import add_schema_routes
        from syncd.sandbox.hubspot.token_info import add_token_info_routes
        from syncd.sandbox.hubspot.webhooks_api import add_webhooks_routes

        app.router.add_post("/_sandbox/restore/{object}/{object_id}", self._handle_restore)
        app.router.add_post("/_sandbox/fresh-portal", self._handle_fresh_portal)
        add_oauth_routes(app, self)
        add_token_info_routes(app, self, APP_ID)
        add_object_routes(app, self)
        add_association_routes(app, self)
        add_property_routes(app, self)
        add_webhooks_routes(app, self)
        # What syncd does not call but other readers of HubSpot do (issue 11: users point their tools here too).
        add_schema_routes(app, self)
        add_v3_association_routes(app, self)
        add_pipeline_routes(app, self)
        add_owner_routes(app, self)
        add_legacy_property_routes(app, self)
        add_legacy_record_routes(app, self)

    def reset(self) -> None:
        """Drop every record and association (credentials, properties, webhook settings and subscriptions stay)."""
        self.store.clear()
        self.associations.clear()

    def restore_defaults(self) -> None:
        """As after start, the app's webhook settings and subscriptions included (none), and the property
        definitions (custom ones made since dropped, syncd's back)."""
        super().restore_defaults()
        self.store.restore_definitions()
        self.set_app_settings(None)
        self.subscriptions.clear()

    def seed(self, world: SeedWorld, counts: SeedCounts) -> dict[str, int]:
        """Companies, contacts (with their company), deals with line items and associations."""
        from syncd.sandbox.hubspot.seeding import seed_portal

        self._quiet = True
        try:
            return seed_portal(self, world, counts)
        finally:
            self._quiet = False

    def default_limits(self) -> dict[str, Any]:
        """HubSpot's Free/Starter quotas, 30-minute tokens and no search lag."""
        return dict(DEFAULT_LIMITS)

    def apply_limits(self, body: Mapping[str, Any]) -> None:
        """window_s, window_max, daily_cap, token_lifetime_s, search_lag_s, search_per_s; anything else is a
        ValueError."""
        unknown = sorted(set(body) - set(DEFAULT_LIMITS))
        if unknown:
            raise ValueError(f"unknown limit keys: {', '.join(unknown)}; expected some of {sorted(DEFAULT_LIMITS)}")
        for key, value in body.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"{key} must be a number")
            if value < 0 or (value == 0 and key != "search_lag_s"):
                raise ValueError(f"{key} must be positive")
            if key in ("window_max", "daily_cap", "search_per_s") and not float(value).is_integer():
                raise ValueError(f"{key} must be an integer")
        self.quota.apply(body)
        if "token_lifetime_s" in body:
            self.tokens.lifetime_s = float(body["token_lifetime_s"])
        if "search_lag_s" in body:
            self.search_lag_s = float(body["search_lag_s"])
        if "search_per_s" in body:
            self.search_quota.window_max = int(body["search_per_s"])

    def records(self, obj: str) -> list[dict[str, Any]] | None:
        """Every record of an object (archived and merged ones flagged), with its associations."""
        name = resolve_object_type(obj)
        if name is None:
            return None
        out = []
        for record in sorted(self.store.records[name].values(), key=lambda r: r.id):
            state = record.to_state()
            state["associations"] = {
                to_obj: [str(i) for i, _ in self.associations.targets(name, record.id, to_obj)]
                for to_obj in OBJECT_TYPE_IDS
                if self.associations.targets(name, record.id, to_obj)
            }
            out.append(state)
        return out

    def fault_response(self, kind: Literal["error", "rate_limit"]) -> web.Response:
        """500 in the Error shape, or the ten-secondly 429."""
        if kind == "rate_limit":
            # An injected 429 reports an exhausted window without spending the real quota.
            spent = QuotaDecision(False, "window", 0, self.quota.daily_cap, self.quota.window_s)
            return self._rate_limited("window", spent)
        return HubSpotError(500, "internal error", "INTERNAL_ERROR").response()

    def set_webhook_targets(self, urls: list[str]) -> None:
        """Control-plane targets: each receives every event of every object (the app's settings need not be set)."""
        self.dispatcher.targets = list(urls)

    def set_app_settings(self, settings: AppSettings | None) -> None:
        """The app's webhook settings (None: cleared); its subscriptions' events go to their target URL."""
        self.app_settings = settings
        self.app_dispatcher.targets = [settings.target_url] if settings is not None else []

    def credentials(self, base: str) -> dict[str, str]:
        """base_url, client_id, client_secret, refresh_token, app_secret, and the app id and developer API key
        that the Webhooks management API takes."""
        return {
            "base_url": base,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "refresh_token": self.tokens.refresh_token,
            "app_secret": self.app_secret,
            "app_id": str(APP_ID),
            "developer_api_key": self.developer_api_key,
        }

    def dump_state(self) -> dict[str, Any]:
        """Records, associations, custom properties, webhook settings and subscriptions, grants and limits."""
        return {
            "store": self.store.dump(),
            "associations": self.associations.dump(),
            "webhooks": {
                "developer_api_key": self.developer_api_key,
                "settings": self.app_settings.to_state() if self.app_settings is not None else None,
                "subscriptions": self.subscriptions.to_state(),
            },
            "tokens": self.tokens.to_state(),
            "limits": {
                "window_s": self.quota.window_s, "window_max": self.quota.window_max,
                "daily_cap": self.quota.daily_cap, "token_lifetime_s": self.tokens.lifetime_s,
                "search_lag_s": self.search_lag_s, "search_per_s": self.search_quota.window_max,
            },
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore what dump_state produced."""
        self.store.load(state.get("store", {}))
        self.associations.load(state.get("associations", []))
        # (Older state files keep a "subscriptions" list: the sandbox's catch-all, now built in; it is ignored.)
        webhooks = state.get("webhooks")
        if webhooks is not None:
            self.developer_api_key = str(webhooks.get("developer_api_key", self.developer_api_key))
            settings = webhooks.get("settings")
            self.set_app_settings(AppSettings.from_state(settings) if settings is not None else None)
            self.subscriptions.load_state(webhooks.get("subscriptions", {}))
        if "tokens" in state:
            self.tokens.load_state(state["tokens"])
            self.client_id, self.client_secret = self.tokens.client_id, self.tokens.client_secret
            self.app_secret = self.client_secret
        if "limits" in state:
            self.apply_limits({k: v for k, v in state["limits"].items() if v is not None})

    async def _handle_fresh_portal(self, request: web.Request) -> web.Response:
        """POST /_sandbox/fresh-portal: no records, no custom properties or their groups (syncd's `syncd_*`
        included), as in a new HubSpot account that `syncd setup` has not prepared yet."""
        self.reset()
        self.store.drop_custom_definitions()
        return web.json_response({"properties": {obj: len(p) for obj, p in self.store.properties.items()}})

    async def _handle_restore(self, request: web.Request) -> web.Response:
        """POST /_sandbox/restore/{object}/{id}: what a user restoring a record from the recycle bin does."""
        obj = resolve_object_type(request.match_info["object"])
        record = None if obj is None else self.store.get(obj, request.match_info["object_id"], archived=True)
        if obj is None or record is None:
            return json_error(404, "no archived record with that object and id")
        try:
            self.store.restore(obj, record)
        except HubSpotError as exc:
            return json_error(exc.status, exc.message)
        return web.json_response({"restored": record.to_state()})

    # --- the gateway every API route goes through ---

    def api(self, handler: ApiHandler) -> ApiHandler:
        """Wrap an API handler: bearer check, quota, HubSpot-shaped errors and rate-limit headers."""

        async def gateway(request: web.Request) -> web.StreamResponse:
            try:
                check_bearer(request, self)
            except HubSpotError as exc:
                return exc.response()
            decision = self.quota.take()
            if not decision.allowed:
                self.stats.rate_limited += 1
                return self._rate_limited(decision.policy or "window", decision)
            try:
                response = await handler(request)
            except HubSpotError as exc:
                response = exc.response()
            response.headers.update(self._limit_headers(decision))
            return response

        return gateway

    def take_search_slot(self) -> web.Response | None:
        """Spend one search request of this second; the 429 to answer instead when the second is used up."""
        decision = self.search_quota.take()
        if decision.allowed:
            return None
        self.stats.rate_limited += 1
        return self._rate_limited("secondly", decision)

    def _limit_headers(self, decision: QuotaDecision) -> dict[str, str]:
        # The secondly headers are still sent, but HubSpot's only enforced burst policy is the ten-secondly
        # window (plus search's own per-second limit), so nothing here refuses a request for its second.
        second = int(self.clock())
        used = self._secondly.get(second, 0) + 1
        self._secondly = {second: used}
        secondly = max(1, math.ceil(self.quota.window_max / max(self.quota.window_s, 1.0)))
        return {
            "X-HubSpot-RateLimit-Daily": str(self.quota.daily_cap),
            "X-HubSpot-RateLimit-Daily-Remaining": str(decision.daily_remaining),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(self.quota.window_s * 1000)),
            "X-HubSpot-RateLimit-Max": str(self.quota.window_max),
            "X-HubSpot-RateLimit-Remaining": str(decision.window_remaining),
            "X-HubSpot-RateLimit-Secondly": str(secondly),
            "X-HubSpot-RateLimit-Secondly-Remaining": str(max(0, secondly - used)),
        }

    def _rate_limited(self, policy: str, decision: QuotaDecision) -> web.Response:
        daily = policy == "daily"
        policy_name = {"daily": "DAILY", "secondly": "SECONDLY"}.get(policy, "TEN_SECONDLY_ROLLING")
        body = {
            "status": "error",
            "message": f"You have reached your {policy_name.lower()} limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": HubSpotError(429, "", "RATE_LIMITS").body()["correlationId"],
            "category": "RATE_LIMITS",
            "policyName": policy_name,
        }
        headers = self._limit_headers(decision) if policy != "secondly" else {}
        headers["Retry-After"] = str(max(1, math.ceil(decision.window_reset_s))) if not daily else "3600"
        return json_response(body, status=429, headers=headers)

    # --- helpers used by the route modules ---

    def object_type(self, raw: str) -> str:
        """The canonical object name for a path segment; HubSpot's 403 MISSING_SCOPES for a standard object
        the app has no scope for (readers skip those), its 400 for an unknown one."""
        name = resolve_object_type(raw)
        if name is not None:
            return name
        scope = UNGRANTED_OBJECTS.get(raw.lower())
        if scope is not None:
            raise HubSpotError(
                403,
                "This app hasn't been granted all required scopes to make this call. Read more about required "
                "scopes here: https://developers.hubspot.com/scopes.",
                "MISSING_SCOPES",
                errors=[{"message": "One or more of the following scopes are required.",
                         "context": {"requiredGranularScopes": [scope]}}],
            )
        raise HubSpotError(400, f"Unable to infer object type from: {raw}", "VALIDATION_ERROR")

    def associated_type(self, raw: str) -> str | None:
        """The object named in an `associations` query parameter; None for a standard object the portal does
        not hold (no record can be associated with it, so there is nothing to list), 400 for an unknown one."""
        if raw.lower() in UNGRANTED_OBJECTS:
            return None
        return self.object_type(raw)

    async def json_body(self, request: web.Request) -> Any:
        """The parsed JSON body, or HubSpot's 400 for malformed JSON."""
        text = await request.text()
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise HubSpotError(
                400, f"Invalid input JSON on line {exc.lineno}, column {exc.colno}: {exc.msg}", "VALIDATION_ERROR"
            ) from None

    def default_properties(self, obj: str) -> tuple[str, ...]:
        """The properties returned when a request names none."""
        return DEFAULT_PROPERTIES[obj]

    def _on_association_change(self, edge: Edge, spec: AssociationType, removed: bool) -> None:
        if self._quiet:
            return
        self._emit(self.subscriptions.association_events(edge, spec, removed))

    def _on_change(self, kind: str, obj: str, record: Record, extra: dict[str, Any]) -> None:
        if self._quiet:
            return
        self._emit(self.subscriptions.events(kind, obj, record, extra))
        if kind == "creation":
            self._emit(self.subscriptions.creation_property_events(obj, record, extra.get("properties", {})))

    def _emit(self, routed: RoutedEvents) -> None:
        # Copies: each dispatcher re-encodes its own batches (attemptNumber), the events must not be shared.
        for event in routed.control:
            self.dispatcher.emit(dict(event))
        for event in routed.app:
            self.app_dispatcher.emit(dict(event))
