"""The SOQL builder, value typing and change-feed parsing of the Salesforce connector, without a server."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from syncd.connectors.base import WebhookRejected, WebhookRequest
from syncd.connectors.salesforce import soql
from syncd.connectors.salesforce.cdc import parse_feed, verify_feed
from syncd.connectors.salesforce.values import parse_timestamp, to_json, to_value


@pytest.mark.parametrize(("value", "literal"), [
    ("o'brien@x.com", r"'o\'brien@x.com'"),
    ("a\\b@x.com", r"'a\\b@x.com'"),
    ("50%_off@x.com", "'50%_off@x.com'"),  # % and _ are literal outside LIKE
    ("x' OR Name != '", r"'x\' OR Name != \''"),
    ("line\nbreak\t\"q\"", r"'line\nbreak\t\"q\"'"),
    (None, "null"),
    (True, "true"),
    (Decimal("12.50"), "12.50"),
    (date(2024, 2, 29), "2024-02-29"),
])
def test_values_are_quoted_and_escaped(value: soql.SoqlValue, literal: str) -> None:
    assert soql.quote(value) == literal


def test_like_escapes_wildcards_and_adds_only_the_callers() -> None:
    assert soql.like("Email", "50%_off", suffix="%") == r"Email LIKE '50\%\_off%'"
    with pytest.raises(soql.SoqlValueError):
        soql.quote_like("x", suffix="' OR Id != '")


def test_names_are_checked_not_escaped() -> None:
    with pytest.raises(soql.SoqlValueError):
        soql.identifier("Name) OR (Id")
    with pytest.raises(soql.SoqlValueError):
        soql.Select("Contact", ["Id"], order_by=["Id; DROP"]).text()


def test_select_text_and_timestamps_in_utc() -> None:
    moment = datetime(2024, 1, 2, 5, 4, 5, 123456, tzinfo=timezone(timedelta(hours=2)))
    text = soql.Select("Contact", ["Id", "Email"], [soql.compare("SystemModstamp", ">=", moment),
                                                     soql.is_in("Email", ["a@x.com", "b@x.com"])],
                       ["SystemModstamp", "Id"], limit=10).text()
    assert text == ("SELECT Id, Email FROM Contact WHERE (SystemModstamp >= 2024-01-02T03:04:05.123Z) AND "
                    "(Email IN ('a@x.com', 'b@x.com')) ORDER BY SystemModstamp, Id LIMIT 10")
    with pytest.raises(soql.SoqlValueError):
        soql.quote(datetime(2024, 1, 1))


def test_in_lists_are_chunked_by_length() -> None:
    values = [f"value-{i:04d}-" + "z" * 100 for i in range(100)]
    chunks = list(soql.chunk_for_in(values, max_chars=2000))
    assert [v for c in chunks for v in c] == values
    assert all(len(soql.is_in("F", c)) * 3 <= 2000 for c in chunks)


def test_values_are_typed_by_describe() -> None:
    assert to_value("currency", Decimal("10.5")) == Decimal("10.5")
    assert to_value("int", 3) == 3
    assert to_value("date", "2024-03-01") == date(2024, 3, 1)
    assert to_value("string", "") is None
    assert parse_timestamp("2024-01-01T10:00:00.000+0000") == datetime(2024, 1, 1, 10, tzinfo=UTC)
    assert to_json(Decimal("19.99")) == 19.99 and to_json(Decimal("20.00")) == 20
    assert to_json(datetime(2024, 1, 1, tzinfo=UTC)) == "2024-01-01T00:00:00.000Z"


def _signed(body: bytes, secret: str = "s3cret") -> WebhookRequest:
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return WebhookRequest("POST", "http://127.0.0.1/hooks", {"x-sandbox-signature": signature}, body)


def test_feed_signature_and_events() -> None:
    event = {"ChangeEventHeader": {"entityName": "Contact", "recordIds": ["003A", "003B"], "changeType": "UPDATE",
                                   "commitTimestamp": int(time.time() * 1000), "transactionKey": "t1",
                                   "sequenceNumber": 1, "changeOrigin": "com/salesforce/api/rest/59.0;client=x",
                                   "changedFields": ["Email"]}}
    other = {"ChangeEventHeader": {**event["ChangeEventHeader"], "entityName": "Lead"}}
    body = json.dumps([event, other]).encode()
    verify_feed(_signed(body), "s3cret")
    with pytest.raises(WebhookRejected):
        verify_feed(_signed(body, "other"), "s3cret")
    events = parse_feed(body, ["Contact"])
    assert [(e.record_id, e.kind) for e in events] == [("003A", "updated"), ("003B", "updated")]
    assert events[0].event_id != events[1].event_id
    assert events[0].extra["changed_fields"] == "Email"
    with pytest.raises(WebhookRejected):
        parse_feed(b'[{"ChangeEventHeader": {"entityName": 3}}]', ["Contact"])
