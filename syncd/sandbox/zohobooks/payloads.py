"""Reading Books request bodies and fields strictly, with Zoho's error answers for malformed input."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from syncd.sandbox.zohobooks.errors import ZohoError, invalid, mandatory
from syncd.sandbox.zohobooks.money import parse_decimal
from syncd.sandbox.zohobooks.timestamps import parse_date

JSONSTRING_ERROR = ZohoError(400, 4, "Invalid value passed for JSONString")


async def read_body(request: web.Request) -> dict[str, Any]:
    """The JSON object of a write request: a JSON body, or the legacy form field `JSONString`."""
    raw = (await request.read()).decode("utf-8", errors="replace")
    document: str | None = raw
    if request.content_type == "application/x-www-form-urlencoded":
        document = dict(parse_qsl(raw, keep_blank_values=True)).get("JSONString")
    if document is None or not document.strip():
        raise JSONSTRING_ERROR
    try:
        body = json.loads(document, parse_float=Decimal)
    except ValueError as exc:
        raise JSONSTRING_ERROR from exc
    if not isinstance(body, dict):
        raise JSONSTRING_ERROR
    return body


def text(body: Mapping[str, Any], key: str, *, required: bool = False, max_length: int = 255) -> str | None:
    """A string field; numbers are not accepted where Zoho expects text (IDs are strings)."""
    if key not in body or body[key] is None:
        if required:
            raise mandatory(key)
        return None
    value = body[key]
    if not isinstance(value, str) or len(value) > max_length:
        raise invalid(key)
    if required and not value.strip():
        raise mandatory(key)
    return value


def identifier(body: Mapping[str, Any], key: str, *, required: bool = False) -> str | None:
    """An ID field: a string of digits (Zoho also accepts the digits as a JSON integer)."""
    if key not in body or body[key] is None or body[key] == "":
        if required:
            raise mandatory(key)
        return None
    value = body[key]
    if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).isdigit():
        raise invalid(key)
    return str(value)


def amount(
    body: Mapping[str, Any], key: str, *, required: bool = False, minimum: Decimal | None = None
) -> Decimal | None:
    """A decimal amount (JSON number or numeric string), at least `minimum` when given."""
    if key not in body or body[key] is None:
        if required:
            raise mandatory(key)
        return None
    value = parse_decimal(body[key])
    if value is None or (minimum is not None and value < minimum):
        raise invalid(key)
    return value


def day(body: Mapping[str, Any], key: str, *, required: bool = False) -> date | None:
    """A `yyyy-mm-dd` date field."""
    raw = text(body, key, required=required)
    if raw is None or raw == "":
        if required:
            raise mandatory(key)
        return None
    try:
        return parse_date(raw)
    except ValueError as exc:
        raise invalid(key) from exc


def integer(body: Mapping[str, Any], key: str, *, minimum: int = 0) -> int | None:
    """A whole number field (e.g. payment_terms)."""
    if key not in body or body[key] is None:
        return None
    value = body[key]
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).lstrip("-").isdigit():
        raise invalid(key)
    if int(value) < minimum:
        raise invalid(key)
    return int(value)


def flag(body: Mapping[str, Any], key: str) -> bool | None:
    """A boolean field."""
    if key not in body or body[key] is None:
        return None
    value = body[key]
    if not isinstance(value, bool):
        raise invalid(key)
    return value


def query_flag(request: web.Request, key: str) -> bool:
    """A `true`/`false` query parameter."""
    value = request.query.get(key, "false").lower()
    if value not in ("true", "false"):
        raise invalid(key)
    return value == "true"
