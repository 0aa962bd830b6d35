"""The official xero-python SDK against the Xero simulator; every Accounting API answer checked against the spec."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import pytest
from xero_python.accounting import (
    Account,
    AccountingApi,
    Contact,
    Contacts,
    HistoryRecord,
    HistoryRecords,
    Invoice,
    Invoices,
    Item,
    Items,
    LineItem,
    Payment,
    PaymentDelete,
    Payments,
    Phone,
)
from xero_python.api_client import ApiClient, Configuration
from xero_python.api_client.oauth2 import OAuth2Token, TokenApi
from xero_python.exceptions import AccountingBadRequestException, HTTPStatusException, NotFoundException
from xero_python.identity import IdentityApi

from syncd.sandbox.xero import XeroSimulator
from syncd.sandbox.xero.app import API_PREFIX
from tests.contracts.xero.harness import ContractHarness

T = TypeVar("T")


async def off_loop(call: Callable[[], T]) -> T:
    """Run a blocking SDK call in a thread, so the simulator on this loop can answer it."""
    return await asyncio.to_thread(call)


@pytest.fixture(scope="module")
async def harness() -> AsyncIterator[ContractHarness]:
    """One simulator per module, on a loopback port."""
    running = ContractHarness(XeroSimulator(rng_seed=7))
    await running.server.start_server()
    yield running
    await running.server.close()


@pytest.fixture
async def xero(harness: ContractHarness) -> AsyncIterator[ContractHarness]:
    """A clean organisation with generous limits; after the test every API answer must match the spec."""
    harness.sim.restore_defaults()
    harness.sim.apply_limits({"window_max": 10_000})
    harness.exchanges.clear()
    yield harness
    assert harness.check() > 0


class Session:
    """The SDK as an app uses it: an ApiClient holding the token, the accounting and identity APIs."""

    def __init__(self, harness: ContractHarness) -> None:
        sim = harness.sim
        self.token: dict[str, Any] = {}
        configuration = Configuration()
        # Configuration() copies the first one ever made: the token must be set on the copy.
        configuration.oauth2_token = OAuth2Token(client_id=sim.tokens.client_id, client_secret=sim.tokens.client_secret)
        self.client = ApiClient(configuration, oauth2_token_getter=lambda: self.token,
                                oauth2_token_saver=self.token.update)
        # urllib3 would otherwise retry a 429 after its Retry-After by itself: the test must see every answer.
        self.client.rest_client.pool_manager.connection_pool_kw["retries"] = False
        self.tokens = TokenApi(self.client, sim.tokens.client_id, sim.tokens.client_secret)
        self.tokens.refresh_token_url = harness.base_url + "/connect/token"
        self.accounting = AccountingApi(self.client, base_url=harness.base_url + API_PREFIX)
        self.identity = IdentityApi(self.client, base_url=harness.base_url)
        self.tenant = sim.tenant["tenant_id"]

    def refresh(self, refresh_token: str) -> dict[str, Any]:
        """Refresh through the SDK's token API and keep the new token."""
        answer: dict[str, Any] = self.tokens.refresh_token(refresh_token, ["accounting.transactions"])
        expires_at = time.time() + answer["expires_in"]
        self.token.update({**answer, "scope": answer["scope"].split(), "expires_at": expires_at})
        return answer


@pytest.fixture
async def sdk(xero: ContractHarness) -> Session:
    """An SDK session with a live token."""
    session = Session(xero)
    await off_loop(lambda: session.refresh(xero.sim.tokens.refresh_token))
    return session


async def test_refresh_rotates_and_connections_name_the_tenant(xero: ContractHarness) -> None:
    session = Session(xero)
    first = await off_loop(lambda: session.refresh(xero.sim.tokens.refresh_token))
    assert first["refresh_token"] != xero.sim.tokens.refresh_token and first["expires_in"] == 1800
    second = await off_loop(lambda: session.refresh(first["refresh_token"]))
    assert second["refresh_token"] != first["refresh_token"]
    connections = await off_loop(lambda: session.identity.get_connections())
    assert [c.tenant_id for c in connections] == [xero.sim.tenant["tenant_id"]]
    xero.sim.revoke_tokens()
    with pytest.raises(HTTPStatusException) as refused:
        await off_loop(lambda: session.refresh(second["refresh_token"]))
    assert refused.value.status == 400 and b"invalid_grant" in refused.value.body
    # Something must go through the Accounting API for the contract check.
    xero.sim.tokens.reinstate()
    await off_loop(lambda: session.refresh(xero.sim.tokens.refresh_token))
    await off_loop(lambda: session.accounting.get_contacts(session.tenant, page=1))


