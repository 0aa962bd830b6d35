"""Amounts as Zoho Books handles them: Decimal inside, two decimal places, JSON numbers on the wire."""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

CENT = Decimal("0.01")
ZERO = Decimal("0")


def round_money(value: Decimal) -> Decimal:
    """Round to cents the way invoices are rounded (half up)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def parse_decimal(value: Any) -> Decimal | None:
    """A finite Decimal from a JSON number or numeric string; None when the value is not one."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, int | float | str):
        try:
            parsed = Decimal(str(value).strip())
        except InvalidOperation:
            return None
        return parsed if parsed.is_finite() else None
    return None


def json_number(value: Decimal) -> int | float:
    """A Decimal as a JSON number: whole amounts as integers (`250`), others as the shortest float (`40.6`)."""
    if value == value.to_integral_value():
        return int(value)
    return float(value)


def _default(value: object) -> Any:
    if isinstance(value, Decimal):
        return json_number(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(value: Any) -> str:
    """JSON text with Decimals written as numbers, for every API response of the simulator."""
    return json.dumps(value, default=_default, separators=(",", ":"))
