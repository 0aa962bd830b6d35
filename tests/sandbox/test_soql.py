"""The sandbox's SOQL: what matches, in which order, and which queries Salesforce would refuse."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.sandbox.salesforce.ids import mint_id
from syncd.sandbox.salesforce.schema import ObjectSpec
from syncd.sandbox.salesforce.soql import SoqlError, run_soql

CONTACTS: list[dict[str, Any]] = [
    {
        "Id": mint_id("003", 1),
        "FirstName": "Ann",
        "LastName": "O'Brien",
        "Email": "o'brien@x.com",
        "CreatedDate": "2024-01-01T10:00:00.000+0000",
        "IsDeleted": False,
    },
    {
        "Id": mint_id("003", 2),
        "FirstName": "Bob",
        "LastName": "Back",
        "Email": "a\\b@x.com",
        "CreatedDate": "2024-01-02T10:00:00.000+0000",
        "IsDeleted": False,
    },
    {
        "Id": mint_id("003", 3),
        "FirstName": None,
        "LastName": "Percent",
        "Email": "50%_off@x.com",
        "CreatedDate": "2024-01-03T10:00:00.000+0000",
        "IsDeleted": False,
    },
    {
        "Id": mint_id("003", 4),
        "FirstName": "Dee",
        "LastName": "Plain",
        "Email": "50xyoff@x.com",
        "CreatedDate": "2024-01-04T10:00:00.000+0000",
        "IsDeleted": False,
    },
]
OPPORTUNITIES: list[dict[str, Any]] = [
    {"Id": mint_id("006", 1), "Name": "Big", "Amount": 5000.0, "CloseDate": "2024-03-01", "IsWon": True},
    {"Id": mint_id("006", 2), "Name": "Small", "Amount": 10.5, "CloseDate": "2024-02-01", "IsWon": False},
    {"Id": mint_id("006", 3), "Name": "Unpriced", "Amount": None, "CloseDate": "2024-01-01", "IsWon": False},
]


def _records(spec: ObjectSpec) -> list[dict[str, Any]]:
    return {"Contact": CONTACTS, "Opportunity": OPPORTUNITIES}.get(spec.name, [])


def ids(query: str) -> list[str]:
    """The Ids a query returns, in order."""
    _, rows = run_soql(query, _records)
    return [r["Id"] for r in rows]


def error_code(query: str) -> str:
    """The errorCode Salesforce would answer the query with."""
    with pytest.raises(SoqlError) as caught:
        run_soql(query, _records)
    return caught.value.error_code


def soql_quote(value: str) -> str:
    """Quote a value as a careful client must (the escapes Salesforce documents)."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r")
    return "'" + escaped.replace("\t", "\\t").replace("\b", "\\b").replace("\f", "\\f").replace('"', '\\"') + "'"


def test_equality_on_text_ignores_case() -> None:
    assert ids("SELECT Id FROM Contact WHERE LastName = 'PLAIN'") == [mint_id("003", 4)]


def test_escaped_quote_matches_the_apostrophe() -> None:
    assert ids(r"SELECT Id FROM Contact WHERE Email = 'o\'brien@x.com'") == [mint_id("003", 1)]


def test_escaped_backslash_matches_one_backslash() -> None:
    assert ids(r"SELECT Id FROM Contact WHERE Email = 'a\\b@x.com'") == [mint_id("003", 2)]


def test_injection_inside_quotes_stays_a_value() -> None:
    # Unescaped, this value would turn into `Email = 'x' OR Name != ''` and match every contact.
    assert ids(r"SELECT Id FROM Contact WHERE Email = 'x\' OR Name != \''") == []
    assert len(ids("SELECT Id FROM Contact WHERE Email = 'x' OR Name != ''")) == len(CONTACTS)


def test_like_escapes_make_wildcards_literal() -> None:
    assert ids(r"SELECT Id FROM Contact WHERE Email LIKE '50\%\_off@x.com'") == [mint_id("003", 3)]
    # Unescaped, % and _ are wildcards and also match the plain address.
    assert ids("SELECT Id FROM Contact WHERE Email LIKE '50%_off@x.com'") == [mint_id("003", 3), mint_id("003", 4)]


def test_like_is_case_insensitive_with_wildcards() -> None:
    assert ids("SELECT Id FROM Contact WHERE LastName LIKE 'p%' ORDER BY LastName") == [
        mint_id("003", 3),
        mint_id("003", 4),
    ]
    assert ids("SELECT Id FROM Contact WHERE LastName LIKE 'b_ck'") == [mint_id("003", 2)]


def test_like_with_escaped_apostrophe_and_backslash() -> None:
    assert ids(r"SELECT Id FROM Contact WHERE Email LIKE 'o\'brien%'") == [mint_id("003", 1)]
    assert ids(r"SELECT Id FROM Contact WHERE Email LIKE 'a\\b%'") == [mint_id("003", 2)]