async def test_contacts_create_list_delta_and_unique_name(xero: ContractHarness, sdk: Session) -> None:
    api, tenant = sdk.accounting, sdk.tenant
    made = await off_loop(lambda: api.create_contacts(tenant, Contacts(contacts=[
        Contact(name="Ana Lima", email_address="Ana.Lima@Example.com", contact_number="syncd-c-1",
                phones=[Phone(phone_type="DEFAULT", phone_number="555-0100")]),
        Contact(name="Bo Chen", email_address="bo@example.com"),
    ])))  # fmt: skip
    ana, bo = made.contacts
    assert ana.contact_status == "ACTIVE" and ana.updated_date_utc.tzinfo is not None
    listed = await off_loop(lambda: api.get_contacts(tenant, page=1, page_size=1000, order="UpdatedDateUTC ASC"))
    assert sorted(c.name for c in listed.contacts) == ["Ana Lima", "Bo Chen"] and listed.pagination.item_count == 2
    found = await off_loop(lambda: api.get_contacts(tenant, where='EmailAddress=="ana.lima@example.com"', page=1))
    assert [c.contact_id for c in found.contacts] == [ana.contact_id]
    by_number = await off_loop(lambda: api.get_contacts(tenant, where='ContactNumber=="syncd-c-1"', page=1))
    assert [c.contact_id for c in by_number.contacts] == [ana.contact_id]
    since = max(ana.updated_date_utc, bo.updated_date_utc)
    real_clock = xero.sim.clock
    xero.sim.clock = lambda: real_clock() + 5
    try:
        await off_loop(lambda: api.update_contact(tenant, ana.contact_id, Contacts(contacts=[
            Contact(contact_id=ana.contact_id, first_name="Ana")])))  # fmt: skip
        delta = await off_loop(lambda: api.get_contacts(tenant, if_modified_since=since, page=1))
    finally:
        xero.sim.clock = real_clock
    assert [c.name for c in delta.contacts] == ["Ana Lima"]
    # A taken name: per element with summarizeErrors=false, the whole call otherwise.
    mixed = await off_loop(lambda: api.create_contacts(
        tenant, Contacts(contacts=[Contact(name="ana lima"), Contact(name="Cy Diaz")]), summarize_errors=False))
    refused, cy = mixed.contacts
    assert refused.has_validation_errors
    assert "already assigned to another contact" in refused.validation_errors[0].message
    assert cy.contact_id and not cy.has_validation_errors
    with pytest.raises(AccountingBadRequestException) as whole:
        await off_loop(lambda: api.create_contacts(tenant, Contacts(contacts=[Contact(name="Bo Chen")])))
    assert "already assigned" in whole.value.error_data["Elements"][0]["ValidationErrors"][0]["Message"]
    with pytest.raises(NotFoundException):
        await off_loop(lambda: api.get_contact(tenant, "00000000-0000-4000-8000-000000000000"))


async def test_idempotency_key_replays_the_first_answer(xero: ContractHarness, sdk: Session) -> None:
    api, tenant = sdk.accounting, sdk.tenant
    body = Contacts(contacts=[Contact(name="Dee Evans")])
    first = await off_loop(lambda: api.create_contacts(tenant, body, idempotency_key="syncd-ref-1"))
    again = await off_loop(lambda: api.create_contacts(tenant, body, idempotency_key="syncd-ref-1"))
    assert again.contacts[0].contact_id == first.contacts[0].contact_id
    assert len(xero.sim.records("Contacts") or []) == 1


