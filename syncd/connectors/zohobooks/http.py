"""Zoho Books over aiohttp: one session, the `{code, message}` envelope, OAuth, and error classification.

Every Books call goes through `BooksHttp.call`: the rate limiter is asked before each attempt, the token
manager supplies `Authorization: Zoho-oauthtoken`, a 401 refreshes once (single-flight), transient failures
are retried by `retrying`, and every failure leaves as a typed `ConnectorError` from `classify`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp

from syncd.connectors.ratelimit import RateLimiter
from syncd.connectors.retry import RetryPolicy, retrying
from syncd.connectors.server_clock import ServerClock
from syncd.connectors.tokens import Grant, TokenManager, with_token
from syncd.connectors.zohobooks.settings import ZohoBooksConnection
from syncd.errors import (
    AuthError,
    ConnectorError,
    DuplicateError,
    FatalError,
    NotFoundError,
    RateLimitedError,
    RetryableError,
    SkippableError,
    UnknownOutcomeError,
)

# Zoho's documented and widely reported codes (contracts README; syncd/sandbox/zohobooks/errors.py).
CODE_NOT_FOUND = 1002
CODE_NOT_AUTHORISED = 57
CODE_ORGANISATION_UNKNOWN = 6041
CODE_DUPLICATE = 3062
CODE_DAILY_LIMIT = 45  # unverified: the sandbox's code for the daily cap
# The accounts server answers a refused grant with HTTP 200 and one of these in `error`.
BAD_GRANT = frozenset(
    {"invalid_code", "invalid_client", "invalid_client_secret", "invalid_redirect_uri", "unauthorized_client",
     "invalid_grant"}
)  # fmt: skip
IDEMPOTENT = frozenset({"GET", "HEAD", "DELETE"})


def parse_json(raw: bytes) -> Any:
    """A response body as JSON with amounts kept exact (Decimal), or None when it is not JSON."""
    if not raw:
        return None
    try:
        return json.loads(raw, parse_float=Decimal)
    except ValueError:
        return None


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def classify(
    status: int,
    body: Any,
    headers: Mapping[str, str],
    *,
    connection: str,
    record: str | None = None,
    window_s: float = 60.0,
) -> ConnectorError:
    """The one classification of a failed Books answer into syncd's typed errors."""
    code = body.get("code") if isinstance(body, dict) else None
    message = str(body.get("message")) if isinstance(body, dict) and body.get("message") else f"HTTP {status}"
    vendor_code = str(code) if code is not None else None
    kw: dict[str, Any] = {
        "connection": connection,
        "status": status,
        "vendor_code": vendor_code,
        "record": record,
    }
    if status == 429:
        retry_after = _retry_after(headers)
        if retry_after is None or (code != CODE_DAILY_LIMIT and retry_after > window_s):
            # A per-window refusal is over once the window has passed, whatever the header rounds up to.
            retry_after = window_s
        return RateLimitedError(message, retry_after=retry_after, **kw)
    if status >= 500 or status == 408:
        return RetryableError(message, retry_after=_retry_after(headers), **kw)
    if status == 401 and code == CODE_ORGANISATION_UNKNOWN:
        return FatalError(f"{message} Check organization_id in the connection's settings.", **kw)
    if status == 401:
        return AuthError(message, **kw)
    if status == 404 or code == CODE_NOT_FOUND:
        return NotFoundError(message, **kw)
    if code == CODE_DUPLICATE:
        return DuplicateError(message, **kw)
    if status in (400, 405, 409, 422):
        return SkippableError(message, **kw)
    if status == 403:
        return FatalError(message, **kw)
    return FatalError(message, **kw)


def is_unauthorised(exc: BaseException) -> bool:
    """Whether a Books call was refused for its access token (refresh once and try again)."""
    return isinstance(exc, AuthError) and exc.status == 401


