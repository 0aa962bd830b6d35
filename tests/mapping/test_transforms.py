"""Transforms: normalisation makes equal values equal, and invertible ones round-trip exactly."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncd.mapping.transforms import TRANSFORMS, TransformArgumentError, TransformContext, TransformValueError

CTX = TransformContext(currency="USD")


def canonical(name: str, value: object, ctx: TransformContext = CTX, **args: Any) -> object:
    return TRANSFORMS.build(name, args).to_canonical(value, ctx)


def test_money_equal_however_written() -> None:
    values = ["10", "10.00", 10, Decimal("10.0"), 10.0, " 10.004 ", "1,0.00"]
    assert {canonical("money", v) for v in values} == {Decimal("10.00")}
    assert str(canonical("money", "10")) == "10.00"
    assert canonical("money", "0.125") == Decimal("0.13")  # half-up, as invoices round
    assert str(canonical("money", "1500.4", TransformContext(currency="JPY"))) == "1500"
    assert str(canonical("money", "1.5", TransformContext(currency="KWD"))) == "1.500"
    assert str(canonical("money", "7", currency="EUR")) == "7.00"
    assert TRANSFORMS.build("money", {"output": "string"}).to_side(Decimal("10.00")) == "10.00"
    with pytest.raises(TransformValueError):
        canonical("money", "ten dollars")


def test_phone_equal_however_written() -> None:
    written = ["(415) 555-0100", "+1 415 555 0100", "415.555.0100", "+14155550100", " 1-415-555-0100 "]
    assert {canonical("phone", v) for v in written} == {"+14155550100"}
    assert canonical("phone", "020 7946 0958", region="GB") == "+442079460958"
    assert canonical("phone", "ext. unknown") == "ext. unknown"  # kept, never lost
    national = TRANSFORMS.build("phone", {"output": "national"})
    assert not national.invertible
    assert TRANSFORMS.build("phone", {"output": "international"}).to_side("+14155550100") == "+1 415-555-0100"


def test_email_and_text() -> None:
    assert canonical("email", "  Ann.Lee@Example.COM ") == "ann.lee@example.com"
    assert canonical("trim", "  Acme  ") == "Acme"
    assert canonical("trim", "   ") is None
    assert canonical("upper", " usd") == "USD"
    assert canonical("email_domain", "Ann@Example.com") == "example.com"
    assert not TRANSFORMS.build("email_domain", {}).invertible


def test_dates_and_datetimes() -> None:
    # HubSpot gives closedate as midnight UTC, Zoho as a plain date, Salesforce as an ISO date string.
    forms = [date(2024, 3, 1), "2024-03-01", datetime(2024, 3, 1, tzinfo=UTC), "2024-03-01T00:00:00Z"]
    assert {canonical("date", v) for v in forms} == {date(2024, 3, 1)}
    assert canonical("date", "01/03/2024", format="%d/%m/%Y") == date(2024, 3, 1)
    assert TRANSFORMS.build("date", {"format": "%d/%m/%Y"}).to_side(date(2024, 3, 1)) == "01/03/2024"
    instants = [
        "2013-11-18T02:02:51-0800",  # Zoho's offset without a colon
        "2013-11-18T10:02:51Z",
        "2013-11-18T10:02:51.734+00:00",
        datetime(2013, 11, 18, 10, 2, 51),  # naive: read as UTC
        datetime(2013, 11, 18, 11, 2, 51, tzinfo=timezone(timedelta(hours=1))),
        1384768971000,  # epoch milliseconds
    ]
    assert {canonical("datetime", v) for v in instants} == {datetime(2013, 11, 18, 10, 2, 51, tzinfo=UTC)}
    assert canonical("datetime", "2013-11-18T10:02:51.734Z", precision="ms") == datetime(
        2013, 11, 18, 10, 2, 51, 734000, tzinfo=UTC
    )
    with pytest.raises(TransformValueError):
        canonical("date", "not a date")


def test_decimal_and_bool() -> None:
    assert {canonical("decimal", v) for v in ("2", 2, "2.000", Decimal("2.0"))} == {Decimal(2)}
    assert str(canonical("decimal", "2.50")) == "2.5"
    assert str(canonical("decimal", "100")) == "100"
    assert TRANSFORMS.build("decimal", {"output": "int"}).to_side(Decimal(3)) == 3
    assert [canonical("bool", v) for v in (True, "true", "Yes", "0", "off")] == [True, True, True, False, False]


def test_value_map_invertible_only_when_one_to_one() -> None:
    one_to_one = TRANSFORMS.build("value_map", {"map": {"closedwon": "sent", "contractsent": "draft"}})
    assert one_to_one.invertible
    assert one_to_one.to_canonical("closedwon", CTX) == "sent"
    assert one_to_one.to_side("draft") == "contractsent"
    with pytest.raises(TransformValueError):
        one_to_one.to_canonical("appointmentscheduled", CTX)
    many_to_one = TRANSFORMS.build("value_map", {"map": {"closedwon": "sent", "won": "sent"}})
    assert not many_to_one.invertible
    with_default = TRANSFORMS.build("value_map", {"map": {"closedwon": "sent"}, "default": "draft"})
    assert not with_default.invertible
    assert with_default.to_canonical("anything", CTX) == "draft"


@pytest.mark.parametrize(
    ("name", "args", "expected"),
    [
        ("money", {"currency": "dollars"}, "3-letter"),
        ("money", {"places": 2}, "does not take"),
        ("phone", {"region": "Atlantis"}, "region"),
        ("date", {"timezone": "Mars/Olympus"}, "time zone"),
        ("decimal", {"places": -1}, "places"),
        ("value_map", {"map": {}}, "non-empty"),
        ("datetime", {"precision": "ns"}, "precision"),
    ],
)
def test_bad_arguments_are_rejected(name: str, args: dict[str, Any], expected: str) -> None:
    with pytest.raises(TransformArgumentError, match=expected):
        TRANSFORMS.build(name, args)


# --- property: for any value, canonical(to_side(canonical(v))) == canonical(v) ----------------------------
_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)
_money = st.one_of(
    st.decimals(min_value=-10**9, max_value=10**9, allow_nan=False, allow_infinity=False, places=4),
    st.integers(min_value=-10**9, max_value=10**9),
    st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False).map(str),
)
_phones = st.one_of(
    st.from_regex(r"\+?1? ?\(?[2-9]\d{2}\)?[ .-]?[2-9]\d{2}[ .-]?\d{4}", fullmatch=True), _text
)
_instants = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.sampled_from([UTC, None])
)
CASES: list[tuple[str, dict[str, Any], st.SearchStrategy[Any]]] = [
    ("trim", {}, _text),
    ("lower", {}, _text),
    ("upper", {}, _text),
    ("email", {}, _text),
    ("money", {}, _money),
    ("money", {"output": "string", "currency": "JPY"}, _money),
    ("decimal", {}, _money),
    ("decimal", {"places": 2, "output": "string"}, _money),
    ("phone", {}, _phones),
    ("phone", {"output": "international"}, _phones),
    ("date", {}, st.dates()),
    ("date", {"format": "%d/%m/%Y"}, st.dates(min_value=date(1000, 1, 1))),
    ("datetime", {}, _instants),
    ("datetime", {"precision": "ms", "format": "%Y-%m-%dT%H:%M:%S.%f%z"}, _instants),
    ("datetime", {"timezone": "Europe/Berlin"}, _instants),
    ("bool", {"output": "string"}, st.one_of(st.booleans(), st.sampled_from(["yes", "no", "1", "0"]))),
    ("value_map", {"map": {"a": "x", "b": "y", "c": "a"}}, st.sampled_from(["a", "b", "c"])),
]


@pytest.mark.parametrize(("name", "args", "values"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_invertible_transforms_round_trip(name: str, args: dict[str, Any], values: st.SearchStrategy[Any]) -> None:
    transform = TRANSFORMS.build(name, args)
    assert transform.invertible

    @given(values)
    def round_trip(value: Any) -> None:
        first = transform.to_canonical(value, CTX)
        if first is None:
            return
        assert transform.to_canonical(transform.to_side(first), CTX) == first

    round_trip()
