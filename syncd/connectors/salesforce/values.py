"""Typing Salesforce values: JSON from the REST API into plain typed values, and back for writes."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from syncd.connectors.base import FieldValue

# describe `type` values by the Python type their values take.
_TEXT_TYPES = frozenset({
    "string", "email", "phone", "textarea", "picklist", "multipicklist", "url", "id", "reference",
    "combobox", "encryptedstring",
})
_DECIMAL_TYPES = frozenset({"currency", "double", "percent"})
_INT_TYPES = frozenset({"int", "long"})
# Compound and binary fields cannot be selected alongside their components in every API; leave them out.
UNSELECTABLE_TYPES = frozenset({"address", "location", "base64", "complexvalue"})


class ValueTypeError(ValueError):
    """A value that does not fit the field's described type."""


def parse_timestamp(text: str) -> datetime:
    """A Salesforce dateTime (`2024-01-01T00:00:00.000+0000` or `...Z`) as an aware UTC datetime."""
    cleaned = text.strip()
    if cleaned.endswith("Z"):
        cleaned = cleaned[:-1] + "+00:00"
    elif len(cleaned) > 5 and cleaned[-5] in "+-" and cleaned[-4:].isdigit():
        cleaned = cleaned[:-2] + ":" + cleaned[-2:]
    moment = datetime.fromisoformat(cleaned)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def to_value(field_type: str, raw: Any) -> FieldValue:
    """One field's JSON value as the connector hands it out (empty text becomes None)."""
    if raw is None:
        return None
    try:
        if field_type in _TEXT_TYPES:
            text = str(raw)
            return text if text != "" else None
        if field_type in _DECIMAL_TYPES:
            return Decimal(str(raw))
        if field_type in _INT_TYPES:
            return int(Decimal(str(raw)))
        if field_type == "boolean":
            if not isinstance(raw, bool):
                raise ValueTypeError(f"not a boolean: {raw!r}")
            return raw
        if field_type == "date":
            return date.fromisoformat(str(raw)[:10])
        if field_type == "datetime":
            return parse_timestamp(str(raw))
    except (InvalidOperation, ValueError) as exc:
        raise ValueTypeError(f"{field_type} value {raw!r} is malformed: {exc}") from exc
    # Types we do not model (time, anyType...) travel as text.
    return str(raw)


def to_fields(raw: Mapping[str, Any], types: Mapping[str, str]) -> dict[str, FieldValue]:
    """A REST record's fields typed by describe; `attributes` and unknown keys are dropped."""
    return {name: to_value(types[name], value) for name, value in raw.items() if name in types}


def to_json(value: FieldValue) -> Any:
    """A field value as the REST API accepts it in a write body."""
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, Decimal):
        # JSON numbers: a float repr round-trips every decimal of 15 significant digits or fewer.
        return int(value) if value == value.to_integral_value() and abs(value) < 2**53 else float(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueTypeError("timestamps must be timezone-aware")
        utc = value.astimezone(UTC)
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    if isinstance(value, date):
        return value.isoformat()
    raise ValueTypeError(f"cannot write a {type(value).__name__} to a Salesforce field")


def to_body(fields: Mapping[str, FieldValue]) -> dict[str, Any]:
    """Write fields as a REST body."""
    return {name: to_json(value) for name, value in fields.items()}
