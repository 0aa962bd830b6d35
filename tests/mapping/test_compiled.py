"""The compiled mapper on the shipped files: equal records compare equal across systems; writes invert."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from syncd.mapping.catalog import validate_against_catalog
from syncd.mapping.command import check_live
from syncd.mapping.compiled import CompiledMapping, FieldConversionError
from syncd.mapping.loader import SHIPPED_MAPPINGS_DIR, load_mapping


@pytest.fixture(scope="module")
def hubspot() -> CompiledMapping:
    return load_mapping(SHIPPED_MAPPINGS_DIR / "hubspot-zohobooks.toml")


@pytest.fixture(scope="module")
def salesforce() -> CompiledMapping:
    return load_mapping(SHIPPED_MAPPINGS_DIR / "salesforce-zohobooks.toml")


HS_CONTACT = {"email": " Ann.Lee@Example.com", "firstname": "Ann ", "lastname": "Lee", "phone": "(415) 555-0100",
              "company": "Acme", "city": ""}  # fmt: skip
ZB_CONTACT = {"primary_contact.email": "ann.lee@example.com", "primary_contact.first_name": "Ann",
              "primary_contact.last_name": "Lee", "primary_contact.phone": "+1 415 555 0100",
              "company_name": "Acme ", "billing_address.city": None, "contact_type": "customer"}  # fmt: skip


def test_same_contact_written_differently_compares_equal(hubspot: CompiledMapping) -> None:
    customer = hubspot.objects["customer"]
    assert customer.crm_to_canonical(HS_CONTACT) == customer.acc_to_canonical(ZB_CONTACT)
    assert customer.match_key("crm", HS_CONTACT) == customer.match_key("accounting", ZB_CONTACT)
    assert customer.match_key("crm", {"email": ""}) is None  # never match on a blank


def test_writing_then_reading_back_is_not_a_change(hubspot: CompiledMapping) -> None:
    # This is the echo test: what we write to Zoho reads back as the same canonical values.
    customer = hubspot.objects["customer"]
    canonical = customer.crm_to_canonical(HS_CONTACT)
    written = customer.canonical_to_acc(canonical, creating=True)
    assert written["primary_contact.email"] == "ann.lee@example.com"
    assert written["contact_type"] == "customer"
    assert written["contact_name"] == "Ann Lee"
    assert customer.acc_to_canonical(written) == canonical


def test_invoice_round_trip_with_line_items_and_money(hubspot: CompiledMapping) -> None:
    invoice = hubspot.objects["invoice"]
    deal = {"dealname": "Big deal", "dealstage": "closedwon", "closedate": datetime(2024, 3, 1, tzinfo=UTC),
            "deal_currency_code": "usd", "associations.contact": "501",
            "line_items": [{"name": "Widget", "quantity": "2", "price": "10"},
                           {"name": " Setup ", "quantity": None, "price": "99.5"}]}  # fmt: skip
    assert invoice.accepts_crm(deal)
    assert not invoice.accepts_crm({**deal, "dealstage": "appointmentscheduled"})
    canonical = invoice.crm_to_canonical(deal)
    assert canonical["line_items"] == (
        {"name": "Widget", "quantity": Decimal(2), "rate": Decimal("10.00")},
        {"name": "Setup", "quantity": Decimal(1), "rate": Decimal("99.50")},
    )
    created = invoice.canonical_to_acc(canonical, creating=True)
    assert created["status"] == "sent" and created["date"] == date(2024, 3, 1) and "currency_code" not in created
    assert created["line_items"] == [
        {"name": "Widget", "quantity": Decimal(2), "rate": Decimal("10.00")},
        {"name": "Setup", "quantity": Decimal(1), "rate": Decimal("99.50")},
    ]
    # Once created, create-only fields are not rewritten, and fields flowing the other way never are.
    assert set(invoice.canonical_to_acc(canonical)) == {"line_items", "due_date"}
    zoho = {"line_items": [{"name": "Widget", "quantity": 2, "rate": 10.0, "item_total": 20},
                           {"name": "Setup", "quantity": 1.0, "rate": Decimal("99.5")}],
            "total": 119.5, "balance": "119.50", "payment_made": 0, "status": "Sent",
            "invoice_number": "INV-7"}  # fmt: skip
    acc = invoice.acc_to_canonical(zoho)
    assert acc["line_items"] == canonical["line_items"]
    back = invoice.canonical_to_crm(acc)
    assert back["syncd_invoice_total"] == "119.50" and back["syncd_amount_paid"] == "0.00"
    assert back["syncd_invoice_status"] == "sent" and "line_items" not in back
    assert invoice.references["customer"].side_field("accounting") == "customer_id"


def test_absent_line_items_are_unknown_not_empty(hubspot: CompiledMapping) -> None:
    # Zoho list endpoints omit line items: that must never read as "the invoice has none".
    invoice = hubspot.objects["invoice"]
    assert invoice.acc_to_canonical({"total": 5})["line_items"] is None
    assert invoice.acc_to_canonical({"line_items": []})["line_items"] == ()


def test_bad_record_value_names_the_field(salesforce: CompiledMapping) -> None:
    payment = salesforce.objects["payment"]
    with pytest.raises(FieldConversionError, match=r"payment\.amount \(accounting\)"):
        payment.acc_to_canonical({"amount_applied": "lots"})


def test_salesforce_payment_create_values_and_read_fields(salesforce: CompiledMapping) -> None:
    payment = salesforce.objects["payment"]
    canonical = payment.acc_to_canonical({"amount_applied": 50, "date": "2024-04-02", "reference_number": "CHK-9",
                                          "payment_mode": "check"})  # fmt: skip
    created = payment.canonical_to_crm(canonical, creating=True)
    assert created == {"Reference__c": "CHK-9", "Amount__c": Decimal("50.00"), "Payment_Date__c": date(2024, 4, 2),
                       "Payment_Mode__c": "check", "Name": "Zoho Books payment CHK-9",
                       "Amount_Refunded__c": None}  # fmt: skip
    assert payment.create.may_create_on("crm") and not payment.create.may_create_on("accounting")
    assert "Opportunity__c" in payment.read_fields("crm")


def test_catalog_reports_fields_the_live_system_lacks(salesforce: CompiledMapping) -> None:
    spec = salesforce.spec
    crm = {"Account": {"Name", "BillingCity", "Syncd_Ref__c"},
           "Contact": {"FirstName", "LastName", "Email", "Phone", "MailingCity", "Syncd_Ref__c"},
           "Opportunity": {"Name", "StageName", "CloseDate", "ContactId", "Syncd_Ref__c", "Invoice_Number__c",
                           "Invoice_Status__c", "Invoice_Balance__c", "Amount_Paid__c", "line_items"},
           "Opportunity.line_items": {"Product2.Name", "Quantity", "UnitPrice"}}  # fmt: skip
    acc = {"contacts": {"contact_name", "company_name", "billing_address", "primary_contact", "contact_type",
                        "cf_syncd_ref"},
           "invoices": {"customer_id", "date", "status", "line_items", "invoice_number", "balance", "payment_made",
                        "reference_number"}}  # fmt: skip
    problems = validate_against_catalog(spec, crm, acc)
    messages = {(p.key_path, p.message) for p in problems}
    assert ("objects.invoice.fields.line_items.items.description.crm",
            "salesforce Opportunity items have no field 'Description'") in messages  # fmt: skip
    assert ("objects.payment.crm_object", "salesforce has no object 'Payment__c'") in messages
    assert ("objects.payment.acc_object", "zohobooks has no object 'invoicepayments'") in messages
    assert len(problems) == 3
    assert all(p.line is not None and p.file.endswith("salesforce-zohobooks.toml") for p in problems)


class DictCatalog:
    """A field catalog answering from a fixed table, as a connector's describe call would."""

    def __init__(self, table: dict[str, set[str]]) -> None:
        self.table = table

    async def fields(self, object: str) -> set[str]:
        return self.table.get(object, set())


async def test_live_check_asks_each_system_once_per_object(hubspot: CompiledMapping) -> None:
    crm = DictCatalog({"contacts": {"email", "firstname", "lastname", "phone", "company", "city", "syncd_ref"}})
    acc = DictCatalog({"contacts": {"primary_contact", "company_name", "billing_address", "contact_type",
                                    "cf_syncd_ref"}})  # fmt: skip
    problems = await check_live([hubspot], {"hubspot": crm, "zohobooks": acc})
    paths = {p.key_path for p in problems}
    assert "objects.invoice.fields.date.crm" in paths  # deals has no fields in this catalog
    assert not any(p.startswith("objects.customer") for p in paths)
