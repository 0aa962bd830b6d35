"""Every API call of one HubSpot connection: token, rate limiter, bounded executor, timeout, retries, errors."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import hubspot

from syncd.connectors.hubspot.errors import (
    classify,
    is_unauthorised,
    lower_headers,
    parse_body,
    read_rate_headers,
)
from syncd.connectors.ratelimit import Budget, RateLimiter
from syncd.connectors.retry import RetryPolicy, retrying
from syncd.connectors.server_clock import ServerClock
from syncd.connectors.tokens import TokenManager, with_token
from syncd.errors import ConnectorError, FatalError, RateLimitedError
from syncd.logs import get_logger

log = get_logger(__name__)

# CRM search has a budget of its own on top of the account's: 4 requests a second per token.
SEARCH_BUDGET = Budget(window_s=1.0, window_max=4, target=0.8)


def _daily_refusal(error: RateLimitedError) -> bool:
    """Whether HubSpot refused a call for the day's quota (`policyName: DAILY`, no daily calls remaining)."""
    headers = getattr(error.__cause__, "headers", None)
    rate = read_rate_headers(dict(headers.items()) if headers is not None and hasattr(headers, "items") else {})
    return rate.daily_remaining == 0 or "daily" in error.vendor_message.lower()


class SdkApis:
    """The SDK API objects for one access token, built once (each builds its own connection pool)."""

    def __init__(self, client: hubspot.HubSpot) -> None:
        crm = client.crm
        self.objects_basic: Any = crm.objects.basic_api
        self.objects_batch: Any = crm.objects.batch_api
        self.objects_search: Any = crm.objects.search_api
        self.associations_batch: Any = crm.associations.v4.batch_api
        self.properties: Any = crm.properties.core_api
        self.property_groups: Any = crm.properties.groups_api

    def close(self) -> None:
        """Close every pooled connection (open sockets would otherwise outlive the connector)."""
        for api in (self.objects_basic, self.objects_batch, self.objects_search, self.associations_batch,
                    self.properties, self.property_groups):
            api.api_client.rest_client.pool_manager.clear()


class WebhookApis:
    """The SDK's Webhooks v3 management APIs. They authenticate the developer account, not the portal: the
    SDK sends its `api_key` as the `hapikey` query parameter and ignores any access token there."""

    def __init__(self, client: hubspot.HubSpot) -> None:
        self.settings: Any = client.webhooks.settings_api
        self.subscriptions: Any = client.webhooks.subscriptions_api

    def close(self) -> None:
        """Close both connection pools."""
        for api in (self.settings, self.subscriptions):
            api.api_client.rest_client.pool_manager.clear()


# One SDK call: given the API objects and the timeout, return the raw urllib3 response (`_preload_content=False`).
SdkCall = Callable[[SdkApis, float], Any]
WebhookCall = Callable[[WebhookApis, float], Any]


@dataclass(frozen=True)
class RawAnswer:
    """A 2xx answer read off the wire: status, headers (lower-case names) and the parsed JSON body."""

    status: int
    headers: dict[str, str]
    body: Any


def _perform(call: Callable[[Any, float], Any], apis: SdkApis | WebhookApis, timeout_s: float) -> RawAnswer:
    """Runs in a worker thread: the blocking request and the read of its body."""
    response = call(apis, timeout_s)
    data = response.data  # reading to the end returns the connection to the pool
    return RawAnswer(int(response.status), lower_headers(dict(response.headers.items())), parse_body(data))