async def test_invoice_lines_status_moves_payments_and_items(xero: ContractHarness, sdk: Session) -> None:
    api, tenant = sdk.accounting, sdk.tenant
    await off_loop(lambda: api.create_items(tenant, Items(items=[Item(code="CONSULT", name="Consulting")])))
    await off_loop(lambda: api.update_or_create_items(tenant, Items(items=[
        Item(code="CONSULT", name="Consulting (hourly)")])))  # fmt: skip
    items = await off_loop(lambda: api.get_items(tenant))
    assert [i.name for i in items.items] == ["Consulting (hourly)"]
    eve = Contacts(contacts=[Contact(name="Eve F")])
    contact = (await off_loop(lambda: api.create_contacts(tenant, eve))).contacts[0]
    invoice = Invoice(type="ACCREC", contact=Contact(contact_id=contact.contact_id), date=date(2026, 3, 2),
                      due_date=date(2026, 4, 1), reference="deal-42", status="DRAFT",
                      line_items=[LineItem(description="Setup", quantity=2, unit_amount=Decimal("150.25"),
                                           account_code="200"),
                                  LineItem(item_code="CONSULT", description="Hours", quantity=1, unit_amount=100)])
    made = (await off_loop(lambda: api.create_invoices(tenant, Invoices(invoices=[invoice]),
                                                       idempotency_key="syncd-inv-1"))).invoices[0]  # fmt: skip
    assert made.status == "DRAFT" and made.total == 400.5 and made.invoice_number == "INV-0001"
    listed = await off_loop(lambda: api.get_invoices(tenant, page=1, where='Reference=="deal-42"'))
    assert [len(i.line_items) for i in listed.invoices] == [2]
    authorised = (await off_loop(lambda: api.update_invoice(tenant, made.invoice_id, Invoices(invoices=[
        Invoice(status="AUTHORISED")])))).invoices[0]  # fmt: skip
    assert authorised.status == "AUTHORISED"
    pay = Payment(invoice=Invoice(invoice_id=made.invoice_id), account=Account(code="090"), amount=100,
                  date=date(2026, 3, 5), reference="wire 1")
    payment = (await off_loop(lambda: api.create_payments(tenant, Payments(payments=[pay])))).payments[0]
    assert payment.status == "AUTHORISED" and payment.invoice.invoice_id == made.invoice_id
    partly = (await off_loop(lambda: api.get_invoice(tenant, made.invoice_id))).invoices[0]
    assert (partly.amount_paid, partly.amount_due, partly.status) == (100, 300.5, "AUTHORISED")
    with pytest.raises(AccountingBadRequestException):  # paid invoices are not voided
        await off_loop(lambda: api.update_invoice(tenant, made.invoice_id, Invoices(invoices=[
            Invoice(status="VOIDED")])))  # fmt: skip
    rest = Payment(invoice=Invoice(invoice_id=made.invoice_id), account=Account(code="090"), amount=Decimal("300.50"))
    await off_loop(lambda: api.create_payments(tenant, Payments(payments=[rest])))
    paid = (await off_loop(lambda: api.get_invoice(tenant, made.invoice_id))).invoices[0]
    assert paid.status == "PAID" and paid.amount_due == 0
    payments = await off_loop(lambda: api.get_payments(tenant, page=1,
                                                       where=f'Invoice.InvoiceID==guid("{made.invoice_id}")'))
    assert sorted(p.amount for p in payments.payments) == [100, 300.5]
    await off_loop(lambda: api.delete_payment(tenant, payment.payment_id, PaymentDelete(status="DELETED")))
    reopened = (await off_loop(lambda: api.get_invoice(tenant, made.invoice_id))).invoices[0]
    assert (reopened.status, reopened.amount_due) == ("AUTHORISED", 100)
    # A draft is deleted, not voided.
    draft = (await off_loop(lambda: api.create_invoices(tenant, Invoices(invoices=[Invoice(
        type="ACCREC", contact=Contact(contact_id=contact.contact_id),
        line_items=[LineItem(description="x", quantity=1, unit_amount=1)])])))).invoices[0]  # fmt: skip
    with pytest.raises(AccountingBadRequestException) as refused:
        await off_loop(lambda: api.update_invoice(tenant, draft.invoice_id, Invoices(invoices=[
            Invoice(status="VOIDED")])))  # fmt: skip
    assert "not of valid status" in str(refused.value.error_data)
    deleted = (await off_loop(lambda: api.update_invoice(tenant, draft.invoice_id, Invoices(invoices=[
        Invoice(status="DELETED")])))).invoices[0]  # fmt: skip
    assert deleted.status == "DELETED"


async def test_limits_and_token_expiry(xero: ContractHarness, sdk: Session) -> None:
    api, tenant = sdk.accounting, sdk.tenant
    xero.sim.apply_limits({"window_max": 2})
    await off_loop(lambda: api.get_contacts(tenant, page=1))
    _data, _status, headers = await off_loop(lambda: api.get_contacts(tenant, page=1, _return_http_data_only=False))
    assert headers["X-MinLimit-Remaining"] == "0" and headers["X-DayLimit-Remaining"] == "4998"
    with pytest.raises(HTTPStatusException) as limited:
        await off_loop(lambda: api.get_contacts(tenant, page=1))
    assert limited.value.status == 429
    assert limited.value.headers["X-Rate-Limit-Problem"] == "minute" and int(limited.value.headers["Retry-After"]) >= 1
    xero.sim.apply_limits({"window_max": 100})
    xero.sim.quota.clear()
    xero.sim.expire_tokens()
    with pytest.raises(HTTPStatusException) as expired:
        await off_loop(lambda: api.get_contacts(tenant, page=1))
    assert expired.value.status == 401 and b"TokenExpired" in expired.value.body
    with pytest.raises(HTTPStatusException) as forbidden:
        await off_loop(lambda: sdk.refresh(sdk.token["refresh_token"]) and api.get_contacts("not-my-tenant"))
    assert forbidden.value.status == 403
    await off_loop(lambda: api.get_contacts(tenant, page=1))


