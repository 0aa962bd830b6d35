"""SOQL for the sandbox: tokenizer, parser and evaluator of the subset a sync connector uses.

Supported: ``SELECT f1, Parent.f2 | COUNT() FROM Obj [WHERE cond] [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], ...]
[LIMIT n] [OFFSET n]`` with ``= != <> < <= > >= IN NOT IN LIKE``, ``AND OR NOT`` and parentheses (mixing AND and
OR without parentheses is rejected, as Salesforce does), null, true/false, numbers, date and date-time literals
and quoted strings with Salesforce's escapes. Parent fields one relationship up (``Product2.Name``) may be selected,
and come back as a nested record. Anything else is a ``MALFORMED_QUERY``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from syncd.sandbox.salesforce.ids import normalize_id
from syncd.sandbox.salesforce.responses import record_url
from syncd.sandbox.salesforce.schema import ID_TYPES, NUMBER_TYPES, STRING_TYPES, FieldSpec, ObjectSpec, object_spec

MAX_OFFSET = 2000


class SoqlError(Exception):
    """A query Salesforce would refuse, with the errorCode it would answer."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message


# ------------------------------------------------------------------------------------------ tokenizer

TokenKind = Literal["ident", "string", "number", "date", "datetime", "op", "punct", "eof"]


@dataclass(frozen=True)
class StringValue:
    """A decoded string literal; `escaped` marks characters written with a backslash (literal in LIKE)."""

    chars: tuple[tuple[str, bool], ...]

    @property
    def text(self) -> str:
        """The value compared by = and IN; \\% and \\_ keep their backslash outside LIKE, as in Salesforce."""
        return "".join("\\" + c if escaped and c in "%_" else c for c, escaped in self.chars)

    def like_regex(self) -> re.Pattern[str]:
        """The LIKE pattern: unescaped % is any run of characters, unescaped _ exactly one."""
        parts = []
        for char, escaped in self.chars:
            if not escaped and char == "%":
                parts.append(".*")
            elif not escaped and char == "_":
                parts.append(".")
            else:
                parts.append(re.escape(char))
        return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Token:
    """One lexical token with its 1-based column for error messages."""

    kind: TokenKind
    text: str
    column: int
    value: Any = None

    def is_keyword(self, *words: str) -> bool:
        """True when this is an identifier spelling one of the given keywords (any case)."""
        return self.kind == "ident" and self.text.upper() in words


_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}
_DATETIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,3})?(Z|[+-]\d{2}:?\d{2})(?![\w.:-])")
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?![\w.:-])")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)(?![\w.])")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_OPS = ("!=", "<>", "<=", ">=", "=", "<", ">")


def _malformed(query: str, column: int, what: str) -> SoqlError:
    return SoqlError("MALFORMED_QUERY", f"\n{query}\nERROR at Row:1:Column:{column}\n{what}")


def tokenize(query: str) -> list[Token]:
    """Split a SOQL text into tokens; MALFORMED_QUERY on anything Salesforce would not lex."""
    tokens: list[Token] = []
    pos = 0
    length = len(query)
    while pos < length:
        char = query[pos]
        column = pos + 1
        if char.isspace():
            pos += 1
            continue
        if char == "'":
            value, pos = _read_string(query, pos)
            tokens.append(Token("string", query[column - 1 : pos], column, value))
            continue
        match = _DATETIME.match(query, pos)
        if match:
            tokens.append(Token("datetime", match.group(0), column, _datetime_value(query, column, match)))
            pos = match.end()
            continue
        match = _DATE.match(query, pos)
        if match:
            tokens.append(Token("date", match.group(0), column, _date_value(query, column, match)))
            pos = match.end()
            continue
        match = _NUMBER.match(query, pos)
        if match:
            tokens.append(Token("number", match.group(0), column, Decimal(match.group(0))))
            pos = match.end()
            continue
        match = _IDENT.match(query, pos)
        if match:
            tokens.append(Token("ident", match.group(0), column))
            pos = match.end()
            continue
        op = next((o for o in _OPS if query.startswith(o, pos)), None)
        if op is not None:
            tokens.append(Token("op", op, column))
            pos += len(op)
            continue
        if char in "(),":
            tokens.append(Token("punct", char, column))
            pos += 1
            continue
        raise _malformed(query, column, f"unexpected token: '{char}'")
    tokens.append(Token("eof", "<EOF>", length + 1))
    return tokens


