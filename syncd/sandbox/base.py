"""Shared machinery of the simulators: control plane, faults, stats, quotas, OAuth grants and webhooks."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import ipaddress
import json
import math
import random
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Literal

from aiohttp import ClientError, ClientSession, ClientTimeout, web

from syncd.sandbox.seeding import SeedCounts, SeedWorld

Clock = Callable[[], float]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CONTROL_PREFIX = "/_sandbox/"
SECONDS_PER_DAY = 86_400.0


# --------------------------------------------------------------------------------------------- faults


@dataclass
class Faults:
    """Injected misbehaviour of one simulator; every knob defaults to off."""

    error_rate: float = 0.0
    rate_limit_rate: float = 0.0
    timeout_rate: float = 0.0
    latency_ms: tuple[int, int] = (0, 0)
    duplicate_webhooks: float = 0.0
    reorder_webhooks: bool = False
    timeout_s: float = 5.0

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Faults:
        """Build faults from a control-plane body; unknown keys and bad types raise ValueError."""
        if not isinstance(body, Mapping):
            raise ValueError("faults body must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(body) - known)
        if unknown:
            raise ValueError(f"unknown fault keys: {', '.join(unknown)}; expected some of {sorted(known)}")
        faults = cls()
        for name in ("error_rate", "rate_limit_rate", "timeout_rate", "duplicate_webhooks"):
            if name in body:
                setattr(faults, name, _fraction(name, body[name]))
        if "reorder_webhooks" in body:
            if not isinstance(body["reorder_webhooks"], bool):
                raise ValueError("reorder_webhooks must be true or false")
            faults.reorder_webhooks = body["reorder_webhooks"]
        if "timeout_s" in body:
            value = body["timeout_s"]
            if not _is_number(value) or value <= 0:
                raise ValueError("timeout_s must be a positive number")
            faults.timeout_s = float(value)
        if "latency_ms" in body:
            faults.latency_ms = _latency(body["latency_ms"])
        if faults.error_rate + faults.rate_limit_rate + faults.timeout_rate > 1.0:
            raise ValueError("error_rate + rate_limit_rate + timeout_rate must not exceed 1")
        return faults

    def to_json(self) -> dict[str, Any]:
        """The faults as the control plane reports them."""
        return {
            "error_rate": self.error_rate,
            "rate_limit_rate": self.rate_limit_rate,
            "timeout_rate": self.timeout_rate,
            "latency_ms": list(self.latency_ms),
            "duplicate_webhooks": self.duplicate_webhooks,
            "reorder_webhooks": self.reorder_webhooks,
            "timeout_s": self.timeout_s,
        }

    def assign(self, other: Faults) -> None:
        """Copy every knob of `other` into this object in place (dispatchers hold a reference to it)."""
        for f in fields(self):
            setattr(self, f.name, getattr(other, f.name))


def _is_number(value: object) -> bool:
    # bool is an int subclass; JSON true is not a number here.
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _fraction(name: str, value: object) -> float:
    if not _is_number(value) or not 0.0 <= float(value) <= 1.0:  # type: ignore[arg-type]
        raise ValueError(f"{name} must be a number between 0 and 1")
    return float(value)  # type: ignore[arg-type]


def _latency(value: object) -> tuple[int, int]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ValueError("latency_ms must be a list [low, high] of milliseconds")
    low, high = value
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)) or not 0 <= low <= high:
        raise ValueError("latency_ms must be two integers with 0 <= low <= high")
    return (low, high)


# ---------------------------------------------------------------------------------------------- stats


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


# --------------------------------------------------------------------------------------------- quotas


@dataclass(frozen=True)
class QuotaDecision:
    """The outcome of spending one request against a quota, with what the rate-limit headers report."""

    allowed: bool
    policy: Literal["window", "daily"] | None
    window_remaining: int
    daily_remaining: int
    window_reset_s: float
    daily_used: int = 0


class QuotaCounter:
    """A fixed-window request limit plus a daily cap (UTC days), on an injected clock."""

    def __init__(
        self, *, window_s: float, window_max: int, daily_cap: int, clock: Clock = time.time
    ) -> None:
        self.window_s = window_s
        self.window_max = window_max
        self.daily_cap = daily_cap
        self.clock = clock
        self._window_index = -1
        self._window_used = 0
        self._day_index = -1
        self._daily_used = 0

    def take(self) -> QuotaDecision:
        """Spend one request if both the window and the day allow it; a refused request spends nothing."""
        now = self.clock()
        self._roll(now)
        policy: Literal["window", "daily"] | None = None
        if self._daily_used >= self.daily_cap:
            policy = "daily"
        elif self._window_used >= self.window_max:
            policy = "window"
        else:
            self._window_used += 1
            self._daily_used += 1
        window_end = (self._window_index + 1) * self.window_s
        return QuotaDecision(
            allowed=policy is None,
            policy=policy,
            window_remaining=max(0, self.window_max - self._window_used),
            daily_remaining=max(0, self.daily_cap - self._daily_used),
            window_reset_s=max(0.0, window_end - now),
            daily_used=self._daily_used,
        )

    @property
    def daily_used(self) -> int:
        """Requests spent today (Salesforce reports it in Sforce-Limit-Info)."""
        self._roll(self.clock())
        return self._daily_used

    def clear(self) -> None:
        """Forget everything spent, as at a new day."""
        self._window_index = self._day_index = -1
        self._window_used = self._daily_used = 0

    def _roll(self, now: float) -> None:
        # Windows are aligned to the epoch so that an injected clock gives predictable boundaries.
        window_index = int(now // self.window_s) if self.window_s > 0 else 0
        if window_index != self._window_index:
            self._window_index = window_index
            self._window_used = 0
        day_index = int(now // SECONDS_PER_DAY)
        if day_index != self._day_index:
            self._day_index = day_index
            self._daily_used = 0


# --------------------------------------------------------------------------------------------- tokens


@dataclass(frozen=True)
class IssuedToken:
    """An access token handed out by a token endpoint, with the refresh token that backs it."""

    access_token: str
    refresh_token: str
    expires_at: float  # math.inf when the grant has no fixed lifetime (Salesforce sessions)
    issued_at: float

    @property
    def expires_in(self) -> int | None:
        """Whole seconds of life, or None for a token without a fixed lifetime."""
        if math.isinf(self.expires_at):
            return None
        return round(self.expires_at - self.issued_at)


@dataclass
class _AuthCode:
    client_id: str
    redirect_uri: str
    scope: str
    expires_at: float


AUTH_CODE_LIFETIME_S = 600.0


class TokenStore:
    """The OAuth grants of one simulated account: refresh tokens, access tokens and auth codes."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        lifetime_s: float | None,
        clock: Clock = time.time,
        token_prefix: str = "",
        refresh_token: str | None = None,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.lifetime_s = lifetime_s
        self.clock = clock
        self.token_prefix = token_prefix
        self.refresh_token = refresh_token or self._mint("rt")
        self._refresh_tokens: set[str] = {self.refresh_token}
        self._access: dict[str, float] = {}  # access token -> expires_at
        self._codes: dict[str, _AuthCode] = {}

    def refresh(self, client_id: str, client_secret: str, refresh_token: str) -> IssuedToken | None:
        """A new access token for a live refresh token and matching client credentials; None: bad grant."""
        if not self._client_ok(client_id, client_secret) or refresh_token not in self._refresh_tokens:
            return None
        return self._issue(refresh_token)

    def authorize(self, client_id: str, redirect_uri: str, scope: str) -> str:
        """An authorisation code for the code flow; ValueError for an unknown client."""
        if not secrets.compare_digest(client_id, self.client_id):
            raise ValueError("unknown client_id")
        code = self._mint("code")
        self._codes[code] = _AuthCode(client_id, redirect_uri, scope, self.clock() + AUTH_CODE_LIFETIME_S)
        return code

    def exchange_code(
        self, client_id: str, client_secret: str, code: str, redirect_uri: str
    ) -> IssuedToken | None:
        """Trade a single-use code for a new refresh token and access token; None: bad grant."""
        grant = self._codes.pop(code, None)
        if grant is None or not self._client_ok(client_id, client_secret):
            return None
        if grant.redirect_uri != redirect_uri or self.clock() >= grant.expires_at:
            return None
        refresh_token = self._mint("rt")
        self._refresh_tokens.add(refresh_token)
        return self._issue(refresh_token)

    def issue_access_token(self) -> IssuedToken:
        """An access token on the initial refresh token, for tests and tools that skip the OAuth call."""
        if self.refresh_token not in self._refresh_tokens:
            raise ValueError("the grant has been revoked")
        return self._issue(self.refresh_token)

    def check(self, access_token: str) -> Literal["ok", "expired", "unknown"]:
        """Whether an access token may be used now."""
        expires_at = self._access.get(access_token)
        if expires_at is None:
            return "unknown"
        return "ok" if self.clock() < expires_at else "expired"

    def expire_all(self) -> None:
        """Every access token issued so far is expired from now on."""
        now = self.clock()
        for token, expires_at in self._access.items():
            self._access[token] = min(expires_at, now)

    def revoke(self) -> None:
        """Every refresh token and access token becomes invalid (the user removed the app)."""
        self._refresh_tokens.clear()
        self._access.clear()
        self._codes.clear()

    def reinstate(self) -> None:
        """Make the initial refresh token live again after a revoke (tests start each case from it)."""
        self._refresh_tokens.add(self.refresh_token)

    def to_state(self) -> dict[str, Any]:
        """A JSON-able snapshot for the sandbox state file."""
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "lifetime_s": self.lifetime_s,
            "refresh_token": self.refresh_token,
            "refresh_tokens": sorted(self._refresh_tokens),
            "access": {t: (None if math.isinf(e) else e) for t, e in self._access.items()},
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore a snapshot written by to_state."""
        self.client_id = str(state["client_id"])
        self.client_secret = str(state["client_secret"])
        self.lifetime_s = state.get("lifetime_s", self.lifetime_s)
        self.refresh_token = str(state["refresh_token"])
        self._refresh_tokens = {str(t) for t in state.get("refresh_tokens", [self.refresh_token])}
        access = state.get("access", {})
        self._access = {str(t): (math.inf if e is None else float(e)) for t, e in access.items()}
        self._codes = {}

    def _client_ok(self, client_id: str, client_secret: str) -> bool:
        return secrets.compare_digest(client_id, self.client_id) and secrets.compare_digest(
            client_secret, self.client_secret
        )

    def _issue(self, refresh_token: str) -> IssuedToken:
        now = self.clock()
        expires_at = math.inf if self.lifetime_s is None else now + self.lifetime_s
        access_token = self._mint("at")
        self._access[access_token] = expires_at
        return IssuedToken(access_token, refresh_token, expires_at, now)

    def _mint(self, kind: str) -> str:
        return f"{self.token_prefix}{kind}-{secrets.token_urlsafe(24)}"


# ------------------------------------------------------------------------------------------- webhooks

Event = dict[str, Any]


class WebhookDispatcher:
    """Batched, signed, retried (at-least-once) webhook deliveries to every target URL."""

    def __init__(
        self,
        *,
        stats: Stats,
        faults: Faults,
        encode: Callable[[list[Event]], bytes],
        sign: Callable[[str, str, bytes], dict[str, str]],
        max_batch: int = 100,
        flush_interval_s: float = 0.05,
        max_attempts: int = 10,
        retry_base_s: float = 0.2,
        retry_max_s: float = 30.0,
        request_timeout_s: float = 10.0,
        content_type: str = "application/json",
        rng: random.Random | None = None,
    ) -> None:
        self.stats = stats
        self.faults = faults
        self.encode = encode
        self.sign = sign
        self.max_batch = max_batch
        self.flush_interval_s = flush_interval_s
        self.max_attempts = max_attempts
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self.request_timeout_s = request_timeout_s
        self.content_type = content_type
        self.rng = rng or random.Random()
        self.targets: list[str] = []
        self._queue: list[Event] = []
        self._deliveries: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        # Set whenever nothing is queued or in flight; drain() waits on it.
        self._idle = asyncio.Event()
        self._idle.set()
        self._worker: asyncio.Task[None] | None = None
        self._session: ClientSession | None = None

    def emit(self, event: Event) -> None:
        """Queue one event; it goes out with the next batch."""
        if not self.targets:
            return  # nobody subscribed: the real services send nothing either
        self._queue.append(event)
        self._idle.clear()
        self._wake.set()

    @property
    def pending(self) -> int:
        """Events queued plus deliveries in flight (including those waiting to retry)."""
        return len(self._queue) + len(self._deliveries)

    async def start(self) -> None:
        """Open the HTTP session and start the flushing task."""
        if self._worker is not None:
            return
        # Fresh events: they bind to the loop that first waits on them, which may be a new one.
        self._wake, self._idle = asyncio.Event(), asyncio.Event()
        if self._queue:
            self._wake.set()
        self._note_if_idle()
        self._session = ClientSession(timeout=ClientTimeout(total=self.request_timeout_s))
        self._worker = asyncio.create_task(self._run(), name="webhook-dispatcher")

    async def stop(self) -> None:
        """Cancel the flushing task and every delivery in flight, then close the session."""
        tasks = [t for t in (self._worker, *self._deliveries) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._worker = None
        self._deliveries.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def drain(self, timeout_s: float) -> None:
        """Wait until nothing is queued or in flight; TimeoutError past timeout_s."""
        if self._queue and self._worker is None:
            raise RuntimeError("webhook dispatcher not started")
        async with asyncio.timeout(timeout_s):
            while self.pending:
                self._idle.clear()
                await self._idle.wait()

    def clear(self) -> None:
        """Drop queued events and cancel deliveries in flight, retries included."""
        self._queue.clear()
        for task in list(self._deliveries):
            task.cancel()
        self._note_if_idle()

    def _note_if_idle(self) -> None:
        if self.pending == 0:
            self._idle.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            # Give concurrent emits a moment to join the batch, as the real senders do.
            await asyncio.sleep(self.flush_interval_s)
            self._wake.clear()
            while self._queue:
                batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
                if self.faults.reorder_webhooks:
                    self.rng.shuffle(batch)
                for url in list(self.targets):
                    copies = 2 if self.rng.random() < self.faults.duplicate_webhooks else 1
                    for _ in range(copies):
                        task = asyncio.create_task(self._deliver(url, batch))
                        self._deliveries.add(task)
                        task.add_done_callback(self._delivery_done)
            self._note_if_idle()

    def encode_attempt(self, batch: list[Event], attempt: int) -> bytes:
        """The body of delivery attempt `attempt` (1-based); override to number attempts in the body."""
        return self.encode(batch)

    def _delivery_done(self, task: asyncio.Task[None]) -> None:
        self._deliveries.discard(task)
        self._note_if_idle()

    async def _deliver(self, url: str, batch: list[Event]) -> None:
        assert self._session is not None
        for attempt in range(1, self.max_attempts + 1):
            if attempt > 1:
                self.stats.webhooks_retried += 1
                # Exponential backoff between attempts is the simulated sender's own pacing.
                await asyncio.sleep(min(self.retry_max_s, self.retry_base_s * 2 ** (attempt - 2)))
            body = self.encode_attempt(batch, attempt)
            headers = {"Content-Type": self.content_type, **self.sign("POST", url, body)}
            try:
                async with self._session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if 200 <= response.status < 300:
                        self.stats.webhooks_sent += 1
                        return
            except (ClientError, TimeoutError, OSError):
                pass  # connection refused, reset or timed out: retried like a 5xx
        self.stats.webhooks_failed += 1


# ------------------------------------------------------------------------------------------ simulator


def is_loopback(remote: str | None) -> bool:
    """Whether a peer address is on the loopback interface."""
    if not remote:
        return False
    try:
        return ipaddress.ip_address(remote.split("%")[0]).is_loopback
    except ValueError:
        return False


def json_error(status: int, message: str) -> web.Response:
    """A control-plane error body."""
    return web.json_response({"error": message}, status=status)


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
        if not _is_number(timeout_s) or not 0 < timeout_s <= 300:  # type: ignore[operator]
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


@web.middleware
async def loopback_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse the control plane to any peer that is not on loopback."""
    if request.path.startswith(CONTROL_PREFIX) and not is_loopback(request.remote):
        return json_error(403, "the sandbox control plane answers loopback peers only")
    return await handler(request)


SIMULATOR_KEY: web.AppKey[Simulator] = web.AppKey("sandbox_simulator", Simulator)