def test_and_or_not_with_parentheses() -> None:
    query = "SELECT Id FROM Contact WHERE (LastName = 'Back' OR LastName = 'Plain') AND NOT FirstName = 'Bob'"
    assert ids(query) == [mint_id("003", 4)]


def test_in_and_not_in() -> None:
    assert ids("SELECT Id FROM Contact WHERE LastName IN ('back', 'Plain') ORDER BY LastName") == [
        mint_id("003", 2),
        mint_id("003", 4),
    ]
    assert len(ids("SELECT Id FROM Contact WHERE LastName NOT IN ('Back')")) == 3


def test_null_comparisons() -> None:
    assert ids("SELECT Id FROM Contact WHERE FirstName = null") == [mint_id("003", 3)]
    assert len(ids("SELECT Id FROM Contact WHERE FirstName != null")) == 3
    # An ordering operator never matches a null amount.
    assert ids("SELECT Id FROM Opportunity WHERE Amount < 100") == [mint_id("006", 2)]


def test_numbers_booleans_and_dates() -> None:
    assert ids("SELECT Id FROM Opportunity WHERE Amount >= 10.5 AND IsWon = false") == [mint_id("006", 2)]
    assert ids("SELECT Id FROM Opportunity WHERE CloseDate > 2024-01-15 ORDER BY CloseDate") == [
        mint_id("006", 2),
        mint_id("006", 1),
    ]


def test_datetime_literals_with_zone_or_offset() -> None:
    assert ids("SELECT Id FROM Contact WHERE CreatedDate > 2024-01-03T00:00:00Z") == [
        mint_id("003", 3),
        mint_id("003", 4),
    ]
    # 2024-01-03T12:00:00+02:00 is 10:00 UTC: only the contact created after it.
    assert ids("SELECT Id FROM Contact WHERE CreatedDate > 2024-01-03T12:00:00+02:00") == [mint_id("003", 4)]


def test_order_by_several_keys_and_nulls() -> None:
    assert ids("SELECT Id FROM Opportunity ORDER BY Amount DESC") == [
        mint_id("006", 1),
        mint_id("006", 2),
        mint_id("006", 3),
    ]
    assert ids("SELECT Id FROM Opportunity ORDER BY Amount ASC")[0] == mint_id("006", 3)  # nulls first
    assert ids("SELECT Id FROM Opportunity ORDER BY Amount ASC NULLS LAST")[-1] == mint_id("006", 3)
    assert ids("SELECT Id FROM Opportunity ORDER BY IsWon DESC, Name ASC") == [
        mint_id("006", 1),
        mint_id("006", 2),
        mint_id("006", 3),
    ]


def test_limit_and_offset() -> None:
    assert ids("SELECT Id FROM Contact ORDER BY LastName LIMIT 2 OFFSET 1") == [mint_id("003", 1), mint_id("003", 3)]


def test_id_literal_of_15_characters_matches() -> None:
    assert ids(f"SELECT Id FROM Contact WHERE Id = '{mint_id('003', 2)[:15]}'") == [mint_id("003", 2)]


def test_keywords_and_names_are_case_insensitive_and_fields_come_back_canonical() -> None:
    compiled, rows = run_soql("select id, lastname from contact where lastname = 'back'", _records)
    assert [compiled.project(r) for r in rows] == [{"Id": mint_id("003", 2), "LastName": "Back"}]


PRODUCTS: dict[str, dict[str, Any]] = {mint_id("01t", 1): {"Id": mint_id("01t", 1), "Name": "GenWatt Diesel 200kW"}}
LINES: list[dict[str, Any]] = [
    {"Id": mint_id("00k", 1), "Name": "Big GenWatt Diesel 200kW", "Product2Id": mint_id("01t", 1), "Quantity": 2.0},
    {"Id": mint_id("00k", 2), "Name": "Big Misc", "Product2Id": None, "Quantity": 1.0},
]


def _parent(spec: ObjectSpec, record_id: str) -> dict[str, Any] | None:
    return PRODUCTS.get(record_id) if spec.name == "Product2" else None


def test_parent_fields_come_back_nested_under_their_relationship() -> None:
    compiled, rows = run_soql("select Name, product2.name, Quantity, PRODUCT2.Id from OpportunityLineItem",
                              lambda spec: LINES)  # fmt: skip
    assert compiled.fields == ("Name", "Product2.Name", "Quantity", "Product2.Id")
    url = f"/services/data/v59.0/sobjects/Product2/{mint_id('01t', 1)}"
    assert [compiled.project(r, _parent) for r in rows] == [
        {
            "Name": "Big GenWatt Diesel 200kW",
            "Product2": {"attributes": {"type": "Product2", "url": url}, "Name": "GenWatt Diesel 200kW",
                         "Id": mint_id("01t", 1)},
            "Quantity": 2.0,
        },
        {"Name": "Big Misc", "Product2": None, "Quantity": 1.0},  # no product: the relationship is null
    ]  # fmt: skip


