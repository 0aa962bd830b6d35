"""Xero over the official xero-python SDK: its synchronous calls run in a thread pool bounded by the connection's
concurrency, with the access token from syncd's token manager, paced by the rate limiter, retried by syncd's
policy (urllib3's own retries are off), and every failure classified into syncd's errors at this boundary.

The SDK builds each request (paths, query, headers such as `xero-tenant-id`, `If-Modified-Since` and
`Idempotency-Key`, JSON bodies); answers are read raw (`_preload_content=False`) and parsed here with Decimal, so
amounts stay exact and the headers (`Date`, `X-*Limit-Remaining`) are seen."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import urllib3
from multidict import CIMultiDict
from xero_python.accounting import AccountingApi
from xero_python.api_client import ApiClient, Configuration
from xero_python.api_client.oauth2 import OAuth2Token, TokenApi
from xero_python.exceptions import ApiException
from xero_python.identity import IdentityApi

from syncd.connectors.ratelimit import RateLimiter
from syncd.connectors.retry import RetryPolicy, retrying
from syncd.connectors.server_clock import ServerClock
from syncd.connectors.tokens import Grant, TokenManager, with_token
from syncd.connectors.xero.settings import XeroConnection
from syncd.errors import (
    AuthError,
    ConnectorError,
    FatalError,
    NotFoundError,
    RateLimitedError,
    RetryableError,
    SkippableError,
    UnknownOutcomeError,
)

# How the SDK is asked for the raw answer and its headers.
RAW: dict[str, Any] = {"_return_http_data_only": False, "_preload_content": False}
DAY_LIMIT = 5_000


def parse_json(raw: bytes) -> Any:
    """A body as JSON with exact amounts, or None when it is not JSON."""
    if not raw:
        return None
    try:
        return json.loads(raw, parse_float=Decimal)
    except ValueError:
        return None


def validation_messages(body: Any) -> list[str]:
    """The `ValidationErrors` messages of an `Error` body or of one refused element."""
    if not isinstance(body, Mapping):
        return []
    found = [str(e.get("Message")) for e in body.get("ValidationErrors") or [] if isinstance(e, Mapping)]
    for element in body.get("Elements") or []:
        found += validation_messages(element)
    return found


def _retry_after(headers: Mapping[str, str]) -> float | None:
    try:
        return float(headers["Retry-After"]) if "Retry-After" in headers else None
    except ValueError:
        return None


def classify(status: int, body: Any, headers: Mapping[str, str], *, connection: str, record: str | None = None
             ) -> ConnectorError:
    """The one classification of a failed Xero answer into syncd's typed errors."""
    kw: dict[str, Any] = {"connection": connection, "status": status, "record": record}
    messages = validation_messages(body)
    detail = body.get("Detail") if isinstance(body, Mapping) else None
    message = "; ".join(messages) or (str(body.get("Message")) if isinstance(body, Mapping) and body.get("Message")
                                      else str(detail or f"HTTP {status}"))
    if status == 429:
        problem = headers.get("X-Rate-Limit-Problem", "minute")
        retry_after = _retry_after(headers)
        return RateLimitedError(f"Xero {problem} limit reached", retry_after=retry_after if retry_after is not None
                                else 60.0, vendor_code=problem, **kw)  # fmt: skip
    if status >= 500 or status == 408:
        return RetryableError(message, retry_after=_retry_after(headers), **kw)
    if status == 401:
        return AuthError(message, vendor_code=str(detail) if detail else None, **kw)
    if status == 403:
        return FatalError(f"{message}: the token does not reach this organisation; check tenant_id", **kw)
    if status == 404:
        return NotFoundError(message, **kw)
    if status in (400, 409, 412, 413, 422):
        return SkippableError(message, vendor_code="ValidationException" if messages else None, **kw)
    return FatalError(message, **kw)


def is_unauthorised(exc: BaseException) -> bool:
    """Whether a call was refused for its access token (refresh once and try again)."""
    return isinstance(exc, AuthError) and exc.status == 401


@dataclass(frozen=True)
class Answer:
    """A successful answer: status, parsed body, headers, and the server's time by its `Date` header."""

    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)
    server_time: datetime | None = None


