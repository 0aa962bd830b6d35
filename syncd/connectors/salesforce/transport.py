"""Every Salesforce API call goes through here: off the loop in a bounded executor, paced by the rate
limiter, with the token refreshed on a 401, errors classified, and transient failures retried."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any, TypeVar

import requests
from requests.adapters import HTTPAdapter
from simple_salesforce.api import Salesforce

from syncd.connectors.budget import DayWindow
from syncd.connectors.ratelimit import Budget, RateLimiter
from syncd.connectors.retry import RetryPolicy, retrying
from syncd.connectors.salesforce.errors import SessionExpiredError, classify
from syncd.connectors.salesforce.oauth import SalesforceOAuth
from syncd.connectors.salesforce.settings import SalesforceConnection
from syncd.connectors.server_clock import ServerClock
from syncd.connectors.tokens import TokenManager, TokenStorage, with_token
from syncd.errors import RateLimitedError

T = TypeVar("T")
# Salesforce's allocation is per 24 hours; the short window only spreads it so that a burst never starves
# the org's other integrations.
DEFAULT_BUDGET = Budget(window_s=1.0, window_max=25, daily_cap=100_000, day=DayWindow(rolling=True))
CALL_OPTIONS = "client=syncd"


def budget_of(settings: SalesforceConnection) -> Budget:
    """The connection's configured budget, or Salesforce's default allocation."""
    return DEFAULT_BUDGET.configured(settings.rate_limit)


def _session_expired(exc: BaseException) -> bool:
    return isinstance(exc, SessionExpiredError)



def close_session(http: requests.Session) -> None:
    """Close a requests session and every pooled connection it holds."""
    # urllib3 2.x no longer closes pooled connections when the pool manager is cleared (it leaves that to
    # garbage collection, which error tracebacks can delay indefinitely): close every pool explicitly.
    for adapter in {id(a): a for a in http.adapters.values()}.values():
        if isinstance(adapter, HTTPAdapter):
            pools = adapter.poolmanager.pools
            for key in list(pools.keys()):
                pool = pools.get(key)
                if pool is not None:
                    pool.close()
    http.close()

class SalesforceTransport:
    """One connection's simple-salesforce client, executor, token manager and rate limiter."""

    def __init__(self, name: str, settings: SalesforceConnection, *, storage: TokenStorage | None,
                 policy: RetryPolicy) -> None:
        self.name = name
        self.settings = settings
        self.policy = policy
        self.http = requests.Session()
        # trust_env=False: an exported REQUESTS_CA_BUNDLE would otherwise silently replace `verify`.
        self.http.trust_env = False
        self.http.verify = str(settings.ca_cert) if settings.ca_cert is not None else True
        # max_retries=0: retries are decided by `retrying`, so that the rate limiter sees every attempt.
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=settings.max_concurrency, max_retries=0)
        self.http.mount("https://", adapter)
        self.http.mount("http://", adapter)
        # Salesforce's own clock, from every answer's `Date`: its stamps are compared with its time, not ours.
        self.server_clock = ServerClock()
        self.http.hooks["response"].append(self._date_seen)
        self.executor = ThreadPoolExecutor(max_workers=settings.max_concurrency, thread_name_prefix=f"sf-{name}")
        self.oauth = SalesforceOAuth(name, settings, self.http, self.executor)
        refresh = settings.refresh_token.get_secret_value() if settings.refresh_token is not None else None
        self.tokens = TokenManager(name, self.oauth.refresh, storage=storage, refresh_token=refresh)
        self.limiter = RateLimiter(name, budget_of(settings))
        self._client: tuple[str, Salesforce] | None = None
        self.timeout: tuple[float, float] = (min(settings.timeout_s, 10.0), settings.timeout_s)

    def _date_seen(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """A requests response hook: note the server's time its `Date` header gives."""
        self.server_clock.observe(response.headers.get("Date"))

    async def close(self) -> None:
        """Stop the executor (waiting for calls in flight, which have their own timeouts) and the pool."""
        await asyncio.get_running_loop().run_in_executor(None, self.executor.shutdown, True)
        close_session(self.http)

    def client(self, token: str) -> Salesforce:
        """The simple-salesforce client for this access token (rebuilt when the token changes)."""
        cached = self._client
        if cached is not None and cached[0] == token:
            return cached[1]
        instance = self.tokens.extras.get("instance_url") or self.settings.instance_url or self.settings.base_url
        sf = Salesforce(instance_url=instance, session_id=token, session=self.http,
                        version=self.settings.api_version, parse_float=Decimal, object_pairs_hook=dict)
        # Names our writes in CDC's changeOrigin, so that our own changes can be recognised.
        sf.headers["Sforce-Call-Options"] = CALL_OPTIONS
        self._client = (token, sf)
        return sf

    async def call(self, what: str, fn: Callable[[Salesforce], T], *, record: str | None = None,
                   idempotent: bool = True) -> T:
        """Run `fn(client)` in the executor with pacing, token refresh and retries; raise ConnectorError."""

        async def once(token: str) -> T:
            sf = self.client(token)
            loop = asyncio.get_running_loop()
            try:
                result = await loop.run_in_executor(self.executor, fn, sf)
            except Exception as exc:
                error = classify(exc, connection=self.name, record=record, idempotent=idempotent)
                if isinstance(error, RateLimitedError):
                    # Not taken as the end of the day: the allocation is a rolling 24 hours, so calls free up as
                    # old ones age out, and every answer's `Sforce-Limit-Info` already stops us short of it.
                    error = self.limiter.refused(error, daily=False)
                raise error from None
            self._observe(sf)
            return result

        async def attempt() -> T:
            # A spent daily budget is not retried in-line: `retrying` hands long waits up.
            return await with_token(self.tokens, once, _session_expired, self.limiter.acquire)

        return await retrying(self.name, what, attempt, self.policy)

    def _observe(self, sf: Salesforce) -> None:
        """Feed `Sforce-Limit-Info: api-usage=N/M` (parsed by simple-salesforce) to the limiter."""
        usage: Any = sf.api_usage.get("api-usage")
        if usage is not None:
            self.limiter.observe(daily_used=int(usage.used), daily_cap=int(usage.total))

    async def blocking(self, fn: Callable[[], T]) -> T:
        """Run plain blocking work (no API budget) in the executor."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn)