def test_unknown_or_deep_relationships_are_refused() -> None:
    for query in (
        "SELECT Nope.Name FROM OpportunityLineItem",
        "SELECT Product2.Nope FROM OpportunityLineItem",
        "SELECT Owner.Name FROM Contact",  # users are not simulated
        "SELECT Opportunity.Account.Name FROM OpportunityLineItem",
        "SELECT Name FROM OpportunityLineItem WHERE Product2.Name = 'x'",
    ):
        assert error_code(query) == "INVALID_FIELD", query
    assert error_code("SELECT Product2.Name, product2.NAME FROM OpportunityLineItem") == "MALFORMED_QUERY"


def test_count() -> None:
    compiled, rows = run_soql("SELECT COUNT() FROM Contact WHERE FirstName != null", _records)
    assert compiled.count_only and len(rows) == 3


@pytest.mark.parametrize(
    "query",
    [
        "SELECT FROM Contact",
        "SELECT Id Contact",
        "SELECT Id FROM Contact WHERE",
        "SELECT Id FROM Contact WHERE LastName = 'a' AND Email = 'b' OR FirstName = 'c'",
        "SELECT Id FROM Contact WHERE LastName = 'unterminated",
        r"SELECT Id FROM Contact WHERE LastName = 'bad \q escape'",
        'SELECT Id FROM Contact WHERE LastName = "double"',
        "SELECT Id FROM Contact WHERE LastName == 'x'",
        "SELECT Id FROM Contact LIMIT -1",
        "SELECT Id FROM Contact LIMIT 1.5",
        "SELECT Id FROM Contact ORDER BY",
        "SELECT Id FROM Contact WHERE LastName IN ()",
        "SELECT Id FROM Contact WHERE LastName = :bind",
        "SELECT Id FROM Contact WHERE CreatedDate > 2024-01-01T00:00:00",
        "SELECT Id FROM Contact WHERE CreatedDate > 2024-13-01T00:00:00Z",
        "SELECT Id FROM Contact; DELETE FROM Contact",
        "SELECT MAX(Id) FROM Contact",
        "SELECT Id FROM Contact WHERE Id IN (SELECT ContactId FROM Case)",
    ],
)
def test_malformed_queries(query: str) -> None:
    assert error_code(query) == "MALFORMED_QUERY"


def test_unknown_field_and_object() -> None:
    assert error_code("SELECT Id, Nope__c FROM Contact") == "INVALID_FIELD"
    assert error_code("SELECT Id FROM Contact WHERE Nope = 'x'") == "INVALID_FIELD"
    assert error_code("SELECT Id FROM Contact ORDER BY Nope") == "INVALID_FIELD"
    assert error_code("SELECT Id FROM Lead") == "INVALID_TYPE"


def test_literal_of_the_wrong_type_is_refused() -> None:
    assert error_code("SELECT Id FROM Contact WHERE CreatedDate > '2024-01-01T00:00:00Z'") == "INVALID_FIELD"
    assert error_code("SELECT Id FROM Opportunity WHERE Amount = '10'") == "INVALID_FIELD"
    assert error_code("SELECT Id FROM Contact WHERE LastName = 10") == "INVALID_FIELD"
    assert error_code("SELECT Id FROM Opportunity WHERE CloseDate = 2024-01-01T00:00:00Z") == "INVALID_FIELD"
    assert error_code("SELECT Id FROM Contact WHERE Id = 'not-an-id'") == "INVALID_QUERY_FILTER_OPERATOR"
    assert error_code("SELECT Id FROM Opportunity WHERE Amount LIKE '1%'") == "INVALID_QUERY_FILTER_OPERATOR"


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=1, max_size=30))
def test_any_value_quoted_properly_matches_only_itself(value: str) -> None:
    # (The store never holds an empty text: Salesforce saves a blank as null.)
    records = [*CONTACTS, {**CONTACTS[0], "Id": mint_id("003", 99), "Email": value}]
    _, rows = run_soql(
        f"SELECT Id FROM Contact WHERE Email = {soql_quote(value)}",
        lambda spec: records if spec.name == "Contact" else [],
    )
    # Text equality is case-insensitive, so every record equal up to case matches, and nothing else.
    expected = [r["Id"] for r in records if r["Email"].casefold() == value.casefold()]
    assert [r["Id"] for r in rows] == expected
