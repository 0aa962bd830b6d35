"""Record filters: small expressions checked at load time and evaluated with simpleeval, never `eval`."""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import cached_property
from typing import Any

from simpleeval import EvalWithCompoundTypes

from syncd.errors import SyncdError
from syncd.mapping.values import FieldValue, lookup


class FilterError(SyncdError):
    """A filter could not be evaluated on a record (for example comparing text with a number)."""


def _number(value: object) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    try:
        return Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {value!r}") from exc


def _as_date(value: object) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _text(value: object) -> str:
    return "" if value is None else str(value)


#: The only functions a filter may call. Each takes plain values and touches nothing else.
FILTER_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "lower": lambda v: _text(v).lower(),
    "upper": lambda v: _text(v).upper(),
    "trim": lambda v: _text(v).strip(),
    "len": lambda v: 0 if v is None else len(v),
    "number": _number,
    "date": _as_date,
    "startswith": lambda v, prefix: _text(v).startswith(prefix),
    "endswith": lambda v, suffix: _text(v).endswith(suffix),
    "contains": lambda v, part: part in _text(v),
    "is_empty": lambda v: v is None or v == "" or v == [],
}

# Everything else (attributes, subscripts, comprehensions, lambdas, f-strings, walrus...) is refused.
_ALLOWED_NODES: tuple[type[ast.AST], ...] = (
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd,
    ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Mod, ast.Compare, ast.Eq, ast.NotEq,
    ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn, ast.Is, ast.IsNot, ast.Call, ast.Name,
    ast.Load, ast.Constant, ast.Tuple, ast.List, ast.IfExp,
)  # fmt: skip

# A real filter is a line or two. The bounds keep a hostile or mangled one from exhausting memory or the stack
# in the parser, the checks below or the evaluator (all of which recurse), and turn it into a mapping error.
MAX_FILTER_CHARS = 2000
MAX_FILTER_DEPTH = 40


@dataclass(frozen=True)
class FilterExpression:
    """A parsed, checked filter: `names` are the record fields it reads."""

    source: str
    tree: ast.Expression
    names: frozenset[str]

    @cached_property
    def _evaluator(self) -> EvalWithCompoundTypes:
        # Built once per filter, not per record: building one costs more than evaluating most filters.
        evaluator = EvalWithCompoundTypes(functions=dict(FILTER_FUNCTIONS), names={}, allowed_attrs={})
        # Belt and braces: the tree was checked at load time, and the evaluator refuses these nodes too.
        for node_type in (ast.Attribute, ast.Subscript, ast.ListComp, ast.SetComp, ast.DictComp,
                          ast.GeneratorExp, ast.JoinedStr, ast.NamedExpr):  # fmt: skip
            evaluator.nodes.pop(node_type, None)
        return evaluator

    def evaluate(self, fields: Mapping[str, FieldValue]) -> bool:
        """True when the record takes part; raises FilterError if the expression fails on these values."""
        evaluator = self._evaluator
        # Evaluation is synchronous, so one evaluator per filter can take each record's values in turn.
        evaluator.names = {name: lookup(fields, name) for name in self.names}
        try:
            result = evaluator.eval(self.source, previously_parsed=self.tree.body)
        except Exception as exc:  # simpleeval and the operands raise many types; all mean "cannot evaluate"
            raise FilterError(f"filter {self.source!r} failed: {exc}") from exc
        return bool(result)


def parse_filter(source: str, known_fields: frozenset[str] | None = None) -> FilterExpression:
    """Parse and check a filter; raises ValueError naming the first construct or field it does not allow.

    Field names that are not Python identifiers (`billing_address.city`) are read with
    `field("billing_address.city")`; the argument must be a literal so it can be checked here.
    """
    if len(source) > MAX_FILTER_CHARS:
        raise ValueError(f"filter is {len(source)} characters long; at most {MAX_FILTER_CHARS} are allowed")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"filter does not parse: {exc.msg}") from exc
    except (RecursionError, MemoryError):
        raise ValueError(f"filter is nested too deeply (at most {MAX_FILTER_DEPTH} levels)") from None
    depth = _depth(tree)
    if depth > MAX_FILTER_DEPTH:
        raise ValueError(f"filter is nested {depth} levels deep; at most {MAX_FILTER_DEPTH} are allowed")
    names: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise ValueError(f"filter may not use {type(node).__name__} ({ast.unparse(node)[:40]!r})")
        if isinstance(node, ast.Name) and node.id.startswith("_"):
            raise ValueError(f"filter may not name {node.id!r}")
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.keywords:
                raise ValueError("filter may only call functions by name, without keyword arguments")
            if node.func.id == "field":
                if len(node.args) != 1 or not isinstance(node.args[0], ast.Constant) or not isinstance(
                    node.args[0].value, str
                ):
                    raise ValueError('field() takes one literal field name, as in field("billing_address.city")')
                names.add(node.args[0].value)
            elif node.func.id not in FILTER_FUNCTIONS:
                allowed = ", ".join(sorted([*FILTER_FUNCTIONS, "field"]))
                raise ValueError(f"filter may not call {node.func.id!r} (allowed: {allowed})")
        if isinstance(node, ast.Constant) and not isinstance(node.value, str | int | float | bool | type(None)):
            raise ValueError(f"filter may not use the constant {node.value!r}")
    call_names = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id not in call_names:
            names.add(node.id)
    if known_fields is not None:
        unknown = sorted(names - known_fields)
        if unknown:
            raise ValueError(f"filter names unknown field(s) {', '.join(unknown)}")
    # `field("a.b")` becomes a plain name lookup so the evaluator never needs a callable that reads records.
    rewritten = _FieldCallRewriter().visit(tree)
    return FilterExpression(source=source, tree=ast.fix_missing_locations(rewritten), names=frozenset(names))


def _depth(tree: ast.AST) -> int:
    """How deeply the tree nests, found without recursion (the tree may be deeper than the stack allows)."""
    deepest = 0
    stack = [(tree, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in ast.iter_child_nodes(node))
    return deepest


class _FieldCallRewriter(ast.NodeTransformer):
    def visit_Call(self, node: ast.Call) -> ast.AST:
        if isinstance(node.func, ast.Name) and node.func.id == "field":
            arg = node.args[0]
            assert isinstance(arg, ast.Constant)
            return ast.copy_location(ast.Name(id=str(arg.value), ctx=ast.Load()), node)
        self.generic_visit(node)
        return node
