"""The one place where simple-salesforce, requests and Salesforce error bodies become syncd errors."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import requests
from simple_salesforce.exceptions import SalesforceError

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

_DUPLICATE_ID = re.compile(r"record with id:\s*([A-Za-z0-9]{15,18})")
# Per-record codes that mean "this record is not there (any more)".
_NOT_FOUND_CODES = frozenset({"NOT_FOUND", "ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY", "INVALID_ID_FIELD"})
_DUPLICATE_CODES = frozenset({"DUPLICATE_VALUE", "DUPLICATE_EXTERNAL_ID", "DUPLICATES_DETECTED"})
# Codes for which repeating the same request later may succeed.
_TRANSIENT_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "REQUEST_RUNNING_TOO_LONG"})


class SessionExpiredError(RetryableError):
    """401 INVALID_SESSION_ID: the access token expired; refresh it and repeat the call once."""


def vendor_error(content: Any) -> tuple[str, str | None]:
    """The message and errorCode of a Salesforce error body (an array, or an OAuth `{error, ...}` object)."""
    if isinstance(content, bytes | str):
        try:
            content = json.loads(content)
        except ValueError:
            text = content.decode(errors="replace") if isinstance(content, bytes) else content
            return (text.strip()[:500] or "empty response"), None
    if isinstance(content, list) and content and isinstance(content[0], Mapping):
        first = content[0]
        message = str(first.get("message", "unknown error"))
        code = first.get("errorCode") or first.get("statusCode")
        if len(content) > 1:
            message += f" (+{len(content) - 1} more)"
        return message, str(code) if code else None
    if isinstance(content, Mapping):
        if "error" in content:
            return str(content.get("error_description") or content["error"]), str(content["error"])
        return str(content.get("message", content)), (str(content["errorCode"]) if "errorCode" in content else None)
    return str(content)[:500], None


def classify(exc: BaseException, *, connection: str, record: str | None = None,
             idempotent: bool = True) -> ConnectorError:
    """Translate an exception raised while calling Salesforce; `idempotent=False` for creates, whose
    outcome is unknown when the answer is lost."""
    if isinstance(exc, ConnectorError):
        return exc
    kw: dict[str, Any] = {"connection": connection, "record": record}
    if isinstance(exc, SalesforceError):
        message, code = vendor_error(exc.content)
        return classify_status(exc.status, message, code, idempotent=idempotent, **kw)
    if isinstance(exc, requests.exceptions.SSLError):
        return FatalError(f"TLS failure talking to Salesforce: {exc}", **kw)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return RetryableError("connecting to Salesforce timed out", **kw)
    if isinstance(exc, requests.exceptions.ConnectionError) and _never_sent(exc):
        return RetryableError(f"could not connect to Salesforce: {_short(exc)}", **kw)
    if isinstance(exc, requests.exceptions.Timeout | requests.exceptions.ConnectionError
                  | requests.exceptions.ChunkedEncodingError):
        what = "timed out" if isinstance(exc, requests.exceptions.Timeout) else "lost the connection"
        if not idempotent:
            return UnknownOutcomeError(f"Salesforce {what} before answering a write", **kw)
        return RetryableError(f"Salesforce {what}: {_short(exc)}", **kw)
    if isinstance(exc, ValueError):
        # A truncated or non-JSON body from a proxy or an overloaded server.
        if not idempotent:
            return UnknownOutcomeError(f"unreadable answer from Salesforce to a write: {exc}", **kw)
        return RetryableError(f"unreadable answer from Salesforce: {exc}", **kw)
    return FatalError(f"unexpected failure calling Salesforce: {type(exc).__name__}: {exc}", **kw)


def classify_status(status: int, message: str, code: str | None, *, connection: str,
                    record: str | None = None, idempotent: bool = True) -> ConnectorError:
    """Translate an HTTP error status and Salesforce error body."""
    kw: dict[str, Any] = {"connection": connection, "record": record, "status": status, "vendor_code": code}
    if status == 401:
        if code == "INVALID_SESSION_ID":
            return SessionExpiredError(message, **kw)
        return AuthError(message, **kw)
    if status == 403 and code == "REQUEST_LIMIT_EXCEEDED":
        return RateLimitedError(message, **kw)
    if status == 429:
        return RateLimitedError(message, **kw)
    if status >= 500 or code in _TRANSIENT_CODES:
        if not idempotent:
            return UnknownOutcomeError(message, **kw)
        return RetryableError(message, **kw)
    if status == 404 or code in _NOT_FOUND_CODES:
        return NotFoundError(message, **kw)
    if status == 300 or code in _DUPLICATE_CODES:
        return DuplicateError(message, existing_id=duplicate_id(message), **kw)
    if status == 403:
        return FatalError(message, **kw)
    if record is not None:
        return SkippableError(message, **kw)
    return FatalError(message, **kw)


def record_error(errors: Any, *, connection: str, record: str) -> ConnectorError:
    """One failed row of an sObject Collections answer (`errors: [{statusCode, message, fields}]`)."""
    message, code = vendor_error(errors if isinstance(errors, list) and errors else [{"message": "failed"}])
    fields = errors[0].get("fields") if isinstance(errors, list) and errors and isinstance(errors[0], Mapping) else None
    if fields:
        message += f" [fields: {', '.join(str(f) for f in fields)}]"
    if code in _TRANSIENT_CODES:
        return RetryableError(message, connection=connection, record=record, vendor_code=code)
    return classify_status(400, message, code, connection=connection, record=record)


def duplicate_id(message: str) -> str | None:
    """The existing record's id named in a DUPLICATE_VALUE message, if any."""
    match = _DUPLICATE_ID.search(message)
    return match.group(1) if match else None


def _never_sent(exc: requests.exceptions.ConnectionError) -> bool:
    # A refused or unresolvable connection never reached the server, so even a create is safe to repeat.
    text = repr(exc)
    return "NewConnectionError" in text or "Connection refused" in text or "NameResolutionError" in text


def _short(exc: BaseException) -> str:
    return str(exc)[:300]
