"""What the scenario tests shared by every accounting system need to know of each one, as its users would:
its objects, how a payment is booked there, and how many calls a batch of creates takes. Everything else the
tests read through the shipped mappings' canonical values, so that one test holds for every system."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from syncd.connectors.base import FieldValue

PaymentFields = Callable[[str, str, Decimal, date, str], dict[str, FieldValue]]


@dataclass(frozen=True)
class Books:
    """One accounting system as the shared scenarios use it."""

    system: str  # its registered name
    customers: str  # its customer object
    invoices: str  # its invoice object
    payments: str  # its payment object
    # (customer id, invoice id, amount, date, reference) → the fields a user books a payment with.
    payment: PaymentFields
    create_batch: int  # records per create call (1: one call each)
    # What an idle pass of the shipped HubSpot mapping costs it, by route as its simulator counts them: one list
    # call per polled object.
    idle_routes: Mapping[str, int]
    # The edit a user makes to a draft invoice before it can take a payment (Xero: approve it, with a due date),
    # None where a draft takes payments as it is.
    approve: Callable[[date], dict[str, FieldValue]] | None = None
    # The last path segments (lower-cased) of the routes customers are created through: the customer object's
    # own by default; a system that batches creates has its batch route too.
    create_routes: tuple[str, ...] = ()

    def create_calls(self, records: int) -> int:
        """Calls that creating `records` records takes."""
        return math.ceil(records / self.create_batch)


def _zoho_payment(customer: str, invoice: str, amount: Decimal, day: date, reference: str) -> dict[str, FieldValue]:
    return {"amount": amount, "date": day, "payment_mode": "banktransfer", "reference_number": reference,
            "customer_id": customer, "invoices": [{"invoice_id": invoice, "amount_applied": amount}]}


def _xero_payment(customer: str, invoice: str, amount: Decimal, day: date, reference: str) -> dict[str, FieldValue]:
    # A Xero payment pays one invoice, into a bank account (090 is the simulator's, as in Xero's demo company).
    return {"Invoice.InvoiceID": invoice, "Account.Code": "090", "Amount": amount, "Date": day, "Reference": reference}


def _qbo_payment(customer: str, invoice: str, amount: Decimal, day: date, reference: str) -> dict[str, FieldValue]:
    return {"CustomerRef": customer, "TotalAmt": amount, "TxnDate": day, "PaymentRefNum": reference,
            "Line": [{"Amount": amount, "invoice_id": invoice}]}


#: Every accounting system the shared scenarios run on, by registered name.
BOOKS: dict[str, Books] = {
    "zohobooks": Books(
        system="zohobooks", customers="contacts", invoices="invoices", payments="customerpayments",
        payment=_zoho_payment, create_batch=1,
        idle_routes={"GET /books/v3/contacts": 1, "GET /books/v3/invoices": 1, "GET /books/v3/customerpayments": 1},
    ),
    "xero": Books(
        system="xero", customers="Contacts", invoices="Invoices", payments="Payments", payment=_xero_payment,
        create_batch=50,
        idle_routes={"GET /api.xro/2.0/Contacts": 1, "GET /api.xro/2.0/Invoices": 1, "GET /api.xro/2.0/Payments": 1},
        approve=lambda day: {"Status": "AUTHORISED", "DueDate": day + timedelta(days=30)},
    ),
    "quickbooks": Books(
        system="quickbooks", customers="Customer", invoices="Invoice", payments="Payment",
        payment=_qbo_payment, create_batch=30, create_routes=("customer", "batch"),
        # One CDC call for every polled object at once (customers, invoices, payments for their applications).
        idle_routes={"GET /v3/company/{realm}/cdc": 1},
    ),
}