@dataclass(frozen=True)
class Answer:
    """A successful Books answer: status, parsed body, and the server's time by its `Date` header."""

    status: int
    body: dict[str, Any]
    server_time: datetime | None = None


def authorize_url(settings: ZohoBooksConnection, redirect_uri: str, state: str) -> str:
    """Where a person grants access; the accounts server redirects back with `code` and `state`."""
    query = urlencode(
        {
            "response_type": "code",
            "client_id": settings.client_id,
            "scope": ",".join(settings.scopes),
            "redirect_uri": redirect_uri,
            "state": state,
            "access_type": "offline",  # without it Zoho issues no refresh token
            "prompt": "consent",
        }
    )
    return f"{settings.accounts_url.rstrip('/')}/oauth/v2/auth?{query}"


class ZohoAccounts:
    """The accounts server: code exchange and refresh (the `TokenRefresher`)."""

    def __init__(
        self,
        connection: str,
        settings: ZohoBooksConnection,
        session: aiohttp.ClientSession,
        policy: RetryPolicy,
    ) -> None:
        self.connection = connection
        self._settings = settings
        self._session = session
        self._policy = policy
        self._token_url = settings.accounts_url.rstrip("/") + "/oauth/v2/token"

    async def refresh(self, refresh_token: str) -> Grant:
        """A new access token (Zoho issues no new refresh token on refresh)."""
        return await self._grant({"grant_type": "refresh_token", "refresh_token": refresh_token})

    async def exchange_code(self, code: str, redirect_uri: str) -> Grant:
        """Trade an authorisation code for an access and a refresh token."""
        grant = await self._grant(
            {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        )
        if not grant.refresh_token:
            raise AuthError(
                "Zoho issued no refresh token (was access_type=offline lost?); run the flow again",
                connection=self.connection,
            )
        return grant

    async def _grant(self, params: dict[str, str]) -> Grant:
        params = {
            **params,
            "client_id": self._settings.client_id,
            "client_secret": self._settings.client_secret.get_secret_value(),
        }
        return await retrying(self.connection, "zoho oauth token", lambda: self._post(params), self._policy)

    async def _post(self, params: dict[str, str]) -> Grant:
        try:
            # Zoho documents the parameters in the query string of a POST.
            async with self._session.post(self._token_url, params=params) as response:
                raw = await response.read()
                status, headers = response.status, response.headers
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RetryableError(
                f"Zoho accounts server did not answer: {type(exc).__name__}", connection=self.connection
            ) from exc
        body = parse_json(raw)
        if isinstance(body, dict) and body.get("access_token"):
            expires_in = float(body.get("expires_in") or 3600)
            extras = {k: str(body[k]) for k in ("api_domain", "scope") if body.get(k)}
            return Grant(
                access_token=str(body["access_token"]),
                expires_at=datetime.now(UTC) + timedelta(seconds=expires_in),
                refresh_token=str(body["refresh_token"]) if body.get("refresh_token") else None,
                extras=extras,
            )
        error = str(body.get("error")) if isinstance(body, dict) and body.get("error") else None
        if error in BAD_GRANT:
            # HTTP 200 with an error body: the grant itself is refused.
            raise AuthError(
                f"Zoho accounts server refused the grant: {error}",
                connection=self.connection,
                status=status,
                vendor_code=error,
            )
        if error is not None and "too many requests" in str(body.get("error_description", "")).lower():
            raise RateLimitedError(
                f"Zoho accounts server: {error}",
                retry_after=60.0,
                connection=self.connection,
                status=status,
                vendor_code=error,
            )
        if status >= 500 or status == 429 or error is not None:
            raise RetryableError(
                f"Zoho accounts server answered {error or f'HTTP {status}'}",
                retry_after=_retry_after(headers),
                connection=self.connection,
                status=status,
                vendor_code=error,
            )
        raise FatalError(
            f"Zoho accounts server answered HTTP {status} without a token",
            connection=self.connection,
            status=status,
        )


class BooksHttp:
    """Authenticated, paced, retried calls to one organisation's Books API."""

    def __init__(
        self,
        connection: str,
        settings: ZohoBooksConnection,
        session: aiohttp.ClientSession,
        tokens: TokenManager,
        limiter: RateLimiter,
        policy: RetryPolicy,
    ) -> None:
        self.connection = connection
        self._settings = settings
        self._session = session
        self._tokens = tokens
        self._limiter = limiter
        self._policy = policy
        self._base = settings.base_url.rstrip("/")
        self.server_clock = ServerClock()

    @property
    def root(self) -> str:
        """`scheme://host:port` of the Books API (where a sandbox serves its control plane)."""
        parts = urlsplit(self._base)
        return f"{parts.scheme}://{parts.netloc}"

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        record: str | None = None,
        retry: bool = True,
    ) -> Answer:
        """One Books call with retries; a write whose answer was lost raises `UnknownOutcomeError`."""

        async def attempt() -> Answer:
            return await with_token(
                self._tokens,
                lambda token: self._send(token, method, path, params, body, headers, record),
                is_unauthorised,
                self._limiter.acquire,
            )

        if not retry:
            return await attempt()
        return await retrying(self.connection, f"{method} {path}", attempt, self._policy)

    async def _send(
        self,
        token: str,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        body: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        record: str | None,
    ) -> Answer:
        query = {**(params or {}), "organization_id": self._settings.organization_id}
        sent_headers = {**(headers or {}), "Authorization": f"Zoho-oauthtoken {token}"}
        data = json.dumps(body).encode() if body is not None else None
        if data is not None:
            sent_headers["Content-Type"] = "application/json"
        try:
            async with self._session.request(
                method, f"{self._base}/{path}", params=query, data=data, headers=sent_headers
            ) as response:
                raw = await response.read()
                status, got = response.status, response.headers
        except (aiohttp.ClientError, TimeoutError) as exc:
            message = f"{method} {path}: no answer from Zoho Books ({type(exc).__name__})"
            if method in IDEMPOTENT:
                raise RetryableError(message, connection=self.connection, record=record) from exc
            # The request may have been applied before the answer was lost.
            raise UnknownOutcomeError(message, connection=self.connection, record=record) from exc
        parsed = parse_json(raw)
        if status < 400:
            # Only successful answers: a window 429 may report the daily remainder as 0 (the sandbox does).
            self._observe(got)
        if status == 429:
            error = classify(
                status,
                parsed,
                got,
                connection=self.connection,
                record=record,
                window_s=self._limiter.budget.window_s,
            )
            assert isinstance(error, RateLimitedError)
            daily = isinstance(parsed, dict) and parsed.get("code") == CODE_DAILY_LIMIT
            raise self._limiter.refused(error, daily=daily)
        if status >= 400 or not isinstance(parsed, dict) or parsed.get("code", 0) != 0:
            if status < 400 and not isinstance(parsed, dict):
                raise RetryableError(
                    f"{method} {path}: answer is not JSON (HTTP {status})",
                    connection=self.connection,
                    status=status,
                    record=record,
                )
            raise classify(
                status,
                parsed,
                got,
                connection=self.connection,
                record=record,
                window_s=self._limiter.budget.window_s,
            )
        return Answer(status, parsed, self.server_clock.observe(got.get("Date")))

    def _observe(self, headers: Mapping[str, str]) -> None:
        """Zoho reports the daily figures in `X-Rate-Limit-Limit/-Remaining`."""
        try:
            cap = int(headers["X-Rate-Limit-Limit"]) if "X-Rate-Limit-Limit" in headers else None
            remaining = (
                int(headers["X-Rate-Limit-Remaining"]) if "X-Rate-Limit-Remaining" in headers else None
            )
        except ValueError:
            return
        self._limiter.observe(daily_cap=cap, daily_remaining=remaining)