def _read_string(query: str, start: int) -> tuple[StringValue, int]:
    chars: list[tuple[str, bool]] = []
    pos = start + 1
    while pos < len(query):
        char = query[pos]
        if char == "'":
            return StringValue(tuple(chars)), pos + 1
        if char == "\\":
            if pos + 1 >= len(query):
                break
            nxt = query[pos + 1]
            if nxt in _ESCAPES:
                chars.append((_ESCAPES[nxt], True))
            elif nxt in "%_":
                chars.append((nxt, True))
            else:
                raise _malformed(query, pos + 1, f"Invalid string literal: illegal escape sequence '\\{nxt}'")
            pos += 2
            continue
        chars.append((char, False))
        pos += 1
    raise _malformed(query, start + 1, "unexpected token: unterminated string literal")


def _date_value(query: str, column: int, match: re.Match[str]) -> dt.date:
    try:
        return dt.date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        raise _malformed(query, column, f"invalid date: {match.group(0)}") from None


def _datetime_value(query: str, column: int, match: re.Match[str]) -> dt.datetime:
    text = match.group(0)
    zone = match.group(8)
    try:
        tz = dt.UTC
        if zone != "Z":
            sign = 1 if zone[0] == "+" else -1
            digits = zone[1:].replace(":", "")
            tz = dt.timezone(sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
        fraction = match.group(7)
        micro = int((fraction[1:] + "000000")[:6]) if fraction else 0
        return dt.datetime(
            int(match.group(1)),
            int(match.group(2)),
            int(match.group(3)),
            int(match.group(4)),
            int(match.group(5)),
            int(match.group(6)),
            micro,
            tzinfo=tz,
        )
    except ValueError:
        raise _malformed(query, column, f"invalid dateTime: {text}") from None


# --------------------------------------------------------------------------------------------- syntax


@dataclass(frozen=True)
class Literal_:
    """A literal value in a condition, as written."""

    token: Token


@dataclass(frozen=True)
class Comparison:
    """`field op value`, `field [NOT] IN (values)` or `field LIKE 'pattern'`."""

    field: str
    column: int
    op: str  # = != < <= > >= IN NOT IN LIKE
    values: tuple[Token, ...]


@dataclass(frozen=True)
class Not:
    """NOT cond."""

    operand: Condition


@dataclass(frozen=True)
class Junction:
    """cond AND cond ... or cond OR cond ..."""

    kind: Literal["AND", "OR"]
    operands: tuple[Condition, ...]


Condition = Comparison | Not | Junction


@dataclass(frozen=True)
class OrderItem:
    """One ORDER BY key."""

    field: str
    descending: bool
    nulls_last: bool


@dataclass(frozen=True)
class SoqlQuery:
    """A parsed query, not yet checked against the schema."""

    text: str
    fields: tuple[str, ...]  # empty for COUNT()
    count_only: bool
    sobject: str
    where: Condition | None
    order_by: tuple[OrderItem, ...]
    limit: int | None
    offset: int | None


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.pos = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.pos]

    def at_end(self) -> bool:
        return self.tokens[self.pos].kind == "eof"

    def advance(self) -> Token:
        token = self.tokens[self.pos]
        if token.kind != "eof":
            self.pos += 1
        return token

    def unexpected(self, token: Token | None = None) -> SoqlError:
        token = token or self.current
        return _malformed(self.text, token.column, f"unexpected token: {token.text}")

    def expect_keyword(self, word: str) -> Token:
        if not self.current.is_keyword(word):
            raise self.unexpected()
        return self.advance()

    def expect_punct(self, char: str) -> Token:
        if not (self.current.kind == "punct" and self.current.text == char):
            raise self.unexpected()
        return self.advance()

    def parse(self) -> SoqlQuery:
        self.expect_keyword("SELECT")
        fields, count_only = self.select_list()
        self.expect_keyword("FROM")
        if self.current.kind != "ident":
            raise self.unexpected()
        sobject = self.advance().text
        where = None
        if self.current.is_keyword("WHERE"):
            self.advance()
            where = self.condition()
        order_by: tuple[OrderItem, ...] = ()
        if self.current.is_keyword("ORDER"):
            self.advance()
            self.expect_keyword("BY")
            order_by = self.order_list()
        limit = self.int_clause("LIMIT")
        offset = self.int_clause("OFFSET")
        if not self.at_end():
            raise self.unexpected()
        if count_only and order_by:
            raise _malformed(self.text, 1, "Ordered field must be grouped or aggregated: COUNT() with ORDER BY")
        return SoqlQuery(self.text, fields, count_only, sobject, where, order_by, limit, offset)

    def select_list(self) -> tuple[tuple[str, ...], bool]:
        if self.current.is_keyword("COUNT"):
            self.advance()
            self.expect_punct("(")
            self.expect_punct(")")
            return (), True
        names: list[str] = []
        while True:
            token = self.current
            if token.kind != "ident" or token.is_keyword("FROM"):
                raise self.unexpected()
            self.advance()
            if self.current.kind == "punct" and self.current.text == "(":
                # Aggregate and other functions (FIELDS(), MAX(), ...) are outside what the sandbox serves.
                raise self.unexpected(self.current)
            names.append(token.text)
            if self.current.kind == "punct" and self.current.text == ",":
                self.advance()
                continue
            return tuple(names), False

    def condition(self) -> Condition:
        first = self.unary()
        if self.current.is_keyword("AND", "OR"):
            kind: Literal["AND", "OR"] = "AND" if self.current.is_keyword("AND") else "OR"
            operands = [first]
            while self.current.is_keyword(kind):
                self.advance()
                operands.append(self.unary())
            if self.current.is_keyword("AND", "OR"):
                # Salesforce refuses a mix of AND and OR without parentheses.
                raise self.unexpected()
            return Junction(kind, tuple(operands))
        return first

    def unary(self) -> Condition:
        if self.current.is_keyword("NOT"):
            self.advance()
            return Not(self.unary())
        if self.current.kind == "punct" and self.current.text == "(":
            self.advance()
            inner = self.condition()
            self.expect_punct(")")
            return inner
        return self.comparison()

    def comparison(self) -> Comparison:
        token = self.current
        if token.kind != "ident" or token.is_keyword("AND", "OR", "NOT", "IN", "LIKE"):
            raise self.unexpected()
        self.advance()
        field, column = token.text, token.column
        op_token = self.current
        if op_token.kind == "op":
            self.advance()
            op = "!=" if op_token.text == "<>" else op_token.text
            return Comparison(field, column, op, (self.value(),))
        if op_token.is_keyword("LIKE"):
            self.advance()
            value = self.value()
            if value.kind != "string":
                raise self.unexpected(value)
            return Comparison(field, column, "LIKE", (value,))
        negated = False
        if op_token.is_keyword("NOT"):
            self.advance()
            negated = True
        if self.current.is_keyword("IN"):
            self.advance()
            self.expect_punct("(")
            if self.current.is_keyword("SELECT"):
                raise self.unexpected()  # semi-joins are not simulated
            values = [self.value()]
            while self.current.kind == "punct" and self.current.text == ",":
                self.advance()
                values.append(self.value())
            self.expect_punct(")")
            return Comparison(field, column, "NOT IN" if negated else "IN", tuple(values))
        raise self.unexpected()

    def value(self) -> Token:
        token = self.current
        if token.kind in ("string", "number", "date", "datetime") or token.is_keyword("NULL", "TRUE", "FALSE"):
            return self.advance()
        raise self.unexpected()

    def order_list(self) -> tuple[OrderItem, ...]:
        items = []
        while True:
            token = self.current
            if token.kind != "ident" or token.is_keyword("LIMIT", "OFFSET", "ASC", "DESC", "NULLS"):
                raise self.unexpected()
            self.advance()
            descending = False
            if self.current.is_keyword("ASC", "DESC"):
                descending = self.advance().text.upper() == "DESC"
            nulls_last = descending  # Salesforce's default: nulls first ascending, last descending
            if self.current.is_keyword("NULLS"):
                self.advance()
                if not self.current.is_keyword("FIRST", "LAST"):
                    raise self.unexpected()
                nulls_last = self.advance().text.upper() == "LAST"
            items.append(OrderItem(token.text, descending, nulls_last))
            if self.current.kind == "punct" and self.current.text == ",":
                self.advance()
                continue
            return tuple(items)

    def int_clause(self, word: str) -> int | None:
        if not self.current.is_keyword(word):
            return None
        self.advance()
        token = self.current
        if token.kind != "number" or not re.fullmatch(r"\d+", token.text):
            raise self.unexpected()
        self.advance()
        return int(token.text)


