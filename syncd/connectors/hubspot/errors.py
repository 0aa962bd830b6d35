"""The one place where HubSpot answers, SDK and urllib3 exceptions become syncd's typed connector errors."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import urllib3.exceptions

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

_EXISTING_ID = re.compile(r"Existing ID:\s*(\d+)", re.I)


@dataclass(frozen=True)
class RateHeaders:
    """What HubSpot's `X-HubSpot-RateLimit-*` and `Retry-After` headers said about the budget."""

    window_max: int | None = None
    window_remaining: int | None = None
    window_ms: int | None = None
    daily_cap: int | None = None
    daily_remaining: int | None = None
    retry_after_s: float | None = None


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def _float(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value.strip())
    except ValueError:
        return None


def lower_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """Headers with lower-case names (urllib3 and SDK exceptions differ in how they expose them)."""
    return {str(k).lower(): str(v) for k, v in (headers or {}).items()}


def read_rate_headers(headers: Mapping[str, str]) -> RateHeaders:
    """The rate-limit headers of a response (any of them may be absent)."""
    h = lower_headers(headers)
    return RateHeaders(
        window_max=_int(h.get("x-hubspot-ratelimit-max")),
        window_remaining=_int(h.get("x-hubspot-ratelimit-remaining")),
        window_ms=_int(h.get("x-hubspot-ratelimit-interval-milliseconds")),
        daily_cap=_int(h.get("x-hubspot-ratelimit-daily")),
        daily_remaining=_int(h.get("x-hubspot-ratelimit-daily-remaining")),
        retry_after_s=_float(h.get("retry-after")),
    )


def parse_body(raw: bytes | str | None) -> Any:
    """A response body as JSON, or None when it is empty or not JSON."""
    if raw is None or raw in (b"", ""):
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None


def _message(body: Any, fallback: str) -> tuple[str, str | None]:
    if isinstance(body, Mapping):
        message = str(body.get("message") or fallback)
        code = body.get("category") or body.get("errorType") or body.get("status")
        details = body.get("errors")
        if isinstance(details, list) and details and isinstance(details[0], Mapping):
            first = details[0]
            if first.get("message") and str(first["message"]) not in message:
                message = f"{message} ({first['message']})"
        return message, (str(code) if code and code != "error" else None)
    return fallback, None


def classify_response(
    status: int,
    body: Any,
    headers: Mapping[str, str] | None,
    *,
    connection: str,
    record: str | None = None,
) -> ConnectorError:
    """The typed error for a non-2xx HubSpot answer, carrying HubSpot's message and category."""
    message, code = _message(body, f"HubSpot answered HTTP {status}")
    common: dict[str, Any] = {"connection": connection, "status": status, "vendor_code": code, "record": record}
    if status == 429:
        rate = read_rate_headers(headers or {})
        retry_after = rate.retry_after_s
        if retry_after is None and isinstance(body, Mapping) and body.get("policyName") == "DAILY":
            retry_after = 3600.0
        return RateLimitedError(message, retry_after=retry_after, **common)
    if status == 401:
        return AuthError(message, **common)
    if status == 403:
        return FatalError(message, **common)
    if status == 404:
        return NotFoundError(message, **common)
    if status == 409:
        found = _EXISTING_ID.search(message)
        return DuplicateError(message, existing_id=found.group(1) if found else None, **common)
    if status >= 500 or status in (0, 408):
        retry_after = read_rate_headers(headers or {}).retry_after_s
        return RetryableError(message, retry_after=retry_after, **common)
    return SkippableError(message, **common)


def classify_item_error(error: Mapping[str, Any], *, connection: str, record: str | None) -> ConnectorError:
    """The typed error for one entry of a 207 multi-status batch answer."""
    category = str(error.get("category") or "")
    status = {"OBJECT_NOT_FOUND": 404, "CONFLICT": 409, "RATE_LIMITS": 429}.get(category, 400)
    raw_status = error.get("status")
    if isinstance(raw_status, str) and raw_status.isdigit():
        status = int(raw_status)
    return classify_response(status, dict(error), None, connection=connection, record=record)


def is_vendor_exception(exc: BaseException) -> bool:
    """Whether `exc` is one of the SDK's per-package `ApiException` classes (they share no base class)."""
    return type(exc).__module__.startswith("hubspot.") and hasattr(exc, "status") and hasattr(exc, "body")


def classify(exc: BaseException, *, connection: str, record: str | None = None, sent_write: bool = False
             ) -> ConnectorError:
    """Translate anything the SDK or urllib3 raised; `sent_write` marks a non-idempotent write, whose
    outcome is unknown when the connection failed after the request may have been sent."""
    if isinstance(exc, ConnectorError):
        return exc
    if is_vendor_exception(exc):
        status = int(getattr(exc, "status", 0) or 0)
        headers = getattr(exc, "headers", None)
        header_map = dict(headers.items()) if headers is not None and hasattr(headers, "items") else None
        body = parse_body(getattr(exc, "body", None))
        if status == 0:
            reason = str(getattr(exc, "reason", "") or "connection failed")
            return _transport_error(reason, connection, record, sent_write, maybe_sent=True)
        return classify_response(status, body, header_map, connection=connection, record=record)
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        return classify(exc.reason, connection=connection, record=record, sent_write=sent_write)
    if isinstance(exc, (urllib3.exceptions.ConnectTimeoutError, urllib3.exceptions.NewConnectionError)):
        # The request never left: always safe to try again.
        return _transport_error(f"cannot connect to HubSpot: {exc}", connection, record, sent_write, False)
    if isinstance(exc, (urllib3.exceptions.HTTPError, TimeoutError, ConnectionError)):
        return _transport_error(f"HubSpot did not answer: {exc}", connection, record, sent_write, True)
    return FatalError(f"unexpected error talking to HubSpot: {exc!r}", connection=connection, record=record)


def _transport_error(message: str, connection: str, record: str | None, sent_write: bool, maybe_sent: bool
                     ) -> ConnectorError:
    if sent_write and maybe_sent:
        return UnknownOutcomeError(message, connection=connection, record=record)
    return RetryableError(message, connection=connection, record=record)


def is_unauthorised(exc: BaseException) -> bool:
    """A 401: the access token is expired or unknown, so one refresh may fix it."""
    return isinstance(exc, AuthError) and exc.status == 401
