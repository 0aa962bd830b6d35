"""Xero's `where` filter: `Field=="text"`, `Name.ToLower()=="text"`, `Contact.ContactID==guid("…")`,
`Status!="DELETED"`, `.Contains("x")`, `.StartsWith("x")`, numbers and booleans, joined by AND / OR (AND binds
tighter; no parentheses).

Text compares case-insensitively (unverified: Xero's filters run on its database's collation, which users report
as case-insensitive; clients that need exact matches must check the answer themselves)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

_TERM = re.compile(
    r"""\s*(?P<field>[A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z][A-Za-z0-9]*)*?)(?P<case>\.ToLower\(\)|\.ToUpper\(\))?
        \s*(?:(?P<op>==|!=|>=|<=|>|<)\s*(?P<value>"(?:[^"\\]|\\.)*"|[Gg]uid\("[^"]*"\)|-?\d+(?:\.\d+)?|true|false|null)
          |\.(?P<method>Contains|StartsWith|EndsWith)\("(?P<arg>(?:[^"\\]|\\.)*)"\))\s*""",
    re.VERBOSE,
)
_JOIN = re.compile(r"\s+(AND|OR|&&|\|\|)\s+", re.IGNORECASE)


class WhereError(ValueError):
    """A filter the simulator (and Xero) cannot parse."""


@dataclass(frozen=True)
class Condition:
    """One comparison of a dotted field with a literal."""

    field: str
    op: str
    value: Any

    def holds(self, record: Mapping[str, Any]) -> bool:
        """Whether `record` satisfies this comparison."""
        have = lookup(record, self.field)
        if self.op in ("Contains", "StartsWith", "EndsWith"):
            text, arg = str(have or "").lower(), str(self.value).lower()
            found: dict[str, bool] = {"Contains": arg in text, "StartsWith": text.startswith(arg),
                                       "EndsWith": text.endswith(arg)}
            return found[self.op]
        left, right = _comparable(have), _comparable(self.value)
        if self.op == "==":
            return bool(left == right)
        if self.op == "!=":
            return bool(left != right)
        if left is None or right is None or type(left) is not type(right):
            return False
        compare: dict[str, Callable[[Any, Any], bool]] = {
            ">": lambda a, b: a > b, "<": lambda a, b: a < b, ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b,
        }  # fmt: skip
        return compare[self.op](left, right)


def _comparable(value: Any) -> Any:
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Decimal(str(value))
    return value


def lookup(record: Mapping[str, Any], dotted: str) -> Any:
    """The value at `Contact.ContactID` in a nested record (None when absent)."""
    node: Any = record
    for part in dotted.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def _literal(raw: str) -> Any:
    if raw.startswith('"'):
        return raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if raw.lower().startswith("guid("):
        return raw[6:-2]
    if raw in ("true", "false"):
        return raw == "true"
    if raw == "null":
        return None
    return Decimal(raw)


def parse(text: str) -> list[list[Condition]]:
    """A filter as OR-groups of AND-ed conditions; WhereError when it does not parse."""
    groups: list[list[Condition]] = [[]]
    parts = _JOIN.split(text.strip())
    for index, part in enumerate(parts):
        if index % 2 == 1:
            if part.upper() in ("OR", "||"):
                groups.append([])
            continue
        match = _TERM.fullmatch(part)
        if match is None:
            raise WhereError(f"cannot parse filter term {part!r}")
        if match.group("method"):
            arg = match.group("arg").replace('\\"', '"')
            groups[-1].append(Condition(match.group("field"), match.group("method"), arg))
        else:
            groups[-1].append(Condition(match.group("field"), match.group("op"), _literal(match.group("value"))))
    return groups


def matches(groups: list[list[Condition]], record: Mapping[str, Any]) -> bool:
    """Whether a record passes a parsed filter."""
    return any(all(c.holds(record) for c in group) for group in groups)


def equalities(groups: list[list[Condition]]) -> dict[str, Any]:
    """For a filter of one AND-group, its `field == value` conditions (what an index can answer)."""
    if len(groups) != 1:
        return {}
    return {c.field: c.value for c in groups[0] if c.op == "=="}
