"""Base snapshots as JSON: canonical values tagged with their types so they compare equal, round-tripped."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from syncd.mapping.values import CanonicalScalar, CanonicalValue


def encode_value(value: CanonicalValue) -> Any:
    """A JSON-safe form of a canonical value (Decimal, date and datetime tagged, line lists as lists)."""
    if isinstance(value, tuple):
        return [{k: encode_value(v) for k, v in entry.items()} for entry in value]
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, Decimal):
        return {"$dec": str(value)}
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    raise TypeError(f"cannot store a {type(value).__name__} in a base snapshot")


def _decode_scalar(raw: Any) -> CanonicalScalar:
    if isinstance(raw, dict):
        if "$dec" in raw:
            return Decimal(raw["$dec"])
        if "$dt" in raw:
            return datetime.fromisoformat(raw["$dt"])
        if "$date" in raw:
            return date.fromisoformat(raw["$date"])
        raise ValueError(f"unknown tagged value in base snapshot: {raw!r}")
    if raw is None or isinstance(raw, bool | int | str):
        return raw
    raise ValueError(f"unexpected value in base snapshot: {raw!r}")


def decode_value(raw: Any) -> CanonicalValue:
    """The canonical value `encode_value` stored."""
    if isinstance(raw, list):
        return tuple({k: _decode_scalar(v) for k, v in entry.items()} for entry in raw)
    return _decode_scalar(raw)


def encode_base(values: Mapping[str, CanonicalValue]) -> dict[str, Any]:
    """A whole base snapshot as JSON."""
    return {name: encode_value(value) for name, value in values.items()}


def decode_base(raw: Mapping[str, Any]) -> dict[str, CanonicalValue]:
    """A whole base snapshot from JSON."""
    return {name: decode_value(value) for name, value in raw.items()}
