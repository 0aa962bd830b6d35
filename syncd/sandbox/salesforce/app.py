"""SalesforceSimulator: the Salesforce REST API of one simulated org, served over TLS by the sandbox."""

from __future__ import annotations

import json
import re
import ssl
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

from aiohttp import web

from syncd.sandbox.base import Simulator
from syncd.sandbox.clock import Clock
from syncd.sandbox.control_plane import Handler, json_error
from syncd.sandbox.oauth_tokens import TokenStore
from syncd.sandbox.quota import QuotaCounter
from syncd.sandbox.salesforce.auth import OAuthEndpoints
from syncd.sandbox.salesforce.bulk import BulkQueryEndpoints
from syncd.sandbox.salesforce.bulk_v1 import BulkV1Endpoints
from syncd.sandbox.salesforce.cdc import ChangeFeed
from syncd.sandbox.salesforce.collections import CollectionEndpoints
from syncd.sandbox.salesforce.identity import IdentityEndpoints
from syncd.sandbox.salesforce.query import QueryEndpoints
from syncd.sandbox.salesforce.records import RecordError, RecordStore
from syncd.sandbox.salesforce.responses import (
    API_PREFIX,
    VERSION_PATTERN,
    sf_error,
    sf_errors,
    sf_json,
    version_of,
)
from syncd.sandbox.salesforce.schema import object_spec
from syncd.sandbox.salesforce.seeding import seed_org
from syncd.sandbox.salesforce.sobjects import ORIGIN_KEY, SObjectEndpoints
from syncd.sandbox.seeding import SeedCounts, SeedWorld
from syncd.sandbox.tls import make_self_signed

DEFAULT_DAILY_CAP = 100_000
DEFAULT_SESSION_S = 7200.0  # the default org session timeout: 2 hours
DEFAULT_WINDOW_S = 1.0
DEFAULT_WINDOW_MAX = 1_000_000  # the short window is off unless a test turns it down
LIMIT_KEYS = ("daily_cap", "token_lifetime_s", "window_s", "window_max")
_CLIENT_OPTION = re.compile(r"client\s*=\s*([^,;\s]+)")


