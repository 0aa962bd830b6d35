"""The books of one simulated organisation: records, numbering and the rules that tie payments to invoices."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date
from decimal import Decimal
from typing import TypeVar

from pydantic import BaseModel, Field, PrivateAttr

from syncd.sandbox.zohobooks.customfields import DEFINITIONS
from syncd.sandbox.zohobooks.entities import Contact, Invoice, Item, Payment, PaymentAllocation
from syncd.sandbox.zohobooks.errors import OVER_APPLIED, ZohoError, bad_state, invalid, not_found
from syncd.sandbox.zohobooks.indexes import KeysOf, ModuleIndex, Unique
from syncd.sandbox.zohobooks.money import ZERO

FIRST_ID = 460000000010001
U = TypeVar("U", bound=Unique)


def unique_key(api_name: str, value: str) -> str:
    """The index key of one unique custom field value."""
    return f"{api_name}\x00{value}"


def _unique_values(custom: Mapping[str, str]) -> Iterable[str]:
    return (unique_key(d.api_name, custom[d.api_name]) for d in DEFINITIONS if d.unique and custom.get(d.api_name))


def unique_holders(index: ModuleIndex[U], custom: Mapping[str, str]) -> list[U]:
    """Live records of a module holding any unique custom value of `custom` (for the uniqueness check)."""
    return [record for key in _unique_values(custom) for record in index.find("unique", key)]


def upsert_holders(
    index: ModuleIndex[U], ident: Callable[[U], str]
) -> Callable[[str, str], list[tuple[str, dict[str, str]]]]:
    """What `resolve_upsert` asks for: the live `(id, custom)` of the records holding a unique value."""

    def holders(api_name: str, value: str) -> list[tuple[str, dict[str, str]]]:
        return [(ident(r), r.custom) for r in index.find("unique", unique_key(api_name, value))]

    return holders


CONTACT_KEYS: dict[str, KeysOf[Contact]] = {
    "name": lambda c: (c.contact_name.lower(),),
    "email": lambda c: (p.email.lower() for p in c.contact_persons),
    "unique": lambda c: _unique_values(c.custom),
}
INVOICE_KEYS: dict[str, KeysOf[Invoice]] = {
    "number": lambda i: (i.invoice_number,),
    "customer": lambda i: (i.customer_id,),
    "reference": lambda i: (i.reference_number,),
    "unique": lambda i: _unique_values(i.custom),
    "custom": lambda i: i.custom.values(),
}
PAYMENT_KEYS: dict[str, KeysOf[Payment]] = {
    "customer": lambda p: (p.customer_id,),
    "invoice": lambda p: (a.invoice_id for a in p.allocations),
    "reference": lambda p: (p.reference_number,),
    "unique": lambda p: _unique_values(p.custom),
}


class BooksLedger(BaseModel):
    """All records (deleted ones kept and flagged) and the counters that number new ones."""

    contacts: dict[str, Contact] = Field(default_factory=dict)
    invoices: dict[str, Invoice] = Field(default_factory=dict)
    payments: dict[str, Payment] = Field(default_factory=dict)
    items: dict[str, Item] = Field(default_factory=dict)
    next_id: int = FIRST_ID
    next_invoice_number: int = 1
    next_payment_number: int = 1
    # Derived lookups, rebuilt from the records after a state load or reset (a new ledger starts without them).
    _contact_index: ModuleIndex[Contact] | None = PrivateAttr(default=None)
    _invoice_index: ModuleIndex[Invoice] | None = PrivateAttr(default=None)
    _payment_index: ModuleIndex[Payment] | None = PrivateAttr(default=None)

    @property
    def contact_index(self) -> ModuleIndex[Contact]:
        """Contacts by lower-cased name and e-mail and by unique custom value."""
        if self._contact_index is None:
            self._contact_index = ModuleIndex(self.contacts, CONTACT_KEYS)
        return self._contact_index

    @property
    def invoice_index(self) -> ModuleIndex[Invoice]:
        """Invoices by number, customer, reference number, unique custom value and any custom value."""
        if self._invoice_index is None:
            self._invoice_index = ModuleIndex(self.invoices, INVOICE_KEYS)
        return self._invoice_index

    @property
    def payment_index(self) -> ModuleIndex[Payment]:
        """Payments by customer, invoice applied to, reference number and unique custom value."""
        if self._payment_index is None:
            self._payment_index = ModuleIndex(self.payments, PAYMENT_KEYS)
        return self._payment_index

    def new_id(self) -> str:
        """A fresh record ID: a string of digits like Zoho's."""
        value = self.next_id
        self.next_id += 1
        return str(value)

    def new_invoice_number(self) -> str:
        """The next auto-generated invoice number not already taken (`INV-000001`)."""
        while True:
            number = f"INV-{self.next_invoice_number:06d}"
            self.next_invoice_number += 1
            if not any(i.invoice_number == number for i in self.invoice_index.find("number", number)):
                return number

    def new_payment_number(self) -> str:
        """The next payment number (a string of digits, as Zoho lists it)."""
        value = self.next_payment_number
        self.next_payment_number += 1
        return str(value)

    # --- lookups of live records ---

    def contact(self, contact_id: str) -> Contact:
        """A live contact or 404 `Contact does not exist.`."""
        found = self.contacts.get(contact_id)
        if found is None or found.deleted:
            raise not_found("Contact")
        return found

    def invoice(self, invoice_id: str) -> Invoice:
        """A live invoice or 404 `Invoice does not exist.`."""
        found = self.invoices.get(invoice_id)
        if found is None or found.deleted:
            raise not_found("Invoice")
        return found

    def payment(self, payment_id: str) -> Payment:
        """A live payment or 404 `Payment does not exist.`."""
        found = self.payments.get(payment_id)
        if found is None or found.deleted:
            raise not_found("Payment")
        return found

    def item(self, item_id: str) -> Item:
        """A live item or 404 `Item does not exist.`."""
        found = self.items.get(item_id)
        if found is None or found.deleted:
            raise not_found("Item")
        return found

    def live_contacts(self) -> list[Contact]:
        """Contacts not deleted, in creation order."""
        return [c for c in self.contacts.values() if not c.deleted]

    def live_invoices(self) -> list[Invoice]:
        """Invoices not deleted, in creation order."""
        return [i for i in self.invoices.values() if not i.deleted]

    def live_payments(self) -> list[Payment]:
        """Payments not deleted, in creation order."""
        return [p for p in self.payments.values() if not p.deleted]

    # --- derived amounts ---

    def outstanding_receivable(self, contact_id: str) -> Decimal:
        """What the customer owes: balances of its sent (not draft, not void) invoices."""
        return sum(
            (
                i.balance
                for i in self.invoice_index.find("customer", contact_id)
                if i.customer_id == contact_id and i.base_status == "sent"
            ),
            ZERO,
        )

    def unused_credits(self, contact_id: str) -> Decimal:
        """Customer credit: the unapplied, unrefunded part of its payments."""
        return sum((p.unused_amount for p in self.payments_of_customer(contact_id)), ZERO)

    def invoices_of_customer(self, contact_id: str) -> list[Invoice]:
        """The customer's live invoices, in creation order."""
        return [i for i in self.invoice_index.find("customer", contact_id) if i.customer_id == contact_id]

    def payments_of_customer(self, contact_id: str) -> list[Payment]:
        """The customer's live payments, in creation order."""
        return [p for p in self.payment_index.find("customer", contact_id) if p.customer_id == contact_id]

    def payments_of_invoice(self, invoice_id: str) -> list[tuple[Payment, PaymentAllocation]]:
        """Every live payment allocation made to an invoice."""
        candidates = self.payment_index.find("invoice", invoice_id)
        return [(p, a) for p in candidates for a in p.allocations if a.invoice_id == invoice_id]

    # --- payments applied to invoices ---

    def check_allocations(
        self, customer_id: str, amount: Decimal, wanted: list[tuple[str, Decimal]], replacing: Payment | None
    ) -> None:
        """Refuse allocations that name a foreign/void/unknown invoice or exceed a balance or the payment."""
        if sum((a for _, a in wanted), ZERO) > amount:
            raise ZohoError(400, OVER_APPLIED, "The amount applied to invoices exceeds the payment amount.")
        seen: set[str] = set()
        for invoice_id, applied in wanted:
            if invoice_id in seen:
                raise invalid("invoice_id")
            seen.add(invoice_id)
            invoice = self.invoice(invoice_id)
            if invoice.customer_id != customer_id:
                raise ZohoError(400, OVER_APPLIED, f"Invoice {invoice.invoice_number} is not of this customer.")
            if invoice.base_status == "void":
                raise bad_state(f"Payments cannot be recorded for the void invoice {invoice.invoice_number}.")
            if applied <= ZERO:
                raise invalid("amount_applied")
            # When a payment is updated, its own earlier allocation is given back before checking.
            previous = ZERO
            if replacing is not None:
                previous = sum((a.amount_applied for a in replacing.allocations if a.invoice_id == invoice_id), ZERO)
            if applied > invoice.balance + previous:
                raise ZohoError(
                    400,
                    OVER_APPLIED,
                    f"The amount applied to invoice {invoice.invoice_number} is more than its balance due.",
                )

    def apply(self, payment: Payment, now: float, on_day: date) -> list[Invoice]:
        """Book the payment's allocations on its invoices; returns the invoices touched."""
        touched = []
        for allocation in payment.allocations:
            invoice = self.invoice(allocation.invoice_id)
            invoice.payment_made += allocation.amount_applied
            if invoice.base_status == "draft":
                # Recording a payment makes a draft invoice an open (sent) one, as in Zoho's UI.
                invoice.base_status = "sent"
            invoice.last_payment_date = max(payment.date, invoice.last_payment_date or payment.date)
            invoice.last_modified_time = now
            touched.append(invoice)
        return touched

    def unapply(self, payment: Payment, now: float) -> list[Invoice]:
        """Reverse the payment's allocations (delete, or before re-applying an update)."""
        touched = []
        for allocation in payment.allocations:
            invoice = self.invoices.get(allocation.invoice_id)
            if invoice is None or invoice.deleted:
                continue
            self._take_off(invoice, allocation, now, leaving=payment)
            touched.append(invoice)
        return touched

    def _take_off(
        self, invoice: Invoice, allocation: PaymentAllocation, now: float, *, leaving: Payment | None = None
    ) -> None:
        """Reverse one allocation on its invoice: less paid, and the last payment date that of the payments
        still on it (`leaving` is a payment whose allocations are all being reversed: it no longer counts)."""
        invoice.payment_made -= allocation.amount_applied
        others = [p.date for p, _ in self.payments_of_invoice(invoice.invoice_id) if p is not leaving]
        invoice.last_payment_date = max(others) if others else None
        invoice.last_modified_time = now

    def remove_application(self, invoice_id: str, invoice_payment_id: str, now: float) -> tuple[Payment, Invoice]:
        """Take one application of a payment off an invoice; the amount stays on the payment, unused.

        An unknown invoice is `Invoice does not exist.`; an invoice payment that is not on this invoice (unknown,
        removed already, of a deleted payment or of another invoice) is `Payment does not exist.`.
        """
        invoice = self.invoice(invoice_id)
        found = next(
            ((p, a) for p, a in self.payments_of_invoice(invoice_id) if a.invoice_payment_id == invoice_payment_id),
            None,
        )
        if found is None:
            raise not_found("Payment")
        payment, allocation = found
        payment.allocations = [a for a in payment.allocations if a is not allocation]
        payment.last_modified_time = now
        self._take_off(invoice, allocation, now)
        return payment, invoice


def invoice_status(invoice: Invoice, on_day: date) -> str:
    """The status Zoho shows: draft, void, paid, partially_paid, overdue (sent and past due) or sent."""
    if invoice.base_status in ("draft", "void"):
        return invoice.base_status
    balance = invoice.balance
    if balance <= ZERO:
        return "paid"
    if invoice.payment_made > ZERO and balance > ZERO:
        return "partially_paid"
    if invoice.due_date < on_day and balance > ZERO:
        return "overdue"
    return "sent"
