"""A SOQL builder: every value is quoted and escaped as Salesforce requires, never concatenated raw."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

# Backslash escapes SOQL defines for string literals (developer.salesforce.com, "Quoted String Escape
# Sequences"). The backslash itself must come first so that escapes added later are not doubled.
_STRING_ESCAPES = (
    ("\\", "\\\\"),
    ("'", "\\'"),
    ('"', '\\"'),
    ("\n", "\\n"),
    ("\r", "\\r"),
    ("\t", "\\t"),
    ("\b", "\\b"),
    ("\f", "\\f"),
)
# Field and object names are identifiers; anything else is refused rather than escaped.
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*")
# Salesforce rejects query URLs much past 16,000 characters; chunk IN lists well below that.
MAX_IN_CLAUSE_CHARS = 8_000

SoqlValue = str | int | Decimal | bool | date | datetime | None


class SoqlValueError(ValueError):
    """A name or value that cannot be put into SOQL safely."""


def identifier(name: str) -> str:
    """A field or object name, checked to be a plain identifier (names are never quoted in SOQL)."""
    if not _IDENTIFIER.fullmatch(name):
        raise SoqlValueError(f"not a SOQL identifier: {name!r}")
    return name


def escape_string(value: str) -> str:
    """The body of a quoted SOQL string (without the quotes): backslash, quotes and control characters."""
    for raw, escaped in _STRING_ESCAPES:
        value = value.replace(raw, escaped)
    return value


def quote(value: SoqlValue) -> str:
    """A SOQL literal for `value`: strings quoted and escaped, dates and timestamps in SOQL form."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        if isinstance(value, Decimal) and not value.is_finite():
            raise SoqlValueError(f"not a finite number: {value}")
        return str(value)
    if isinstance(value, datetime):
        return timestamp_literal(value)
    if isinstance(value, date):
        return value.isoformat()
    return "'" + escape_string(value) + "'"


def quote_like(pattern_text: str, *, prefix: str = "", suffix: str = "") -> str:
    """A LIKE pattern matching `pattern_text` literally: `%` and `_` escaped too, wildcards only from the
    caller's `prefix`/`suffix` (e.g. suffix='%' for starts-with)."""
    if set(prefix + suffix) - {"%", "_"}:
        raise SoqlValueError("LIKE prefix/suffix may hold only the wildcards % and _")
    body = escape_string(pattern_text).replace("%", "\\%").replace("_", "\\_")
    return "'" + prefix + body + suffix + "'"


def timestamp_literal(moment: datetime) -> str:
    """A SOQL dateTime literal in UTC with milliseconds (`2024-01-01T00:00:00.000Z`)."""
    if moment.tzinfo is None:
        raise SoqlValueError("timestamps must be timezone-aware")
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class Select:
    """One SELECT statement; `where` holds conditions built with the functions below (ANDed)."""

    object: str
    fields: Sequence[str]
    where: Sequence[str] = ()
    order_by: Sequence[str] = ()
    limit: int | None = None

    def text(self) -> str:
        """The SOQL text."""
        parts = [f"SELECT {', '.join(identifier(f) for f in self.fields)} FROM {identifier(self.object)}"]
        if self.where:
            conditions = list(self.where)
            # Parenthesised when combined, because SOQL refuses AND and OR mixed without parentheses.
            joined = conditions[0] if len(conditions) == 1 else " AND ".join(f"({c})" for c in conditions)
            parts.append("WHERE " + joined)
        if self.order_by:
            parts.append("ORDER BY " + ", ".join(_order_key(k) for k in self.order_by))
        if self.limit is not None:
            parts.append(f"LIMIT {int(self.limit)}")
        return " ".join(parts)


def _order_key(key: str) -> str:
    name, _, direction = key.partition(" ")
    if direction and direction.upper() not in ("ASC", "DESC"):
        raise SoqlValueError(f"bad ORDER BY direction: {direction!r}")
    return identifier(name) + (f" {direction.upper()}" if direction else "")


def compare(field: str, operator: str, value: SoqlValue) -> str:
    """`Field <op> literal` with the value quoted."""
    if operator not in ("=", "!=", "<", "<=", ">", ">="):
        raise SoqlValueError(f"unsupported operator {operator!r}")
    return f"{identifier(field)} {operator} {quote(value)}"


def like(field: str, pattern_text: str, *, prefix: str = "", suffix: str = "") -> str:
    """`Field LIKE 'pattern'` with the text matched literally (see `quote_like`)."""
    return f"{identifier(field)} LIKE {quote_like(pattern_text, prefix=prefix, suffix=suffix)}"


def is_in(field: str, values: Sequence[SoqlValue]) -> str:
    """`Field IN (literals...)`; an empty list is refused (SOQL has no empty IN)."""
    if not values:
        raise SoqlValueError("IN needs at least one value")
    return f"{identifier(field)} IN ({', '.join(quote(v) for v in values)})"


def chunk_for_in(values: Sequence[SoqlValue], *, max_chars: int = MAX_IN_CLAUSE_CHARS,
                 max_items: int = 200) -> Iterator[list[SoqlValue]]:
    """Split values into lists whose quoted IN clause stays under `max_chars` (URL length limits)."""
    chunk: list[SoqlValue] = []
    size = 0
    for value in values:
        # Percent-encoding in the URL can triple a character; budget for it.
        cost = len(quote(value)) * 3 + 2
        if chunk and (size + cost > max_chars or len(chunk) >= max_items):
            yield chunk
            chunk, size = [], 0
        chunk.append(value)
        size += cost
    if chunk:
        yield chunk