def parse(text: str) -> SoqlQuery:
    """Parse a SOQL text; SoqlError(MALFORMED_QUERY) when it is not valid SOQL of the supported subset."""
    return _Parser(text).parse()


# ------------------------------------------------------------------------------------------ evaluator

Record = Mapping[str, Any]
Predicate = Callable[[Record], bool]
# A parent record by object and id (deleted ones too), for relationship fields; None when it is gone.
ParentLookup = Callable[[ObjectSpec, str], Record | None]


def _to_decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def parse_stored_datetime(value: str) -> dt.datetime:
    """Read a stored Salesforce timestamp (`2024-01-01T00:00:00.000+0000`) as an aware datetime."""
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")


def _comparable(field_type: str, value: Any) -> Any:
    """A stored field value in a form that compares as Salesforce compares it."""
    if value is None:
        return None
    if field_type in STRING_TYPES:
        return str(value).casefold()
    if field_type in ID_TYPES:
        return str(value)
    if field_type in NUMBER_TYPES:
        return _to_decimal(value)
    if field_type == "date":
        return dt.date.fromisoformat(str(value))
    if field_type == "datetime":
        return parse_stored_datetime(str(value))
    return value


@dataclass(frozen=True)
class CompiledQuery:
    """A query checked against an object's schema, ready to run over records."""

    spec: ObjectSpec
    fields: tuple[str, ...]  # canonical API names, in SELECT order; parent fields as `Relationship.Field`
    count_only: bool
    predicate: Predicate
    order_by: tuple[tuple[str, str, bool, bool], ...]  # (field, type, descending, nulls_last)
    limit: int | None
    offset: int
    # Relationship name → (the reference field on this object, the parent object), for selected parent fields.
    relations: Mapping[str, tuple[str, ObjectSpec]] = field(default_factory=dict)

    def run(self, records: Iterable[Record]) -> list[Record]:
        """Filter, order and cut the records as the query says."""
        rows = [r for r in records if self.predicate(r)]
        for name, field_type, descending, nulls_last in reversed(self.order_by):
            # Stable sorts applied from the last key to the first give a multi-key order.
            present = [r for r in rows if r.get(name) is not None]
            absent = [r for r in rows if r.get(name) is None]
            present.sort(key=_sort_key(name, field_type), reverse=descending)
            rows = present + absent if nulls_last else absent + present
        rows = rows[self.offset :]
        if self.limit is not None:
            rows = rows[: self.limit]
        return rows

    def project(self, record: Record, parent: ParentLookup | None = None, version: str = "v59.0") -> dict[str, Any]:
        """The selected fields of one record, in SELECT order; parent fields nested under their relationship
        as Salesforce renders them (`{"Product2": {"attributes": {...}, "Name": ...}}`, null without a parent)."""
        out: dict[str, Any] = {}
        parents: dict[str, Record | None] = {}
        for name in self.fields:
            relationship, _, parent_field = name.partition(".")
            if not parent_field:
                out[name] = record.get(name)
                continue
            if relationship not in parents:
                reference, parent_spec = self.relations[relationship]
                parent_id = record.get(reference)
                found = parent(parent_spec, parent_id) if parent is not None and parent_id else None
                parents[relationship] = found
                url = record_url(version, parent_spec.name, found["Id"]) if found is not None else ""
                out[relationship] = None if found is None else {"attributes": {"type": parent_spec.name, "url": url}}
            found = parents[relationship]
            if found is not None:
                out[relationship][parent_field] = found.get(parent_field)
        return out