def test_stamps_are_milliseconds_in_utc() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    sim = XeroSimulator(clock=moment.timestamp)
    outcome = sim.books.write_contact({"Name": "Stamp"}, create_only=True)
    assert outcome.record is not None
    assert outcome.record["UpdatedDateUTC"] == int(moment.timestamp() * 1000)
    assert moment + timedelta(0) == moment



async def test_organisation_accounts_and_item_deletion_for_other_clients(xero: ContractHarness, sdk: Session) -> None:
    api, tenant = sdk.accounting, sdk.tenant
    [organisation] = (await off_loop(lambda: api.get_organisations(tenant))).organisations
    assert str(organisation.organisation_id) == tenant and organisation.base_currency.value == "USD"
    accounts = (await off_loop(lambda: api.get_accounts(tenant))).accounts
    banks = [a.code for a in accounts if a.type.value == "BANK"]
    assert banks == ["090", "091"] and all(a.enable_payments_to_account for a in accounts if a.type.value == "BANK")
    made = (await off_loop(lambda: api.create_items(tenant, Items(items=[Item(code="GONE", name="Gone")])))).items[0]
    await off_loop(lambda: api.delete_item(tenant, made.item_id))
    assert (await off_loop(lambda: api.get_items(tenant))).items == []
    with pytest.raises(NotFoundException):
        await off_loop(lambda: api.delete_item(tenant, made.item_id))


async def test_history_and_notes_of_contacts_and_invoices(xero: ContractHarness, sdk: Session) -> None:
    api, tenant = sdk.accounting, sdk.tenant
    hist = Contacts(contacts=[Contact(name="Hist Co")])
    contact = (await off_loop(lambda: api.create_contacts(tenant, hist))).contacts[0]
    await off_loop(lambda: api.update_contact(tenant, contact.contact_id, Contacts(contacts=[Contact(first_name="H")])))
    history = (await off_loop(lambda: api.get_contact_history(tenant, contact.contact_id))).history_records
    assert [h.changes for h in history] == ["Created", "Edited"] and history[0].date_utc.tzinfo is not None
    invoice = (await off_loop(lambda: api.create_invoices(tenant, Invoices(invoices=[Invoice(
        type="ACCREC", contact=Contact(contact_id=contact.contact_id),
        line_items=[LineItem(description="x", quantity=1, unit_amount=1)])])))).invoices[0]  # fmt: skip
    note = HistoryRecords(history_records=[HistoryRecord(details="Called the customer about it")])
    await off_loop(lambda: api.create_invoice_history(tenant, invoice.invoice_id, note))
    notes = (await off_loop(lambda: api.get_invoice_history(tenant, invoice.invoice_id))).history_records
    assert [(h.changes, h.details) for h in notes][-1] == ("Note", "Called the customer about it")


async def test_search_term_and_invoice_list_filters(xero: ContractHarness, sdk: Session) -> None:
    api, tenant = sdk.accounting, sdk.tenant
    people = Contacts(contacts=[Contact(name="Ada Byron", email_address="ada@analytical.test"),
                                Contact(name="Bo Chen", email_address="bo@example.test")])
    ada, bo = (await off_loop(lambda: api.create_contacts(tenant, people))).contacts
    found = await off_loop(lambda: api.get_contacts(tenant, search_term="ANALYTICAL", page=1))
    assert [c.contact_id for c in found.contacts] == [ada.contact_id]
    lines = [LineItem(description="x", quantity=1, unit_amount=10, account_code="200")]
    made = (await off_loop(lambda: api.create_invoices(tenant, Invoices(invoices=[
        Invoice(type="ACCREC", contact=Contact(contact_id=ada.contact_id), line_items=lines, reference="r-ada"),
        Invoice(type="ACCREC", contact=Contact(contact_id=bo.contact_id), line_items=lines, status="AUTHORISED",
                due_date=date(2026, 5, 1))])))).invoices  # fmt: skip
    by_contact = await off_loop(lambda: api.get_invoices(tenant, contact_i_ds=[bo.contact_id], page=1))
    assert [i.invoice_id for i in by_contact.invoices] == [made[1].invoice_id]
    drafts = await off_loop(lambda: api.get_invoices(tenant, statuses=["DRAFT"], page=1))
    assert [i.reference for i in drafts.invoices] == ["r-ada"]
    searched = await off_loop(lambda: api.get_invoices(tenant, search_term="R-ADA", page=1))
    assert [i.invoice_id for i in searched.invoices] == [made[0].invoice_id]