class SalesforceSimulator(Simulator):
    """Salesforce REST (v59-style) over one in-memory org: OAuth, SOQL, sObjects, collections, limits, CDC."""

    name: ClassVar[str] = "salesforce"
    fault_exempt_prefixes: ClassVar[tuple[str, ...]] = ("/services/oauth2/",)

    def __init__(
        self,
        *,
        clock: Clock = time.time,
        rng_seed: int = 0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(clock=clock, rng_seed=rng_seed)
        self.tls = tls  # served by the runner's site; kept so callers can find it
        self.ca_cert: str | None = None  # the certificate's file, for a client's trust (set by for_sandbox)
        # Consumer key and secret shaped like a connected app's, reproducible from the seed.
        self.tokens = TokenStore(
            client_id="3MVG9sandbox"
            + "".join(self.rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz") for _ in range(40)),
            client_secret=f"{self.rng.getrandbits(256):064X}",
            lifetime_s=DEFAULT_SESSION_S,
            clock=self.clock,
            token_prefix="00DSb!",
        )
        self.quota = QuotaCounter(
            window_s=DEFAULT_WINDOW_S, window_max=DEFAULT_WINDOW_MAX, daily_cap=DEFAULT_DAILY_CAP, clock=self.clock
        )
        self.store = RecordStore(self.clock)
        self.feed = ChangeFeed(
            stats=self.stats,
            faults=self.faults,
            secret=lambda: self.tokens.client_secret,
            clock=self.clock,
            rng=self.rng,
        )
        self.store.listeners.append(self.feed.on_changes)
        self.token_stores.append(self.tokens)
        self.quotas.append(self.quota)
        self.webhook_dispatchers.append(self.feed.dispatcher)
        self.oauth = OAuthEndpoints(self.tokens, self.clock)
        self.queries = QueryEndpoints(self.store, self.clock)
        self.sobjects = SObjectEndpoints(self.store, self.clock)
        self.collections = CollectionEndpoints(self.store)
        self.bulk_queries = BulkQueryEndpoints(self.store, self.clock)
        self.bulk_v1 = BulkV1Endpoints(self.store, self.tokens, self.quota, self.clock)

    # --- routes ---

    def add_routes(self, app: web.Application) -> None:
        """The OAuth endpoints and the REST API under /services/data/vNN.N/."""
        app.middlewares.append(self._api_middleware)
        app.router.add_post("/_sandbox/merge/{object}", self._handle_merge)
        app.add_routes(self.oauth.routes())
        app.add_routes(IdentityEndpoints(self.tokens).routes())
        # Bulk API 1.0 lives outside /services/data and checks its own session header.
        app.add_routes(self.bulk_v1.routes())
        v = f"/services/data/{{version:{VERSION_PATTERN}}}"
        routes: list[tuple[str, str, Handler]] = [
            ("GET", "/services/data", self._versions),
            ("GET", v, self._resources),
            ("GET", f"{v}/limits", self._limits),
            ("GET", f"{v}/query", self.queries.query),
            ("GET", f"{v}/queryAll", self.queries.query_all),
            ("GET", f"{v}/{{endpoint:query|queryAll}}/{{locator}}", self.queries.more),
            ("GET", f"{v}/sobjects", self.sobjects.list_objects),
            ("GET", f"{v}/sobjects/{{sobject}}/describe", self.sobjects.describe),
            ("GET", f"{v}/sobjects/{{sobject}}/updated", self.sobjects.updated),
            ("GET", f"{v}/sobjects/{{sobject}}/deleted", self.sobjects.deleted),
            ("GET", f"{v}/sobjects/{{sobject}}", self.sobjects.basic_info),
            ("POST", f"{v}/sobjects/{{sobject}}", self.sobjects.create),
            ("GET", f"{v}/sobjects/{{sobject}}/{{record_id}}", self.sobjects.get),
            ("PATCH", f"{v}/sobjects/{{sobject}}/{{record_id}}", self.sobjects.update),
            ("DELETE", f"{v}/sobjects/{{sobject}}/{{record_id}}", self.sobjects.delete),
            ("GET", f"{v}/sobjects/{{sobject}}/{{field}}/{{value}}", self.sobjects.get_by_external_id),
            ("PATCH", f"{v}/sobjects/{{sobject}}/{{field}}/{{value}}", self.sobjects.upsert),
            ("POST", f"{v}/composite/sobjects", self.collections.create),
            ("PATCH", f"{v}/composite/sobjects", self.collections.update),
            ("DELETE", f"{v}/composite/sobjects", self.collections.delete),
            ("GET", f"{v}/composite/sobjects/{{sobject}}", self.collections.retrieve),
            ("POST", f"{v}/composite/sobjects/{{sobject}}", self.collections.retrieve),
            ("PATCH", f"{v}/composite/sobjects/{{sobject}}/{{field}}", self.collections.upsert),
            # Bulk API 2.0 query jobs: syncd does not use them, ETL readers of Salesforce do.
            *self.bulk_queries.routes(v),
        ]
        for method, path, handler in routes:
            # Salesforce answers with and without the trailing slash, and the SDKs use both.
            app.router.add_route(method, path, handler)
            app.router.add_route(method, path + "/", handler)

    @web.middleware
    async def _api_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Session check, API allocation, Sforce-Limit-Info, and Salesforce-shaped errors for the REST API."""
        if not request.path.startswith(API_PREFIX) or request.path.rstrip("/") == "/services/data":
            return await handler(request)
        token = _session_token(request)
        if token is None or self.tokens.check(token) != "ok":
            return sf_error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        decision = self.quota.take()
        response: web.StreamResponse
        if not decision.allowed:
            self.stats.rate_limited += 1
            what = "TotalRequests" if decision.policy == "daily" else "ConcurrentPerOrgLongTxn"
            response = sf_error(403, "REQUEST_LIMIT_EXCEEDED", f"{what} Limit exceeded.")
        else:
            request[ORIGIN_KEY] = _change_origin(request)
            try:
                response = await handler(request)
            except RecordError as exc:
                response = sf_errors(exc.status, exc.errors)
            except web.HTTPMethodNotAllowed as exc:
                allowed = ",".join(sorted(exc.allowed_methods))
                response = sf_error(
                    405, "METHOD_NOT_ALLOWED", f"HTTP Method '{request.method}' not allowed. Allowed are {allowed}"
                )
            except web.HTTPNotFound:
                response = sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        response.headers["Sforce-Limit-Info"] = f"api-usage={self.quota.daily_used}/{self.quota.daily_cap}"
        return response

    async def _handle_merge(self, request: web.Request) -> web.Response:
        """POST /_sandbox/merge/{object} `{"master_id", "merged_ids"}`: what a user merging duplicates in the
        UI does (the REST API has no merge); answers the surviving record and the ids merged into it."""
        spec = object_spec(request.match_info["object"])
        if spec is None:
            return json_error(400, f"unknown object {request.match_info['object']!r}")
        try:
            body = json.loads(await request.text() or "null")
        except ValueError:
            return json_error(400, "the body is not JSON")
        master_id = body.get("master_id") if isinstance(body, dict) else None
        merged_ids = body.get("merged_ids") if isinstance(body, dict) else None
        if (
            not isinstance(master_id, str)
            or not isinstance(merged_ids, list)
            or not all(isinstance(i, str) for i in merged_ids)
        ):
            return json_error(400, 'expected {"master_id": "<id>", "merged_ids": ["<id>", ...]}')
        try:
            # A UI merge: CDC reports an empty changeOrigin for changes made in the UI.
            with self.store.transaction(""):
                merged = self.store.merge(spec, master_id, merged_ids)
        except RecordError as exc:
            return json_error(400, "; ".join(f"{e.error_code}: {e.message}" for e in exc.errors))
        master = self.store.public(self.store.get(spec, master_id))
        return web.json_response({"master": master, "merged_ids": merged})

    async def _versions(self, request: web.Request) -> web.Response:
        return sf_json(
            [
                {"label": label, "url": f"/services/data/v{number}", "version": number}
                for label, number in (("Spring '23", "57.0"), ("Summer '23", "58.0"), ("Winter '24", "59.0"))
            ]
        )

    async def _resources(self, request: web.Request) -> web.Response:
        base = f"{API_PREFIX}{version_of(request)}"
        return sf_json({name: f"{base}/{name}" for name in ("sobjects", "query", "queryAll", "limits", "composite")})

    async def _limits(self, request: web.Request) -> web.Response:
        cap = self.quota.daily_cap
        return sf_json(
            {
                "DailyApiRequests": {"Max": cap, "Remaining": max(0, cap - self.quota.daily_used)},
                "DataStorageMB": {"Max": 5, "Remaining": 5},
                "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200},
            }
        )

    # --- the Simulator contract ---

    def reset(self) -> None:
        """Drop every record and open query cursor; credentials stay."""
        self.store.purge()
        self.queries.cursors.clear()
        self.bulk_queries.jobs.clear()
        self.bulk_v1.jobs.clear()

    def seed(self, world: SeedWorld, counts: SeedCounts) -> dict[str, int]:
        """Accounts, Contacts and Opportunities with line items from the seed world."""
        return seed_org(self.store, world, counts)

    def default_limits(self) -> dict[str, Any]:
        """The limits of a fresh org."""
        return {
            "daily_cap": DEFAULT_DAILY_CAP,
            "token_lifetime_s": DEFAULT_SESSION_S,
            "window_s": DEFAULT_WINDOW_S,
            "window_max": DEFAULT_WINDOW_MAX,
        }

    def apply_limits(self, body: Mapping[str, Any]) -> None:
        """daily_cap, token_lifetime_s (null: never), window_s, window_max; ValueError for anything else."""
        unknown = sorted(set(body) - set(LIMIT_KEYS))
        if unknown:
            raise ValueError(f"unknown limit keys: {', '.join(unknown)}; expected some of {list(LIMIT_KEYS)}")
        for key in ("daily_cap", "window_max"):
            if key in body:
                value = body[key]
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    raise ValueError(f"{key} must be a non-negative integer")
        for key in ("window_s", "token_lifetime_s"):
            if key in body:
                value = body[key]
                if value is None and key == "token_lifetime_s":
                    continue
                if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                    raise ValueError(f"{key} must be a positive number")
        self.quota.apply(body)
        if "token_lifetime_s" in body:
            lifetime = body["token_lifetime_s"]
            self.tokens.lifetime_s = None if lifetime is None else float(lifetime)

    def records(self, obj: str) -> list[dict[str, Any]] | None:
        """Every record of an sObject type, recycle bin included (IsDeleted flags those)."""
        spec = object_spec(obj)
        if spec is None:
            return None
        return [self.store.public(r) for r in self.store.rows(spec, include_deleted=True)]

    def fault_response(self, kind: Literal["error", "rate_limit"]) -> web.Response:
        """Salesforce's 500/503 or its 403 REQUEST_LIMIT_EXCEEDED, as error arrays."""
        if kind == "rate_limit":
            return sf_error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        if self.rng.random() < 0.5:
            return sf_error(503, "SERVER_UNAVAILABLE", "Server temporarily unavailable. Please try again later.")
        error_id = f"{self.rng.getrandbits(30):09d}-{self.rng.getrandbits(16):05d} ({self.rng.getrandbits(31)})"
        return sf_error(
            500,
            "UNKNOWN_EXCEPTION",
            f"An unexpected error occurred. Please include this ErrorId if you contact support: {error_id}",
        )

    def set_webhook_targets(self, urls: list[str]) -> None:
        """Where the CDC-shaped change feed is POSTed."""
        self.feed.dispatcher.targets = list(urls)

    @classmethod
    def for_sandbox(cls, *, clock: Clock, rng_seed: int, workdir: Path) -> SalesforceSimulator:
        """Served over https like the real one, with a self-signed certificate made in `workdir`."""
        material = make_self_signed(workdir)
        simulator = cls(clock=clock, rng_seed=rng_seed, tls=material.server_context())
        simulator.ca_cert = str(material.cert_path)
        return simulator

    def credentials(self, base: str) -> dict[str, str]:
        """base_url and instance_url (both the https root), the connected app's keys, a refresh token and the
        certificate to trust (when served by the sandbox)."""
        described = {
            "base_url": base,
            "instance_url": base,
            "client_id": self.tokens.client_id,
            "client_secret": self.tokens.client_secret,
            "refresh_token": self.tokens.refresh_token,
        }
        if self.ca_cert is not None:
            described["ca_cert"] = self.ca_cert
        return described

    def dump_state(self) -> dict[str, Any]:
        """Records, counters and grants."""
        return {"store": self.store.dump(), "tokens": self.tokens.to_state()}

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore what dump_state wrote."""
        if "store" in state:
            self.store.load(state["store"])
        if "tokens" in state:
            self.tokens.load_state(state["tokens"])


def _session_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() not in ("bearer", "oauth") or not token.strip():
        return None
    return token.strip()


def _change_origin(request: web.Request) -> str:
    """CDC's changeOrigin: the API and version, plus the client named in Sforce-Call-Options."""
    origin = f"com/salesforce/api/rest/{version_of(request)[1:]}"
    match = _CLIENT_OPTION.search(request.headers.get("Sforce-Call-Options", ""))
    return f"{origin};client={match.group(1)}" if match else origin


__all__ = ["SalesforceSimulator"]
