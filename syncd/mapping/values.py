"""Value types that cross the mapping boundary: what connectors hand in and what the engine compares."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol, TypeAlias

#: A single value as a connector delivers it (nested vendor structures already flattened to dotted names).
FieldScalar: TypeAlias = str | int | Decimal | bool | date | datetime | None
#: A record field: a scalar, or a list of sub-records (line items, applied invoices).
FieldValue: TypeAlias = "FieldScalar | list[Mapping[str, FieldValue]]"

#: A normalised scalar; two sides hold "the same" value exactly when their canonical values are equal.
CanonicalScalar: TypeAlias = str | int | Decimal | bool | date | datetime | None
#: A canonical list (line items) is an order-preserving tuple of canonical sub-records.
CanonicalValue: TypeAlias = "CanonicalScalar | tuple[Mapping[str, CanonicalScalar], ...]"


class RecordLike(Protocol):
    """Anything with a `fields` mapping, such as the connectors' `Record`."""

    @property
    def fields(self) -> Mapping[str, FieldValue]: ...


def fields_of(record: RecordLike | Mapping[str, FieldValue]) -> Mapping[str, FieldValue]:
    """Return the field mapping of a record, or the mapping itself when given one."""
    if isinstance(record, Mapping):
        return record
    return record.fields


_MISSING = object()


def lookup(fields: Mapping[str, object], path: str) -> object:
    """Read `path` from flattened fields: the exact key first, else walk dotted segments (`invoices.0.id`).

    Connectors flatten nested objects to dotted keys, but list values (applied invoices) stay lists, so a
    path into them walks mappings by key and lists by integer index. Absent values read as None.
    """
    if path in fields:
        return fields[path]
    head, _, rest = path.partition(".")
    if not rest or head not in fields:
        return None
    current: object = fields[head]
    for segment in rest.split("."):
        if isinstance(current, Mapping):
            current = current.get(segment, _MISSING)
        elif isinstance(current, list | tuple) and segment.isdigit():
            index = int(segment)
            current = current[index] if index < len(current) else _MISSING
        else:
            return None
        if current is _MISSING:
            return None
    return current
