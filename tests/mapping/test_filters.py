"""Filters: plain comparisons work; attribute access, dunders, imports and unknown calls are impossible."""

from __future__ import annotations

from datetime import date

import pytest

from syncd.mapping.filters import FilterError, parse_filter


@pytest.mark.parametrize(
    ("expression", "fields", "expected"),
    [
        ('dealstage in ("closedwon",)', {"dealstage": "closedwon"}, True),
        ('dealstage in ("closedwon",)', {"dealstage": "appointmentscheduled"}, False),
        ('StageName == "Closed Won"', {"StageName": "Closed Won"}, True),
        ("amount > 0", {"amount": 5}, True),
        ("number(amount) > 0", {"amount": "0.00"}, False),
        ('field("billing_address.city") == "Oslo"', {"billing_address.city": "Oslo"}, True),
        ("not is_empty(email) and contains(lower(email), '@')", {"email": "A@B.C"}, True),
        ("not is_empty(email)", {}, False),  # absent fields read as None
        ('date(closedate) >= date("2024-01-01")', {"closedate": date(2024, 5, 1)}, True),
    ],
)
def test_filters_evaluate(expression: str, fields: dict[str, object], expected: bool) -> None:
    known = frozenset({"dealstage", "StageName", "amount", "billing_address.city", "email", "closedate"})
    assert parse_filter(expression, known).evaluate(fields) is expected


@pytest.mark.parametrize(
    "expression",
    [
        "email.__class__",
        "email.lower()",
        '__import__("os").system("echo hacked")',
        "open('/etc/passwd')",
        "eval('1')",
        "[x for x in email]",
        "email[0]",
        "(lambda: 1)()",
        "_secret == 1",
        "lower(x=email)",
        'f"{email}"',
    ],
)
def test_unsafe_constructs_are_refused_at_load_time(expression: str) -> None:
    with pytest.raises(ValueError, match="filter"):
        parse_filter(expression, frozenset({"email"}))


def test_unknown_field_and_syntax_errors_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown field"):
        parse_filter("stage == 1", frozenset({"dealstage"}))
    with pytest.raises(ValueError, match="does not parse"):
        parse_filter("amount >", frozenset({"amount"}))


def test_a_filter_that_cannot_be_evaluated_raises_filter_error() -> None:
    expression = parse_filter("amount > 0", frozenset({"amount"}))
    with pytest.raises(FilterError, match="amount > 0"):
        expression.evaluate({"amount": "abc"})
