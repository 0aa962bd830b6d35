"""Property values as HubSpot keeps them: validated, normalised to strings, and compared by type in search."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from syncd.sandbox.hubspot.catalog import PropertyDef

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_MS_PER_DAY = 86_400_000


class InvalidValue(ValueError):
    """A value HubSpot would refuse, with its error code (INVALID_FLOAT, INVALID_DATE, INVALID_OPTION...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def iso_ms(epoch_s: float) -> str:
    """Epoch seconds as HubSpot's timestamp text, e.g. 2024-01-05T10:00:00.123Z."""
    moment = dt.datetime.fromtimestamp(epoch_s, tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def to_epoch_ms(text: str) -> int | None:
    """Epoch milliseconds from epoch-ms digits, an ISO date-time or an ISO date; None when unparseable."""
    text = text.strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return round(moment.timestamp() * 1000)


def normalise(prop: PropertyDef, raw: Any) -> str:
    """The stored string for a value sent for `prop`; InvalidValue when HubSpot would reject it."""
    if raw is None:
        return ""  # null clears a property
    if isinstance(raw, bool):
        text = "true" if raw else "false"
    elif isinstance(raw, int | float):
        text = str(raw)
    elif isinstance(raw, str):
        text = raw
    else:
        raise InvalidValue("INVALID_PROPERTY_VALUE", f"{raw!r} is not a valid value for {prop.name}.")
    if text == "":
        return ""
    if prop.type == "number":
        try:
            number = Decimal(text.strip())
        except InvalidOperation:
            raise InvalidValue("INVALID_FLOAT", f"{text} was not a valid number.") from None
        if not number.is_finite():
            raise InvalidValue("INVALID_FLOAT", f"{text} was not a valid number.")
        return text.strip()
    if prop.type == "date":
        ms = to_epoch_ms(text)
        if ms is None or ms % _MS_PER_DAY != 0:
            raise InvalidValue(
                "INVALID_DATE", f"{text} is not a valid date: dates must be midnight UTC or YYYY-MM-DD."
            )
        return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).date().isoformat()
    if prop.type == "datetime":
        ms = to_epoch_ms(text)
        if ms is None:
            raise InvalidValue("INVALID_DATETIME", f"{text} was not a valid date-time.")
        return iso_ms(ms / 1000)
    if prop.type == "bool":
        if text.lower() not in ("true", "false"):
            raise InvalidValue("INVALID_BOOLEAN", f"{text} was not a valid boolean.")
        return text.lower()
    if prop.type == "enumeration" and prop.options:
        for part in text.split(";"):
            if part not in prop.options:
                raise InvalidValue(
                    "INVALID_OPTION",
                    f"{part} was not one of the allowed options: {', '.join(prop.options)}",
                )
        return text
    if prop.name == "email":
        email = text.strip().lower()  # HubSpot keeps e-mail addresses lower-cased
        if not _EMAIL.match(email):
            raise InvalidValue("INVALID_EMAIL", f"Email address {text} is invalid")
        return email
    return text


def sort_key(prop: PropertyDef | None, value: str) -> tuple[int, Any]:
    """A key that orders stored values the way HubSpot's search sorts them (empty values last)."""
    if value == "":
        return (1, "")
    if prop is not None and prop.type == "number":
        try:
            return (0, Decimal(value))
        except InvalidOperation:
            return (0, Decimal(0))
    if prop is not None and prop.type in ("date", "datetime"):
        return (0, to_epoch_ms(value) or 0)
    return (0, value.lower())


def comparable(prop: PropertyDef | None, value: str) -> Any:
    """A filter operand in the same domain as sort_key's second element; InvalidValue when it cannot be."""
    if prop is not None and prop.type == "number":
        try:
            return Decimal(value)
        except InvalidOperation:
            raise InvalidValue("INVALID_FLOAT", f"{value} was not a valid number.") from None
    if prop is not None and prop.type in ("date", "datetime"):
        ms = to_epoch_ms(value)
        if ms is None:
            raise InvalidValue("INVALID_DATETIME", f"{value} was not a valid date-time.")
        return ms
    return value.lower()


def tokens(value: str) -> list[str]:
    """The words of a value, as CONTAINS_TOKEN and free-text query see them."""
    return [t for t in re.split(r"[^0-9a-z@._-]+|[@.]", value.lower()) if t] + [value.lower()]