def _sort_key(name: str, field_type: str) -> Callable[[Record], Any]:
    return lambda record: _comparable(field_type, record.get(name))


def compile_query(query: SoqlQuery) -> CompiledQuery:
    """Check a parsed query against the schema and build its evaluator (INVALID_TYPE, INVALID_FIELD...)."""
    spec = object_spec(query.sobject)
    if spec is None:
        raise SoqlError(
            "INVALID_TYPE",
            f"\n{query.text}\nERROR at Row:1\nsObject type '{query.sobject}' is not supported. If you are "
            "attempting to use a custom object, be sure to append the '__c' after the entity name.",
        )
    names: list[str] = []
    relations: dict[str, tuple[str, ObjectSpec]] = {}
    for name in query.fields:
        # A dotted name is a parent's field (Product2.Name); the record's own fields have no dots.
        canonical = _parent_field(query, spec, name, relations) if "." in name else _field(query, spec, name).name
        if canonical in names:
            raise SoqlError("MALFORMED_QUERY", f"duplicate field selected: {canonical}")
        names.append(canonical)
    predicate: Predicate = _compile_condition(query, spec, query.where) if query.where else (lambda r: True)
    order = tuple(
        (f.name, f.type, item.descending, item.nulls_last)
        for item in query.order_by
        for f in (_field(query, spec, item.field),)
    )
    if query.offset is not None and query.offset > MAX_OFFSET:
        raise SoqlError("NUMBER_OUTSIDE_VALID_RANGE", f"Maximum SOQL offset allowed is {MAX_OFFSET}")
    return CompiledQuery(
        spec, tuple(names), query.count_only, predicate, order, query.limit, query.offset or 0, relations
    )


