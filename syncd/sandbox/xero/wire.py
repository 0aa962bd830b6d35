"""Xero's JSON on the wire: `/Date(ms+0000)/` stamps, amounts as numbers, the Error and 404 bodies."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


def ms_date(ms: int) -> str:
    """A stamp as Xero writes it (`UpdatedDateUTC`): milliseconds since the epoch, UTC."""
    return f"/Date({ms}+0000)/"


def day_ms(day: date) -> int:
    """Midnight UTC of a day, in milliseconds (how Xero writes `Date` and `DueDate`)."""
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def parse_day(value: Any) -> date | None:
    """A date sent by a client: `/Date(ms)/` (the SDK's form), `2024-05-01` or `2024-05-01T00:00:00`."""
    if not isinstance(value, str) or not value.strip():
        return None
    match = MS_DATE.match(value.strip())
    if match:
        return datetime.fromtimestamp(int(match.group(1)) / 1000, UTC).date()
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        return None


def parse_stamp(value: str) -> float | None:
    """An `If-Modified-Since` value (ISO 8601, with or without zone: UTC when none) in epoch seconds."""
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            from email.utils import parsedate_to_datetime

            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def decimal(value: Any) -> Decimal | None:
    """An amount sent by a client (number or numeric string); None when it is not one."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        found = Decimal(str(value))
    except InvalidOperation:
        return None
    return found if found.is_finite() else None


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        # Amounts have at most four places: the float's repr is the same digits.
        return float(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


def dumps(value: Any) -> str:
    """JSON with Decimal amounts as numbers."""
    return json.dumps(value, default=_default)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON answer as Xero sends it."""
    return web.Response(
        text=dumps(body), status=status, content_type="application/json", charset="utf-8", headers=headers
    )


def validation_error(elements: list[dict[str, Any]]) -> web.Response:
    """400 `ValidationException` with the refused elements, each carrying its `ValidationErrors`."""
    return json_response(
        {
            "ErrorNumber": 10,
            "Type": "ValidationException",
            "Message": "A validation exception occurred",
            "Elements": elements,
        },
        status=400,
    )


def not_found() -> web.Response:
    """Xero's 404: a plain-text sentence, no JSON."""
    return web.Response(status=404, text="The resource you're looking for cannot be found", content_type="text/plain")


def problem(status: int, title: str, detail: str, headers: dict[str, str] | None = None) -> web.Response:
    """The identity layer's refusal body (401 unauthorised, 403 forbidden tenant)."""
    return json_response(
        {"Type": None, "Title": title, "Status": status, "Detail": detail, "Instance": None, "Extensions": {}},
        status=status,
        headers=headers,
    )
