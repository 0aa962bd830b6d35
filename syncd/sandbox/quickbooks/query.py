"""The QuickBooks Online query language, as far as the simulator serves it.

`SELECT * | COUNT(*) FROM Entity (case-sensitive) [WHERE cond [AND cond]...] [ORDERBY field [ASC|DESC][, ...]]
[STARTPOSITION n] [MAXRESULTS n]`, conditions `field op value` with `= < > <= >= LIKE IN (...)`. As on QBO there
is no OR and no joins; keywords are case-insensitive; strings are single-quoted with `\\'` for a quote inside;
STARTPOSITION counts from 1 and MAXRESULTS is capped at 1000. String comparisons ignore case, as QBO's do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

MAX_RESULTS = 1000

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<op><=|>=|!=|=|<|>|\(|\)|,|\*)"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_.]*))"
)
OPERATORS = ("=", "<", ">", "<=", ">=", "LIKE", "IN")


class QueryError(ValueError):
    """A query QBO would refuse with a QueryParserError (code 4000) or an invalid property (4001)."""

    def __init__(self, message: str, code: str = "4000") -> None:
        self.code = code
        super().__init__(message)


@dataclass(frozen=True)
class Condition:
    """One `field op value(s)` term of a WHERE clause."""

    field: str
    op: str
    values: tuple[Any, ...]


@dataclass
class Query:
    """A parsed SELECT."""

    entity: str
    count: bool = False
    where: list[Condition] = field(default_factory=list)
    order: list[tuple[str, bool]] = field(default_factory=list)  # (field, descending)
    start: int = 1
    max_results: int = MAX_RESULTS


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip().rstrip(";")
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise QueryError(f"Error parsing query: unexpected character at {pos}: {text[pos:pos + 10]!r}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def _literal(kind: str, raw: str) -> Any:
    if kind == "str":
        return re.sub(r"\\(.)", r"\1", raw[1:-1])
    if kind == "num":
        return Decimal(raw)
    if kind == "word" and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise QueryError(f"Error parsing query: expected a value, got {raw!r}")


def parse(text: str) -> Query:
    """Parse one query; `QueryError` for what QBO would refuse."""
    tokens = _tokens(text)
    pos = 0

    def take() -> tuple[str, str]:
        nonlocal pos
        if pos >= len(tokens):
            raise QueryError("Error parsing query: unexpected end of query")
        pos += 1
        return tokens[pos - 1]

    def peek_word() -> str:
        return tokens[pos][1].upper() if pos < len(tokens) and tokens[pos][0] == "word" else ""

    if take()[1].upper() != "SELECT":
        raise QueryError("Error parsing query: a query starts with SELECT")
    count = False
    kind, raw = take()
    if raw.upper() == "COUNT":
        if [take()[1], take()[1], take()[1]] != ["(", "*", ")"]:
            raise QueryError("Error parsing query: expected COUNT(*)")
        count = True
    # Field lists (`*, Sku`, `Id, DisplayName`) are answered with whole records, as QBO answers with more.
    while peek_word() != "FROM":
        take()
    if take()[1].upper() != "FROM":
        raise QueryError("Error parsing query: expected FROM")
    kind, entity = take()
    if kind != "word":
        raise QueryError("Error parsing query: expected an entity after FROM")
    query = Query(entity=entity, count=count)
    while pos < len(tokens):
        keyword = take()[1].upper()
        if keyword in ("WHERE", "AND"):
            kind, name = take()
            if kind != "word":
                raise QueryError(f"Error parsing query: expected a property, got {name!r}")
            op = take()[1].upper()
            if op not in OPERATORS:
                raise QueryError(f"Error parsing query: unsupported operator {op!r}")
            if op == "IN":
                if take()[1] != "(":
                    raise QueryError("Error parsing query: IN takes a list in brackets")
                values = []
                while True:
                    values.append(_literal(*take()))
                    sep = take()[1]
                    if sep == ")":
                        break
                    if sep != ",":
                        raise QueryError("Error parsing query: expected , or ) in an IN list")
                query.where.append(Condition(name, op, tuple(values)))
            else:
                query.where.append(Condition(name, op, (_literal(*take()),)))
        elif keyword == "ORDERBY" or keyword == "ORDER":
            if keyword == "ORDER" and take()[1].upper() != "BY":
                raise QueryError("Error parsing query: expected BY")
            while True:
                name = take()[1]
                descending = False
                if peek_word() in ("ASC", "DESC"):
                    descending = take()[1].upper() == "DESC"
                query.order.append((name, descending))
                if pos < len(tokens) and tokens[pos][1] == ",":
                    take()
                    continue
                break
        elif keyword in ("STARTPOSITION", "MAXRESULTS"):
            kind, raw = take()
            if kind != "num" or not raw.isdigit() or int(raw) < 1:
                raise QueryError(f"Error parsing query: {keyword} takes a positive whole number")
            if keyword == "STARTPOSITION":
                query.start = int(raw)
            else:
                query.max_results = min(int(raw), MAX_RESULTS)
        else:
            raise QueryError(f"Error parsing query: unexpected {keyword!r}")
    return query


def _comparable(value: Any) -> Any:
    """A record value as the query compares it: reference types by their value, e-mail by its address."""
    if isinstance(value, dict):
        for key in ("value", "Address", "FreeFormNumber"):
            if key in value:
                return _comparable(value[key])
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return Decimal(str(value))
    if isinstance(value, str):
        return value.lower()
    return value


def _operand(value: Any, like: Any) -> Any:
    if isinstance(value, str):
        if isinstance(like, Decimal):
            try:
                return Decimal(value)
            except InvalidOperation:
                return value.lower()
        return value.lower()
    if isinstance(value, Decimal) and isinstance(like, str):
        return str(value).lower()
    return value


def lookup(record: dict[str, Any], path: str) -> Any:
    """A dotted property of a record (`MetaData.LastUpdatedTime`), None if absent."""
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def matches(record: dict[str, Any], condition: Condition, key: Any = None) -> bool:
    """Whether a record meets one condition; `key` turns the record's value into a sortable form (times)."""
    raw = lookup(record, condition.field)
    have = key(raw) if key is not None else _comparable(raw)
    if have is None:
        return False
    wanted = [key(v) if key is not None else _operand(v, have) for v in condition.values]
    op = condition.op
    try:
        if op == "=":
            return bool(have == wanted[0])
        if op == "IN":
            return have in wanted
        if op == "LIKE":
            pattern = "^" + ".*".join(re.escape(part) for part in str(wanted[0]).split("%")) + "$"
            return re.match(pattern, str(have), re.DOTALL) is not None
        if op == "<":
            return bool(have < wanted[0])
        if op == ">":
            return bool(have > wanted[0])
        if op == "<=":
            return bool(have <= wanted[0])
        return bool(have >= wanted[0])
    except TypeError:
        return False