def _parent_field(
    query: SoqlQuery, spec: ObjectSpec, name: str, relations: dict[str, tuple[str, ObjectSpec]]
) -> str:
    """`Relationship.Field` checked one level up; its canonical spelling, with the relationship noted."""
    relationship, _, rest = name.partition(".")
    reference = next(
        (
            f
            for f in spec.fields
            if f.relationship_name is not None and f.relationship_name.lower() == relationship.lower()
        ),
        None,
    )
    parent_spec = object_spec(reference.reference_to[0]) if reference is not None else None
    if reference is None or parent_spec is None or "." in rest:
        # Relationships to objects the sandbox does not simulate (Owner, CreatedBy) and deeper paths too.
        raise SoqlError(
            "INVALID_FIELD",
            f"\n{query.text}\nERROR at Row:1\nDidn't understand relationship '{relationship}' in field path. If you "
            "are attempting to use a custom relationship, be sure to append the '__r' after the custom "
            "relationship name. Please reference your WSDL or the describe call for the appropriate names.",
        )
    canonical_relationship = reference.relationship_name or relationship
    relations[canonical_relationship] = (reference.name, parent_spec)
    return f"{canonical_relationship}.{_field(query, parent_spec, rest).name}"


def _field(query: SoqlQuery, spec: ObjectSpec, name: str) -> FieldSpec:
    found = spec.field(name)
    if found is None:
        raise SoqlError(
            "INVALID_FIELD",
            f"\n{query.text}\nERROR at Row:1\nNo such column '{name}' on entity '{spec.name}'. If you are "
            "attempting to use a custom field, be sure to append the '__c' after the custom field name. "
            "Please reference your WSDL or the describe call for the appropriate names.",
        )
    return found


def _compile_condition(query: SoqlQuery, spec: ObjectSpec, cond: Condition) -> Predicate:
    if isinstance(cond, Not):
        inner = _compile_condition(query, spec, cond.operand)
        return lambda r: not inner(r)
    if isinstance(cond, Junction):
        parts = [_compile_condition(query, spec, c) for c in cond.operands]
        if cond.kind == "AND":
            return lambda r: all(p(r) for p in parts)
        return lambda r: any(p(r) for p in parts)
    return _compile_comparison(query, spec, cond)


