"""The Simulator base class: one simulated service plus the shared control plane and middlewares."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
import random
import ssl
import time
from collections.abc import Collection, Mapping
from email.utils import formatdate
from pathlib import Path
from typing import Any, ClassVar, Literal

from aiohttp import web

from syncd.sandbox.clock import Clock
from syncd.sandbox.control_plane import CONTROL_PREFIX, Handler, json_error, loopback_guard
from syncd.sandbox.faults import Faults, is_number
from syncd.sandbox.oauth_tokens import TokenStore
from syncd.sandbox.quota import QuotaCounter
from syncd.sandbox.seeding import SeedCounts, SeedWorld
from syncd.sandbox.stats import Stats
from syncd.sandbox.webhook_dispatcher import WebhookDispatcher


async def _json_body(request: web.Request) -> Any:
    text = await request.text()
    if not text.strip():
        return {}
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise web.HTTPBadRequest(
            text=f'{{"error": "body is not valid JSON: {exc.msg}"}}', content_type="application/json"
        ) from exc


SEED_KEYS = ("contacts", "companies", "deals", "invoices", "payments")


def check_limits(body: Mapping[str, Any], known: Collection[str], integers: Collection[str] = ()) -> None:
    """A control plane's `limits` body: only `known` keys, each a positive number, those in `integers` whole;
    a ValueError naming the first fault otherwise."""
    unknown = sorted(set(body) - set(known))
    if unknown:
        raise ValueError(f"unknown limit keys: {', '.join(unknown)}; expected some of {sorted(known)}")
    for key, value in body.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ValueError(f"{key} must be a positive number")
        if key in integers and not isinstance(value, int):
            raise ValueError(f"{key} must be a positive integer")


class Simulator(abc.ABC):
    """One simulated service: its API (added by subclasses) plus the shared control plane and middlewares."""

    name: ClassVar[str]
    # Path prefixes that faults never touch (the OAuth token endpoints), set by each subclass.
    fault_exempt_prefixes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, clock: Clock = time.time, rng_seed: int = 0) -> None:
        self.clock = clock
        self.rng = random.Random(rng_seed)
        self.faults = Faults()
        self.stats = Stats()
        # Subclasses append theirs so that the control plane can expire/revoke and start/stop them.
        self.token_stores: list[TokenStore] = []
        self.webhook_dispatchers: list[WebhookDispatcher] = []
        self.quotas: list[QuotaCounter] = []
        self._closing: asyncio.Event | None = None
        # Set by a simulator served over https (as its real service is); the sandbox's site presents it.
        self.tls: ssl.SSLContext | None = None

    @classmethod
    def for_sandbox(cls, *, clock: Clock, rng_seed: int, workdir: Path) -> Simulator:
        """This simulator as `syncd sandbox` serves it; one that needs files (TLS material) makes them in
        `workdir`."""
        return cls(clock=clock, rng_seed=rng_seed)

    # --- to implement in each simulator ---

    @abc.abstractmethod
    def add_routes(self, app: web.Application) -> None:
        """Add the service's API routes."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Drop all records (credentials stay)."""

    @abc.abstractmethod
    def seed(self, world: SeedWorld, counts: SeedCounts) -> dict[str, int]:
        """Create the first n items of each list of `world`; return how many of each object were made."""

    @abc.abstractmethod
    def apply_limits(self, body: Mapping[str, Any]) -> None:
        """Change quotas/token lifetime; unknown keys or bad values raise ValueError."""

    @abc.abstractmethod
    def records(self, obj: str) -> list[dict[str, Any]] | None:
        """Every record of an object, archived/deleted ones included and flagged; None: unknown object."""

    @abc.abstractmethod
    def fault_response(self, kind: Literal["error", "rate_limit"]) -> web.Response:
        """The vendor-shaped 5xx or rate-limit answer."""

    @abc.abstractmethod
    def set_webhook_targets(self, urls: list[str]) -> None:
        """Where webhooks (or their equivalent) are delivered from now on."""

    @abc.abstractmethod
    def credentials(self, base: str) -> dict[str, str]:
        """This service's part of the sandbox JSON line; `base` is `scheme://127.0.0.1:port`."""

    @abc.abstractmethod
    def dump_state(self) -> dict[str, Any]:
        """Everything needed to restart with the same records and credentials, as JSON-able data."""

    @abc.abstractmethod
    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore what dump_state produced."""

    # --- overridable hooks with defaults ---

    def default_limits(self) -> dict[str, Any]:
        """The limits body that restores this simulator's default quotas (used by restore_defaults)."""
        return {}

    def expire_tokens(self) -> None:
        """POST /_sandbox/expire-tokens: every live access token is now expired."""
        for store in self.token_stores:
            store.expire_all()

    def revoke_tokens(self) -> None:
        """POST /_sandbox/revoke: every grant is gone."""
        for store in self.token_stores:
            store.revoke()

    def restore_defaults(self) -> None:
        """As after start: no records, faults off, default limits, zeroed quotas and stats, no webhook
        targets or queued events, and the initial refresh token live again (even after a revoke)."""
        self.reset()
        self.faults.assign(Faults())
        self.apply_limits(self.default_limits())
        for quota in self.quotas:
            quota.clear()
        for store in self.token_stores:
            store.reinstate()
        self.set_webhook_targets([])
        for dispatcher in self.webhook_dispatchers:
            dispatcher.clear()
        self.stats.clear()

    async def drain_webhooks(self, timeout_s: float = 10.0) -> None:
        """Wait until every webhook dispatcher has delivered or given up."""
        for dispatcher in self.webhook_dispatchers:
            await dispatcher.drain(timeout_s)

    # --- the application ---

    async def _server_date(self, request: web.Request, response: web.StreamResponse) -> None:
        """`Date` from the simulator's own clock, as a real server's comes from its clock (which may differ
        from the client's: clients that take the server's time from it get the simulator's)."""
        response.headers["Date"] = formatdate(self.clock(), usegmt=True)

    def build_app(self) -> web.Application:
        """The aiohttp app: middlewares, control plane, the service's routes and lifecycle hooks."""
        app = web.Application(middlewares=[self._stats_middleware, loopback_guard, self._fault_middleware])
        app[SIMULATOR_KEY] = self
        control = [
            web.post("/_sandbox/reset", self._handle_reset),
            web.post("/_sandbox/seed", self._handle_seed),
            web.get("/_sandbox/faults", self._handle_get_faults),
            web.post("/_sandbox/faults", self._handle_faults),
            web.post("/_sandbox/limits", self._handle_limits),
            web.post("/_sandbox/expire-tokens", self._handle_expire),
            web.post("/_sandbox/revoke", self._handle_revoke),
            web.post("/_sandbox/webhooks", self._handle_webhooks),
            web.post("/_sandbox/webhooks/drain", self._handle_drain),
            web.get("/_sandbox/stats", self._handle_stats),
            web.get("/_sandbox/records/{object}", self._handle_records),
        ]
        app.add_routes(control)
        self.add_routes(app)
        app.on_response_prepare.append(self._server_date)
        app.on_startup.append(self._on_startup)
        app.on_shutdown.append(self._on_shutdown)
        app.on_cleanup.append(self._on_cleanup)
        return app

    async def _on_startup(self, app: web.Application) -> None:
        self._closing = asyncio.Event()
        for dispatcher in self.webhook_dispatchers:
            await dispatcher.start()

    async def _on_shutdown(self, app: web.Application) -> None:
        # Release requests held by the timeout fault so that shutdown does not wait for them.
        if self._closing is not None:
            self._closing.set()

    async def _on_cleanup(self, app: web.Application) -> None:
        for dispatcher in self.webhook_dispatchers:
            await dispatcher.stop()

    @web.middleware
    async def _stats_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        resource = request.match_info.route.resource
        template = resource.canonical if resource is not None else "<unmatched>"
        self.stats.requests[f"{request.method} {template}"] += 1
        self.stats.in_flight += 1
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            self.stats.responses[exc.status] += 1
            raise
        finally:
            self.stats.in_flight -= 1
        self.stats.responses[response.status] += 1
        return response

    @web.middleware
    async def _fault_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path.startswith(CONTROL_PREFIX) or path.startswith(self.fault_exempt_prefixes):
            return await handler(request)
        faults = self.faults
        low, high = faults.latency_ms
        if high > 0:
            # Simulated network/server latency: the point is to be slow.
            await asyncio.sleep(self.rng.uniform(low, high) / 1000.0)
        roll = self.rng.random()
        if roll < faults.error_rate:
            return self.fault_response("error")
        roll -= faults.error_rate
        if roll < faults.rate_limit_rate:
            self.stats.rate_limited += 1
            return self.fault_response("rate_limit")
        roll -= faults.rate_limit_rate
        if roll < faults.timeout_rate:
            await self._hold_then_drop(request, faults.timeout_s)
        return await handler(request)

    async def _hold_then_drop(self, request: web.Request, timeout_s: float) -> None:
        closing = self._closing or asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(closing.wait(), timeout_s)
        transport = request.transport
        if transport is not None:
            transport.close()
        # Answering is impossible now; aiohttp treats this as the client going away.
        raise ConnectionResetError("sandbox timeout fault: connection dropped without an answer")

    # --- control plane handlers ---

    async def _handle_reset(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        if not isinstance(body, dict) or set(body) - {"scope"} or body.get("scope", "records") not in (
            "records",
            "all",
        ):
            return json_error(400, 'reset body must be {} or {"scope": "records" | "all"}')
        if body.get("scope") == "all":
            self.restore_defaults()
        else:
            self.reset()
        return web.json_response({"reset": body.get("scope", "records")})

    async def _handle_seed(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        if not isinstance(body, dict):
            return json_error(400, "seed body must be a JSON object")
        unknown = sorted(set(body) - {*SEED_KEYS, "seed"})
        if unknown:
            return json_error(400, f"unknown seed keys: {', '.join(unknown)}")
        for key in (*SEED_KEYS, "seed"):
            value = body.get(key, 0)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0 or value > 100_000:
                return json_error(400, f"{key} must be an integer between 0 and 100000")
        counts = SeedCounts(**{key: int(body.get(key, 0)) for key in SEED_KEYS})
        world = SeedWorld.build(int(body.get("seed", 0)), counts.size)
        created = self.seed(world, counts)
        return web.json_response({"created": created})

    async def _handle_get_faults(self, request: web.Request) -> web.Response:
        return web.json_response(self.faults.to_json())

    async def _handle_faults(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        try:
            faults = Faults.from_json(body)
        except ValueError as exc:
            return json_error(400, str(exc))
        self.faults.assign(faults)
        return web.json_response(self.faults.to_json())

    async def _handle_limits(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        if not isinstance(body, dict):
            return json_error(400, "limits body must be a JSON object")
        try:
            self.apply_limits(body)
        except ValueError as exc:
            return json_error(400, str(exc))
        return web.json_response({"applied": body})

    async def _handle_expire(self, request: web.Request) -> web.Response:
        self.expire_tokens()
        return web.json_response({"expired": True})

    async def _handle_revoke(self, request: web.Request) -> web.Response:
        self.revoke_tokens()
        return web.json_response({"revoked": True})

    async def _handle_webhooks(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        urls = body.get("urls") if isinstance(body, dict) else None
        if (
            not isinstance(body, dict)
            or set(body) != {"urls"}
            or not isinstance(urls, list)
            or not all(isinstance(u, str) and u.startswith(("http://", "https://")) for u in urls)
        ):
            return json_error(400, 'webhooks body must be {"urls": ["http://..." , ...]}')
        self.set_webhook_targets(list(urls))
        return web.json_response({"urls": urls})

    async def _handle_drain(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        timeout_s = body.get("timeout_s", 10.0) if isinstance(body, dict) else None
        if not is_number(timeout_s) or not 0 < timeout_s <= 300:  # type: ignore[operator]
            return json_error(400, 'drain body must be {"timeout_s": seconds (0-300]}')
        try:
            await self.drain_webhooks(float(timeout_s))  # type: ignore[arg-type]
        except TimeoutError:
            return json_error(504, "webhooks still pending after timeout")
        return web.json_response({"drained": True})

    async def _handle_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats.to_json())

    async def _handle_records(self, request: web.Request) -> web.Response:
        obj = request.match_info["object"]
        found = self.records(obj)
        if found is None:
            return json_error(404, f"unknown object {obj!r}")
        return web.json_response({"object": obj, "records": found}, dumps=_dumps)


def _dumps(value: Any) -> str:
    # Records may hold Decimals and datetimes; str() them rather than fail.
    return json.dumps(value, default=str)


SIMULATOR_KEY: web.AppKey[Simulator] = web.AppKey("sandbox_simulator", Simulator)
