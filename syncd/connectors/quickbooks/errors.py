"""QuickBooks Online refusals translated into syncd's error taxonomy: the one classification point of the
connector (python-quickbooks exceptions, Fault objects of batch items, HTTP failures, intuit-oauth errors)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from intuitlib.exceptions import AuthClientError
from quickbooks.exceptions import AuthorizationException, QuickbooksException

from syncd.connectors.quickbooks.client import HttpFailure
from syncd.errors import (
    AuthError,
    ConnectorError,
    FatalError,
    NameTakenError,
    NotFoundError,
    RateLimitedError,
    RetryableError,
    SkippableError,
)

DUPLICATE_NAME = "6240"
STALE_OBJECT = "5010"
NOT_FOUND = "610"
THROTTLED_WAIT_S = 60.0  # QBO sends no Retry-After: Intuit says to wait a minute after a 429
_HOLDER = re.compile(r"Id=(\d+)")


class StaleObjectError(RetryableError):
    """QBO refused an update because its SyncToken is not the record's current one (5010): someone changed the
    record since syncd read it. Never retried as it is: the engine parks the pair as transient and plans it
    again from a fresh read, three-way, so the other edit is merged, not overwritten."""


def from_fault(fault: Mapping[str, Any], *, connection: str, record: str | None,
               name: tuple[str, str] | None = None) -> ConnectorError:
    """A Fault object (an answer's or a batch item's) as a typed error; `name` is the unique (field, value) the
    write sent, for a 6240 refusal."""
    errors = fault.get("Error") or [{}]
    first = errors[0] if isinstance(errors[0], Mapping) else {}
    return from_code(str(first.get("code", "")), str(first.get("Message", "")), str(first.get("Detail", "")),
                     connection=connection, record=record, name=name)  # fmt: skip


def from_code(code: str, message: str, detail: str, *, connection: str, record: str | None,
              name: tuple[str, str] | None = None, status: int | None = 400) -> ConnectorError:
    """A QBO error code and its texts as a typed error."""
    text = f"{message}: {detail}" if detail and detail != message else message
    kw: dict[str, Any] = {"connection": connection, "record": record, "status": status, "vendor_code": code}
    if code == DUPLICATE_NAME and name is not None:
        holder = _HOLDER.search(detail)
        return NameTakenError(text, field=name[0], value=name[1], holder_id=holder.group(1) if holder else None, **kw)
    if code == STALE_OBJECT:
        return StaleObjectError(text, retry_after=0.0, **kw)
    if code == NOT_FOUND:
        return NotFoundError(text, **kw)
    if code.isdigit() and 0 < int(code) < 500 and code not in ("3001",):
        return AuthError(text, **kw)
    if code == "3001":
        return RateLimitedError(text, retry_after=THROTTLED_WAIT_S, **kw)
    if code.isdigit() and int(code) >= 10000:
        return RetryableError(text, **kw)  # "An application error has occurred": QBO's own failure
    return SkippableError(text, **kw)


def translate(exc: BaseException, *, connection: str, record: str | None,
              name: tuple[str, str] | None = None) -> ConnectorError:
    """Any failure of an SDK call as a typed error."""
    if isinstance(exc, ConnectorError):
        return exc
    if isinstance(exc, HttpFailure):
        if exc.status == 429:
            return RateLimitedError("QuickBooks throttled the request (500/min, 10/s or 40 batches/min)",
                                    retry_after=THROTTLED_WAIT_S, connection=connection, record=record, status=429,
                                    vendor_code="3001")  # fmt: skip
        return RetryableError(f"QuickBooks did not answer properly: {exc}", connection=connection, record=record,
                              status=exc.status)  # fmt: skip
    if isinstance(exc, AuthorizationException):
        return AuthError(f"QuickBooks refused the access token: {exc.message}", connection=connection,
                         record=record, status=401, vendor_code=str(exc.error_code or "3200"))  # fmt: skip
    if isinstance(exc, QuickbooksException):
        code = str(exc.error_code or "")
        if code == "10000" and "json" in str(exc.message).lower():
            return RetryableError(f"QuickBooks answered something that is not JSON: {exc.message[:200]}",
                                  connection=connection, record=record)  # fmt: skip
        return from_code(code, str(exc.message), str(exc.detail or ""), connection=connection, record=record,
                         name=name)  # fmt: skip
    if isinstance(exc, AuthClientError):
        if exc.status_code in (400, 401):
            return AuthError(f"Intuit refused the grant (HTTP {exc.status_code})", connection=connection,
                             status=exc.status_code, vendor_code=_oauth_error(exc))  # fmt: skip
        return RetryableError(f"Intuit's token endpoint answered HTTP {exc.status_code}", connection=connection,
                              status=exc.status_code)  # fmt: skip
    return FatalError(f"QuickBooks call failed: {type(exc).__name__}: {exc}", connection=connection, record=record)


def _oauth_error(exc: AuthClientError) -> str | None:
    try:
        body = exc.response.json()
    except ValueError:
        return None
    return str(body.get("error")) if isinstance(body, dict) and body.get("error") else None