def _compile_comparison(query: SoqlQuery, spec: ObjectSpec, cond: Comparison) -> Predicate:
    field = _field(query, spec, cond.field)
    name, field_type = field.name, field.type
    if cond.op == "LIKE":
        if field_type not in STRING_TYPES:
            raise SoqlError(
                "INVALID_QUERY_FILTER_OPERATOR",
                f"\n{query.text}\nERROR at Row:1:Column:{cond.column}\ninvalid operator on {field_type} "
                f"field: {field.name}",
            )
        regex = cond.values[0].value.like_regex()
        return lambda r: r.get(name) is not None and regex.fullmatch(str(r.get(name))) is not None
    values = [_literal(query, field, cond, token) for token in cond.values]
    if cond.op in ("IN", "NOT IN"):
        wanted = set(values)
        if cond.op == "IN":
            return lambda r: _comparable(field_type, r.get(name)) in wanted
        return lambda r: _comparable(field_type, r.get(name)) not in wanted
    value = values[0]
    if value is None and cond.op not in ("=", "!="):
        raise _malformed(query.text, cond.column, f"invalid operator for null: {cond.op}")
    if field_type == "boolean" and cond.op not in ("=", "!="):
        raise SoqlError(
            "INVALID_QUERY_FILTER_OPERATOR",
            f"\n{query.text}\nERROR at Row:1:Column:{cond.column}\ninvalid operator on boolean field: {name}",
        )
    compare = _COMPARATORS[cond.op]
    return lambda r: compare(_comparable(field_type, r.get(name)), value)


def _ordered(test: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    # Salesforce never matches null with an ordering operator.
    return lambda a, b: a is not None and b is not None and test(a, b)


_COMPARATORS: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": _ordered(lambda a, b: a < b),
    "<=": _ordered(lambda a, b: a <= b),
    ">": _ordered(lambda a, b: a > b),
    ">=": _ordered(lambda a, b: a >= b),
}


def _literal(query: SoqlQuery, field: Any, cond: Comparison, token: Token) -> Any:
    """The literal converted to the field's comparable type; INVALID_FIELD when the types do not fit."""
    field_type: str = field.type
    if token.is_keyword("NULL"):
        return None

    def mismatch(expected: str, quoted: bool) -> SoqlError:
        quoting = "should be enclosed in quotes" if quoted else "should not be enclosed in quotes"
        return SoqlError(
            "INVALID_FIELD",
            f"\n{query.text}\nERROR at Row:1:Column:{token.column}\nvalue of filter criterion for field "
            f"'{field.name}' must be of type {expected} and {quoting}",
        )

    if field_type in STRING_TYPES:
        if token.kind != "string":
            raise mismatch("string", True)
        return token.value.text.casefold()
    if field_type in ID_TYPES:
        if token.kind != "string":
            raise mismatch("id", True)
        normalized = normalize_id(token.value.text)
        if normalized is None:
            if token.value.text == "":
                return None  # Salesforce treats '' like null for id fields
            raise SoqlError(
                "INVALID_QUERY_FILTER_OPERATOR",
                f"\n{query.text}\nERROR at Row:1:Column:{token.column}\ninvalid ID field: {token.value.text}",
            )
        return normalized
    if field_type in NUMBER_TYPES:
        if token.kind != "number":
            raise mismatch("double" if field_type != "int" else "int", False)
        return token.value
    if field_type == "boolean":
        if not token.is_keyword("TRUE", "FALSE"):
            raise mismatch("boolean", False)
        return token.text.upper() == "TRUE"
    if field_type == "date":
        if token.kind != "date":
            raise mismatch("date", False)
        return token.value
    if field_type == "datetime":
        if token.kind != "datetime":
            raise mismatch("dateTime", False)
        return token.value
    raise mismatch(field_type, False)


def run_soql(text: str, records: Callable[[ObjectSpec], Sequence[Record]]) -> tuple[CompiledQuery, list[Record]]:
    """Parse, check and run a query over the records the callback returns for its object."""
    compiled = compile_query(parse(text))
    return compiled, compiled.run(records(compiled.spec))