class HubSpotTransport:
    """Sends SDK calls off the event loop through one limiter, one token manager and the one retry policy."""

    def __init__(
        self,
        connection: str,
        *,
        base_url: str,
        timeout_s: float,
        max_concurrency: int,
        tokens: TokenManager,
        limiter: RateLimiter,
        policy: RetryPolicy,
    ) -> None:
        self.connection = connection
        self._base_url = base_url.rstrip("/")
        self._timeout_s = timeout_s
        self._max_concurrency = max_concurrency
        self.tokens = tokens
        self.limiter = limiter
        self.search_limiter = RateLimiter(f"{connection}/search", SEARCH_BUDGET)
        self.policy = policy
        self._pool: ThreadPoolExecutor | None = None
        self._apis: dict[str, SdkApis] = {}
        self._retired: list[SdkApis] = []
        self._apis_lock = threading.Lock()
        self._webhook_apis: WebhookApis | None = None
        self.attempts = 0
        self.server_clock = ServerClock()

    def start(self) -> None:
        """Create the bounded executor the SDK's blocking calls run in."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._max_concurrency, thread_name_prefix=f"hubspot-{self.connection}")

    async def close(self) -> None:
        """Wait for running calls, stop the executor and close every connection pool."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.get_running_loop().run_in_executor(None, pool.shutdown, True)
        with self._apis_lock:
            for apis in [*self._apis.values(), *self._retired]:
                apis.close()
            self._apis.clear()
            self._retired.clear()
            if self._webhook_apis is not None:
                self._webhook_apis.close()
                self._webhook_apis = None

    def _apis_for(self, token: str) -> SdkApis:
        with self._apis_lock:
            apis = self._apis.get(token)
            if apis is None:
                # urllib3's own retries are off (retry=False): every attempt goes through our limiter.
                client = hubspot.HubSpot(access_token=token, host=self._base_url, retry=False)
                apis = SdkApis(client)
                # Calls still running on an older token keep its pools until close().
                self._retired.extend(self._apis.values())
                self._apis = {token: apis}
            return apis

    async def call(self, what: str, call: SdkCall, *, record: str | None = None, unsafe_write: bool = False,
                   search: bool = False) -> RawAnswer:
        """Run one API call with token refresh on 401, rate limiting and retries of transient failures.

        `unsafe_write` marks a call that must not be repeated blindly (a create): a lost answer raises
        `UnknownOutcomeError` instead of being retried. `search` calls also spend the search budget."""

        async def slot() -> None:
            if search:
                await self.search_limiter.acquire()
            await self.limiter.acquire()

        async def attempt() -> RawAnswer:
            return await with_token(
                self.tokens, lambda token: self._once(call, token, record, unsafe_write, search), is_unauthorised, slot
            )

        return await retrying(self.connection, what, attempt, self.policy)

    async def call_as_developer(self, what: str, call: WebhookCall, *, api_key: str, unsafe_write: bool = False
                                ) -> RawAnswer:
        """One Webhooks management call with the developer API key, retried like any other call.

        No access token (a 401 here is the key's fault, which no token refresh can mend), and not through the
        portal's rate limiter: these requests are the developer account's, counted apart from the portal's.
        `unsafe_write` marks a create: a lost answer raises `UnknownOutcomeError` instead of being retried."""
        with self._apis_lock:
            if self._webhook_apis is None:
                self._webhook_apis = WebhookApis(hubspot.HubSpot(api_key=api_key, host=self._base_url, retry=False))
            apis = self._webhook_apis

        async def attempt() -> RawAnswer:
            return await self._send(call, apis, record=None, unsafe_write=unsafe_write)

        return await retrying(self.connection, what, attempt, self.policy)

    async def _once(self, call: SdkCall, token: str, record: str | None, unsafe_write: bool, search: bool
                    ) -> RawAnswer:
        try:
            answer = await self._send(call, self._apis_for(token), record=record, unsafe_write=unsafe_write)
        except ConnectorError as error:
            # The vendor's exception (the cause) still carries the rate headers of a refused call.
            headers = getattr(error.__cause__, "headers", None)
            if headers is not None and hasattr(headers, "items"):
                self._observe(dict(headers.items()))
            if isinstance(error, RateLimitedError):
                # A 429 on search is usually the search budget: hold searches, not every call.
                limiter = self.search_limiter if search else self.limiter
                daily = not search and _daily_refusal(error)
                raise limiter.refused(error, daily=daily) from error.__cause__
            raise
        self._observe(answer.headers)
        self.server_clock.observe(answer.headers.get("date"))
        return answer

    async def _send(self, call: Callable[[Any, float], Any], apis: SdkApis | WebhookApis, *, record: str | None,
                    unsafe_write: bool) -> RawAnswer:
        """One attempt on the executor, whatever the SDK or urllib3 raised translated to a typed error."""
        if self._pool is None:
            raise FatalError("connector is not started (call start() first)", connection=self.connection)
        self.attempts += 1
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, _perform, call, apis, self._timeout_s)
        except ConnectorError:
            raise
        except Exception as exc:
            raise classify(exc, connection=self.connection, record=record, sent_write=unsafe_write) from exc

    def _observe(self, headers: dict[str, str]) -> None:
        rate = read_rate_headers(headers)
        window_reset = rate.window_ms / 1000.0 if rate.window_ms else None
        self.limiter.observe(
            window_remaining=rate.window_remaining,
            window_reset_s=window_reset,
            daily_remaining=rate.daily_remaining,
            daily_cap=rate.daily_cap,
        )
