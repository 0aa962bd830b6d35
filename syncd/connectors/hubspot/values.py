"""HubSpot property values: the strings HubSpot returns, typed by the properties API, and back again."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

from syncd.connectors.base import FieldValue

_EPOCH_MS = re.compile(r"-?\d{10,}")


def parse_timestamp(text: str) -> datetime | None:
    """An aware UTC datetime from HubSpot's ISO text (`2024-01-05T10:00:00.123Z`) or epoch milliseconds."""
    text = text.strip()
    if not text:
        return None
    if _EPOCH_MS.fullmatch(text):
        return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_date(text: str) -> date | None:
    """A calendar date from `YYYY-MM-DD`, a midnight timestamp, or epoch milliseconds."""
    text = text.strip()
    if not text:
        return None
    if len(text) == 10:
        try:
            return date.fromisoformat(text)
        except ValueError:
            return None
    moment = parse_timestamp(text)
    return moment.date() if moment is not None else None


def from_hubspot(kind: str, text: str | None) -> FieldValue:
    """The typed value of a property string; `kind` is the properties API's `type`; empty text is None."""
    if text is None or text == "":
        return None
    if kind == "number":
        try:
            number = Decimal(text.strip())
        except InvalidOperation:
            return text
        return number if number.is_finite() else text
    if kind == "bool" or kind == "booleancheckbox":
        lowered = text.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        return text
    if kind == "date":
        return parse_date(text) or text
    if kind == "datetime":
        return parse_timestamp(text) or text
    return text


def to_hubspot(value: FieldValue) -> str:
    """The string HubSpot accepts for a typed value; None clears the property (empty string)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        # Plain notation: HubSpot rejects exponents such as 1E+3.
        return format(value, "f")
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return str(int(moment.timestamp() * 1000))
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value
    raise TypeError(f"a list cannot be written to a HubSpot property: {value!r}")


def typed_properties(types: Mapping[str, str], properties: Mapping[str, str | None]) -> dict[str, FieldValue]:
    """Every returned property typed by its definition (unknown properties stay strings)."""
    return {name: from_hubspot(types.get(name, "string"), raw) for name, raw in properties.items()}


def epoch_ms(moment: datetime) -> int:
    """Epoch milliseconds, as search filters on date-time properties take them."""
    return int(moment.timestamp() * 1000)
