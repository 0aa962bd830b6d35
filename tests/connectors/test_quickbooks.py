"""QuickBooksConnector on the simulator through python-quickbooks and intuit-oauth: reads by query and CDC, the
idle pass, batched creates under requestid, names taken (6240), stale SyncTokens (5010), void, payments'
applications, token refresh, webhooks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from syncd.connectors.base import Create, Page, Update, WebhookRejected, WebhookRequest
from syncd.connectors.quickbooks import QuickBooksConnector
from syncd.connectors.quickbooks.errors import StaleObjectError
from syncd.connectors.retry import RetryPolicy
from syncd.errors import AuthError, NameTakenError, RateLimitedError, SkippableError
from syncd.sandbox.seeding import SeedCounts, SeedWorld
from tests.connectors.conftest import StoredTokens
from tests.connectors.quickbooks_fixtures import Qbo, qbo

__all__ = ["qbo"]
OVERLAP = timedelta(seconds=5)


async def _pages(qbo: Qbo, obj: str, since: datetime | None) -> list[Page]:
    return [page async for page in qbo.connector.changes(obj, since, OVERLAP)]


def _customer(name: str, email: str) -> dict[str, object]:
    return {"DisplayName": name, "GivenName": name.split()[0], "PrimaryEmailAddr.Address": email}


async def test_a_first_read_is_one_query_per_1000_and_an_idle_pass_is_one_cdc_call_in_all(qbo: Qbo) -> None:
    qbo.sim.seed(SeedWorld.build(7, 30), SeedCounts(contacts=25, invoices=12, payments=5))
    pages = await _pages(qbo, "Customer", None)
    customers = [r for p in pages for r in p.records]
    assert len(customers) == 25 and all(not r.missing for r in customers)
    assert qbo.calls() == {"POST /query": 1}
    invoices = [r for p in await _pages(qbo, "Invoice", None) for r in p.records]
    assert len(invoices) == 12 and invoices[0].fields["Line"] and invoices[0].fields["status"] in (
        "open", "paid", "partially_paid")
    cursor = pages[-1].cursor
    qbo.forget_calls()
    # An idle pass as the engine makes it: deletions, then changes, per object. The first from cursors asks
    # CDC for each object as it comes; from the next on, the first object asks for all: one call in all.
    for expected in (2, 1, 1):
        qbo.forget_calls()
        for obj in ("Customer", "Invoice"):
            assert await qbo.connector.deletions(obj, cursor - OVERLAP) == []
            await _pages(qbo, obj, cursor)
        assert qbo.calls() == {"GET /cdc": expected}


async def test_changes_since_a_cursor_come_from_cdc_with_deletions(qbo: Qbo) -> None:
    books = qbo.sim.books
    buyer = books.create({"DisplayName": "Cdc Person"}, "Customer")
    bill = books.create({"CustomerRef": {"value": buyer["Id"]}, "Line": [
        {"DetailType": "SalesItemLineDetail", "Amount": 10.0, "SalesItemLineDetail": {"UnitPrice": 10, "Qty": 1}}]},
        "Invoice")  # fmt: skip
    since = datetime.now(UTC) - timedelta(minutes=5)
    books.delete({"Id": bill["Id"], "SyncToken": bill["SyncToken"]}, "Invoice")
    deleted = await qbo.connector.deletions("Invoice", since)
    assert [d.id for d in deleted or []] == [bill["Id"]]
    records = [r for p in await _pages(qbo, "Invoice", since + OVERLAP) for r in p.records]
    assert [(r.id, r.deleted) for r in records] == [(bill["Id"], True)]
    assert qbo.calls() == {"GET /cdc": 1}  # the changes() call used what deletions() read


async def test_a_cursor_past_the_30_day_look_back_reads_everything(qbo: Qbo) -> None:
    qbo.sim.books.create({"DisplayName": "Old Friend"}, "Customer")
    assert await qbo.connector.deletions("Customer", datetime.now(UTC) - timedelta(days=40)) is None
    records = [r for p in await _pages(qbo, "Customer", datetime.now(UTC) - timedelta(days=40)) for r in p.records]
    assert [r.fields["DisplayName"] for r in records] == ["Old Friend"]
    assert qbo.calls() == {"POST /query": 1}


async def test_creates_go_in_one_batch_and_a_taken_display_name_is_name_taken(qbo: Qbo) -> None:
    holder = qbo.sim.books.create({"DisplayName": "Jane Doe"}, "Customer")
    items = [Create(f"syncd-ref{n:015d}", _customer(name, f"{n}@Example.com"))
             for n, name in enumerate(["Ann Lee", "JANE DOE", "Bo Chan"])]  # fmt: skip
    outcomes = await qbo.connector.create_many("Customer", items)
    assert [o.ok for o in outcomes] == [True, False, True]
    error = outcomes[1].error
    assert isinstance(error, NameTakenError)
    assert (error.field, error.value, error.holder_id, error.vendor_code) == (
        "DisplayName", "JANE DOE", holder["Id"], "6240")
    assert qbo.calls() == {"POST /batch": 1}
    found = await qbo.connector.find_by_field("Customer", "syncd_ref", ["syncd-ref000000000000002"])
    assert [r.id for r in found["syncd-ref000000000000002"]] == [outcomes[2].id]


async def test_a_create_sent_again_under_its_requestid_makes_no_second_record(qbo: Qbo) -> None:
    item = Create("syncd-0123456789abcdef0123", _customer("Solo Person", "solo@example.com"))
    first = await qbo.connector.create_many("Customer", [item])
    again = await qbo.connector.create_many("Customer", [item])
    assert first[0].id == again[0].id and first[0].ok and again[0].ok
    assert qbo.calls() == {"POST /customer": 2}
    assert len([r for r in qbo.sim.records("Customer") or [] if not r["deleted"]]) == 1


async def test_an_update_planned_from_an_old_read_is_refused_stale_then_goes_through_after_a_read(qbo: Qbo) -> None:
    made = qbo.sim.books.create({"DisplayName": "Edited Twice", "CompanyName": "Before"}, "Customer")
    read = await qbo.connector.get_many("Customer", [made["Id"]])
    assert read[made["Id"]].fields["CompanyName"] == "Before"
    # Someone edits it in QuickBooks after syncd read it.
    qbo.sim.books.update({"Id": made["Id"], "SyncToken": "0", "sparse": True, "CompanyName": "By Hand"}, "Customer")
    outcome = (await qbo.connector.update_many("Customer", [Update(made["Id"], {"CompanyName": "By Syncd"})]))[0]
    assert isinstance(outcome.error, StaleObjectError) and outcome.error.vendor_code == "5010"
    assert qbo.sim.books.get("Customer", made["Id"])["CompanyName"] == "By Hand"  # never overwritten
    await qbo.connector.get_many("Customer", [made["Id"]])
    outcome = (await qbo.connector.update_many("Customer", [Update(made["Id"], {"CompanyName": "By Syncd"})]))[0]
    assert outcome.ok and qbo.sim.books.get("Customer", made["Id"])["CompanyName"] == "By Syncd"


async def test_an_invoice_is_created_open_paid_in_part_and_voided_by_the_action(qbo: Qbo) -> None:
    buyer = qbo.sim.books.create({"DisplayName": "Invoice Buyer"}, "Customer")
    lines = [{"Description": "Consulting", "UnitPrice": Decimal("120.00"), "Qty": Decimal(2)}]
    made = (await qbo.connector.create_many("Invoice", [Create("syncd-inv000000000000001", {
        "CustomerRef": buyer["Id"], "Line": lines, "TxnDate": datetime(2026, 3, 1).date()})]))[0]  # fmt: skip
    assert made.ok and made.id is not None
    invoice = (await qbo.connector.get_many("Invoice", [made.id]))[made.id]
    assert invoice.fields["status"] == "open" and invoice.fields["TotalAmt"] == Decimal("240.00")
    assert invoice.fields["syncd_ref"] == "syncd-inv000000000000001"
    paid = (await qbo.connector.create_many("Payment", [Create("syncd-pay000000000000001", {
        "CustomerRef": buyer["Id"], "TotalAmt": Decimal(100), "Line": [{"Amount": Decimal(100), "invoice_id": made.id}]
    })]))[0]  # fmt: skip
    assert paid.ok
    invoice = (await qbo.connector.get_many("Invoice", [made.id]))[made.id]
    assert invoice.fields["status"] == "partially_paid" and invoice.fields["Balance"] == Decimal("140.00")
    applications = await qbo.connector.get_many("PaymentApplication", [f"{paid.id}:{made.id}"])
    assert applications[f"{paid.id}:{made.id}"].fields["amount_applied"] == Decimal(100)
    second = (await qbo.connector.create_many("Invoice", [Create("syncd-inv000000000000002", {
        "CustomerRef": buyer["Id"], "Line": lines})]))[0]  # fmt: skip
    assert second.id is not None
    await qbo.connector.act("Invoice", second.id, "void")
    voided = (await qbo.connector.get_many("Invoice", [second.id]))[second.id]
    assert voided.fields["status"] == "void" and voided.fields["syncd_ref"] == "syncd-inv000000000000002"


async def test_an_expired_token_is_refreshed_once_and_the_rolled_refresh_token_is_kept(qbo: Qbo) -> None:
    await qbo.connector.get_many("Customer", ["1"])
    qbo.sim.expire_tokens()
    await qbo.connector.get_many("Customer", ["1"])
    assert qbo.connector.tokens.refreshes == 2
    assert qbo.sim.stats.requests["POST /oauth2/v1/tokens/bearer"] == 2
    assert qbo.sim.stats.requests["GET /.well-known/openid_configuration/"] == 1


async def test_email_lookup_ignores_case_and_takes_one_query(qbo: Qbo) -> None:
    one = qbo.sim.books.create({"DisplayName": "Mixed Case", "PrimaryEmailAddr": {"Address": "Mixed@Case.COM"}},
                               "Customer")  # fmt: skip
    found = await qbo.connector.find_by_field("Customer", "PrimaryEmailAddr.Address",
                                              ["mixed@case.com", "nobody@example.com"])  # fmt: skip
    assert [r.id for r in found["mixed@case.com"]] == [one["Id"]] and found["nobody@example.com"] == []
    assert qbo.calls() == {"POST /query": 1}


def test_webhooks_are_verified_by_intuit_signature_and_parsed_to_names(qbo: Qbo) -> None:
    body = json.dumps({"eventNotifications": [{"realmId": qbo.sim.realm_id, "dataChangeEvent": {"entities": [
        {"name": "Invoice", "id": "12", "operation": "Void", "lastUpdated": "2026-01-02T10:00:00.000Z"},
        {"name": "Customer", "id": "3", "operation": "Create", "lastUpdated": "2026-01-02T10:00:01.000Z"}]}},
        {"realmId": "someone-else", "dataChangeEvent": {"entities": [{"name": "Customer", "id": "9"}]}}]}).encode()
    sign = base64.b64encode(hmac.new(qbo.sim.verifier_token.encode(), body, hashlib.sha256).digest()).decode()
    request = WebhookRequest("POST", "https://syncd.example/webhooks/qbo", {"intuit-signature": sign}, body)
    qbo.connector.verify_webhook(request)
    events = qbo.connector.parse_webhook(request)
    assert [(e.object, e.record_id, e.kind) for e in events] == [("Invoice", "12", "updated"),
                                                                 ("Customer", "3", "created")]
    forged = WebhookRequest("POST", request.url, {"intuit-signature": sign}, body + b" ")
    try:
        qbo.connector.verify_webhook(forged)
    except WebhookRejected as exc:
        assert exc.status == 401
    else:
        raise AssertionError("a forged body was accepted")


async def test_the_records_a_webhook_names_are_fetched_in_one_query_per_entity(qbo: Qbo) -> None:
    made = [qbo.sim.books.create({"DisplayName": f"Hook {n}"}, "Customer")["Id"] for n in range(3)]
    qbo.sim.books.update({"Id": made[1], "SyncToken": "0", "sparse": True, "Active": False}, "Customer")
    body = json.dumps({"eventNotifications": [{"realmId": qbo.sim.realm_id, "dataChangeEvent": {"entities": [
        {"name": "Customer", "id": i, "operation": "Update", "lastUpdated": "2026-01-02T10:00:00.000Z"}
        for i in [*made, "999"]]}}]}).encode()  # fmt: skip
    events = qbo.connector.parse_webhook(WebhookRequest("POST", "https://syncd.example/hook", {}, body))
    found = await qbo.connector.get_many("Customer", [e.record_id for e in events])
    assert sorted(found) == sorted(made)  # the inactive one too; the unknown one absent
    assert qbo.calls() == {"POST /query": 1}


async def test_items_are_read_and_written_with_their_unique_name(qbo: Qbo) -> None:
    made = await qbo.connector.create_many("Item", [Create("syncd-item00000000000001", {
        "Name": "Consulting hour", "UnitPrice": Decimal("150"), "Type": "Service"})])  # fmt: skip
    assert made[0].ok
    again = await qbo.connector.create_many("Item", [Create("syncd-item00000000000002", {"Name": "consulting HOUR"})])
    assert isinstance(again[0].error, NameTakenError) and again[0].error.field == "Name"
    records = [r for p in await _pages(qbo, "Item", None) for r in p.records]
    assert {r.fields["Name"] for r in records} == {"Services", "Consulting hour"}


async def test_a_429_is_a_rate_limited_error_asking_for_a_minute_and_pauses_the_limiter(qbo: Qbo) -> None:
    impatient = QuickBooksConnector("qbo2", qbo.connector.settings, policy=RetryPolicy(attempts=2, longest_wait_s=1))
    await impatient.start()
    try:
        await impatient.get_many("Customer", ["1"])  # takes the token
        qbo.sim.apply_limits({"per_second": 1})
        with pytest.raises(RateLimitedError) as refused:
            for _ in range(3):
                await impatient.get_many("Customer", ["1"])
    finally:
        await impatient.close()
    assert refused.value.retry_after == 60.0 and refused.value.vendor_code == "3001"
    assert qbo.sim.stats.rate_limited == 1  # handed up at once, not retried into more 429s


async def test_a_revoked_grant_is_an_auth_error_that_needs_reauthorisation(qbo: Qbo) -> None:
    qbo.sim.revoke_tokens()
    with pytest.raises(AuthError) as refused:
        await qbo.connector.get_many("Customer", ["1"])
    assert refused.value.vendor_code == "invalid_grant" and "syncd auth qbo" in str(refused.value)


async def test_a_round_sees_edits_made_before_it_and_a_write_made_during_it(qbo: Qbo) -> None:
    qbo.sim.seed(SeedWorld.build(3, 10), SeedCounts(contacts=5, invoices=3))
    cursor = [p async for p in qbo.connector.changes("Customer", None, OVERLAP)][-1].cursor
    await _pages(qbo, "Invoice", None)

    async def round_of(*objects: str) -> dict[str, list[str]]:
        seen = {}
        for obj in objects:
            await qbo.connector.deletions(obj, cursor - OVERLAP)
            seen[obj] = [r.id for p in await _pages(qbo, obj, cursor) for r in p.records]
        return seen

    await round_of("Customer", "Invoice")
    await round_of("Customer", "Invoice")
    qbo.forget_calls()
    customer = next(iter(qbo.sim.books.records["Customer"].values()))
    qbo.sim.books.update({"Id": customer["Id"], "SyncToken": customer["SyncToken"], "sparse": True,
                          "CompanyName": "Edited By Hand"}, "Customer")  # fmt: skip
    seen = await round_of("Customer")
    assert customer["Id"] in seen["Customer"]
    invoice_id = next(iter(qbo.sim.books.records["Invoice"]))
    await qbo.connector.get_many("Invoice", [invoice_id])
    [done] = await qbo.connector.update_many("Invoice", [Update(invoice_id, {"DueDate": datetime(2026, 9, 1).date()})])
    assert done.ok
    # The write drops the round's answer: the invoice is read again, with what was just written.
    pages = await _pages(qbo, "Invoice", cursor)
    assert [r.fields["DueDate"] for p in pages for r in p.records if r.id == invoice_id] == [
        datetime(2026, 9, 1).date()]
    assert qbo.calls() == {"GET /cdc": 2, "POST /query": 1, "POST /invoice": 1}


async def test_a_create_refused_for_its_name_goes_through_under_another_name_with_the_same_reference(
    qbo: Qbo,
) -> None:
    qbo.sim.books.create({"DisplayName": "Ann Lee"}, "Customer")
    [refused] = await qbo.connector.create_many("Customer", [Create("syncd-0000000000000000ann1", {
        "DisplayName": "Ann Lee", "PrimaryEmailAddr.Address": "ann@lee.test"})])  # fmt: skip
    assert isinstance(refused.error, NameTakenError)
    # The unique-name rule tries again under an alternative: another body, so another requestid (QBO answers
    # a repeated requestid with its first answer, the refusal).
    [made] = await qbo.connector.create_many("Customer", [Create("syncd-0000000000000000ann1", {
        "DisplayName": "Ann Lee (ann@lee.test)", "PrimaryEmailAddr.Address": "ann@lee.test"})])  # fmt: skip
    assert made.ok, made.error
    [updated] = await qbo.connector.update_many("Customer", [Update(str(made.id), {"DisplayName": "Ann Lee"})])
    assert isinstance(updated.error, NameTakenError)
    [renamed] = await qbo.connector.update_many("Customer", [Update(str(made.id), {"DisplayName": "Ann B. Lee"})])
    assert renamed.ok, renamed.error


async def test_the_rolled_refresh_token_is_stored_at_once_and_the_next_start_uses_it(
    qbo: Qbo, stored_tokens: StoredTokens
) -> None:
    first = QuickBooksConnector("books", qbo.connector.settings, storage=stored_tokens.storage)
    await first.start()
    try:
        await first.get_many("Customer", ["1"])
    finally:
        await first.close()
    rolled = (await stored_tokens.grant("books")).refresh_token
    assert rolled and rolled != qbo.connector.settings.refresh_token.get_secret_value()  # type: ignore[union-attr]
    # A day later the first refresh token is dead; a new process starts from the stored one.
    qbo.sim.tokens.clock = lambda: time.time() + 2 * 86_400
    again = QuickBooksConnector("books", qbo.connector.settings, storage=stored_tokens.storage)
    await again.start()
    try:
        assert await again.get_many("Customer", ["1"]) == {}
    finally:
        await again.close()
    assert (await stored_tokens.grant("books")).refresh_token not in (None, rolled)


async def test_a_city_written_alone_keeps_the_rest_of_the_address(qbo: Qbo) -> None:
    made = qbo.sim.books.create({"DisplayName": "Addressed", "BillAddr": {
        "Line1": "1 Main St", "City": "Austin", "PostalCode": "78701", "Country": "US"}}, "Customer")  # fmt: skip
    await qbo.connector.get_many("Customer", [made["Id"]])
    [done] = await qbo.connector.update_many("Customer", [Update(made["Id"], {"BillAddr.City": "Dallas"})])
    assert done.ok, done.error
    assert qbo.sim.books.get("Customer", made["Id"])["BillAddr"] == {
        "Line1": "1 Main St", "City": "Dallas", "PostalCode": "78701", "Country": "US"}


async def test_a_customer_is_made_inactive_and_active_again_by_the_actions(qbo: Qbo) -> None:
    made = qbo.sim.books.create({"DisplayName": "Leaving Soon"}, "Customer")
    await qbo.connector.act("Customer", made["Id"], "inactive")
    record = (await qbo.connector.get_many("Customer", [made["Id"]]))[made["Id"]]
    assert (record.fields["Active"], record.fields["status"]) == (False, "inactive")
    await qbo.connector.act("Customer", made["Id"], "active")
    assert qbo.sim.books.get("Customer", made["Id"])["Active"] is True
    with pytest.raises(SkippableError):
        await qbo.connector.act("Payment", "1", "inactive")