class _ThreadToken(OAuth2Token):  # type: ignore[misc]
    """The SDK's auth hook, answered with the token the calling thread was handed (the token manager refreshes,
    never the SDK, so rotated refresh tokens are stored at once and refreshes are single-flight)."""

    def __init__(self, local: threading.local) -> None:
        super().__init__()
        self._local = local

    def create_auth_settings(self, api_client: Any) -> dict[str, str]:
        """The `Authorization` header of the current call."""
        return {"type": "oauth2", "in": "header", "key": "Authorization", "value": f"Bearer {self._local.token}"}


class _TimedTokenApi(TokenApi):  # type: ignore[misc]
    """The SDK's token API with a request timeout (its own `refresh_token` sets none, so a silent identity server
    would hold the refresh, and every call waiting on it, for ever)."""

    def __init__(self, api_client: ApiClient, client_id: str, client_secret: str, timeout: tuple[float, float]
                 ) -> None:
        super().__init__(api_client, client_id, client_secret)
        self.timeout = timeout

    def refresh_token(self, refresh_token: str, scope: list[str]) -> Any:
        """As `TokenApi.refresh_token` (the same form and parsing), bounded by the timeout."""
        return self._grant({"grant_type": "refresh_token", "scope": " ".join(scope), "refresh_token": refresh_token})

    def exchange_code(self, code: str, redirect_uri: str) -> Any:
        """The authorization_code grant (the SDK leaves the code flow to the app), the same way."""
        return self._grant({"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri})

    def _grant(self, form: dict[str, str]) -> Any:
        post_data = {**form, "client_id": self.client_id, "client_secret": self.client_secret}
        response, _status, _headers = self.api_client.call_api(
            self.refresh_token_url, "POST",
            header_params={"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"},
            post_params=post_data, auth_settings=None, _preload_content=False, _request_timeout=self.timeout,
        )  # fmt: skip
        return self.parse_token_response(response)


class XeroTransport:
    """The SDK's clients for one connection, and the one way calls go out."""

    def __init__(self, connection: str, settings: XeroConnection, tokens: TokenManager, limiter: RateLimiter,
                 policy: RetryPolicy) -> None:
        self.connection = connection
        self._settings = settings
        self._tokens = tokens
        self._limiter = limiter
        self._policy = policy
        self._local = threading.local()
        self._executor = ThreadPoolExecutor(max_workers=settings.max_concurrency,
                                            thread_name_prefix=f"xero-{connection}")  # fmt: skip
        configuration = Configuration()
        # Set on the instance: Configuration() hands out copies of the first one made, whatever it is given.
        configuration.oauth2_token = _ThreadToken(self._local)
        configuration.connection_pool_maxsize = settings.max_concurrency
        self.client = ApiClient(configuration, oauth2_token_getter=dict, oauth2_token_saver=lambda token: None)
        # Our retry policy and rate limiter decide; urllib3 would retry a 429 or a dropped write by itself.
        self.client.rest_client.pool_manager.connection_pool_kw["retries"] = False
        self.accounting = AccountingApi(self.client, base_url=settings.base_url.rstrip("/"))
        parts = urlsplit(settings.base_url)
        self.identity = IdentityApi(self.client, base_url=f"{parts.scheme}://{parts.netloc}")
        # Every SDK call is bounded by the connection's timeout (connect, read): the SDK sets none by itself.
        self.timeout = (settings.timeout_s, settings.timeout_s)
        self.raw: dict[str, Any] = {**RAW, "_request_timeout": self.timeout}
        self._token_api = _TimedTokenApi(self.client, settings.client_id, settings.client_secret.get_secret_value(),
                                         self.timeout)
        self._token_api.refresh_token_url = settings.identity_url.rstrip("/") + "/connect/token"
        self.server_clock = ServerClock()

    def close(self) -> None:
        """Stop the threads and the connection pool."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.client.rest_client.pool_manager.clear()

    async def _in_thread(self, token: str | None, invoke: Callable[[], Any]) -> Any:
        def run() -> Any:
            self._local.token = token
            try:
                return invoke()
            finally:
                self._local.token = None

        return await asyncio.get_running_loop().run_in_executor(self._executor, run)

    # --- OAuth ---

    async def refresh(self, refresh_token: str) -> Grant:
        """A new access token and the rotated refresh token (the `TokenRefresher`), retried when transient."""
        return await retrying(self.connection, "xero token refresh", lambda: self._refresh(refresh_token),
                              self._policy)  # fmt: skip

    async def exchange_code(self, code: str, redirect_uri: str) -> Grant:
        """Trade the code of `syncd auth`'s redirect for tokens (not retried: a code is single-use)."""
        return await self._token(lambda: self._token_api.exchange_code(code, redirect_uri))

    async def _refresh(self, refresh_token: str) -> Grant:
        return await self._token(lambda: self._token_api.refresh_token(refresh_token, self._settings.scopes))

    async def _token(self, request: Callable[[], Any]) -> Grant:
        started = time.time()
        try:
            answer = await self._in_thread(None, request)
        except ApiException as exc:
            body = parse_json(exc.body or b"")
            error = body.get("error") if isinstance(body, Mapping) else None
            if exc.status == 400 and error in ("invalid_grant", "invalid_client", "unauthorized_client"):
                raise AuthError(f"Xero refused the grant: {error}", connection=self.connection, status=400,
                                vendor_code=str(error)) from None  # fmt: skip
            raise classify(int(exc.status or 0), body, CIMultiDict(exc.headers or {}),
                           connection=self.connection) from None  # fmt: skip
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise RetryableError(f"Xero identity server did not answer: {type(exc).__name__}",
                                 connection=self.connection) from exc  # fmt: skip
        if not isinstance(answer, Mapping) or not answer.get("access_token"):
            raise FatalError("Xero identity server answered without a token", connection=self.connection)
        return Grant(
            access_token=str(answer["access_token"]),
            expires_at=datetime.fromtimestamp(started, UTC) + timedelta(seconds=float(answer.get("expires_in", 1800))),
            refresh_token=str(answer["refresh_token"]) if answer.get("refresh_token") else None,
        )

    # --- API calls ---

    async def call(self, what: str, invoke: Callable[[AccountingApi | IdentityApi], Any], *, idempotent: bool,
                   record: str | None = None, identity: bool = False) -> Answer:
        """One call with retries. `invoke(api)` makes the SDK call with `**RAW`; a write whose answer was lost
        raises `UnknownOutcomeError` unless it is `idempotent` (a GET, or a write carrying an Idempotency-Key)."""

        async def attempt() -> Answer:
            return await with_token(self._tokens, lambda token: self._send(token, what, invoke, idempotent, record,
                                                                            identity), is_unauthorised,
                                    self._limiter.acquire)  # fmt: skip

        return await retrying(self.connection, what, attempt, self._policy)

    async def _send(self, token: str, what: str, invoke: Callable[[Any], Any], idempotent: bool,
                    record: str | None, identity: bool) -> Answer:
        api = self.identity if identity else self.accounting

        def run() -> tuple[int, bytes, CIMultiDict[str]]:
            response, status, headers = invoke(api)
            try:
                return int(status), bytes(response.data or b""), CIMultiDict(headers or {})
            finally:
                response.release_conn()

        try:
            status, raw, headers = await self._in_thread(token, run)
        except ApiException as exc:
            status = int(exc.status or 0)
            headers = CIMultiDict(exc.headers or {})
            body = parse_json(exc.body or b"")
            if status == 429:
                self.server_clock.observe(headers.get("Date"))
                error = classify(status, body, headers, connection=self.connection, record=record)
                assert isinstance(error, RateLimitedError)
                raise self._limiter.refused(error, daily=error.vendor_code == "day") from None
            raise classify(status, body, headers, connection=self.connection, record=record) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            message = f"{what}: no answer from Xero ({type(exc).__name__})"
            if idempotent:
                raise RetryableError(message, connection=self.connection, record=record) from exc
            raise UnknownOutcomeError(message, connection=self.connection, record=record) from exc
        self._observe(headers)
        body = parse_json(raw)
        if body is None:
            raise RetryableError(f"{what}: answer is not JSON (HTTP {status})", connection=self.connection,
                                 status=status, record=record)  # fmt: skip
        return Answer(status, body, headers, self.server_clock.observe(headers.get("Date")))

    def _observe(self, headers: Mapping[str, str]) -> None:
        """The organisation's remaining calls today and this minute, and the app's this minute (shared by every
        organisation the app serves), as Xero reports them."""
        try:
            day = int(headers["X-DayLimit-Remaining"]) if "X-DayLimit-Remaining" in headers else None
            minute = int(headers["X-MinLimit-Remaining"]) if "X-MinLimit-Remaining" in headers else None
            app = int(headers["X-AppMinLimit-Remaining"]) if "X-AppMinLimit-Remaining" in headers else None
        except ValueError:
            return
        if app is not None and (minute is None or app < minute):
            minute = app  # the app's minute runs out first: the same wait applies
        self._limiter.observe(daily_remaining=day, window_remaining=minute, window_reset_s=60.0)
