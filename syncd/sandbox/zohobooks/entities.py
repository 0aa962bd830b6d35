"""The records a simulated Zoho Books organisation holds (mutable entities, JSON-able for the state file)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from syncd.sandbox.zohobooks.money import ZERO


class Address(BaseModel):
    """A billing or shipping address as Zoho returns it (every part a string, empty when unset)."""

    attention: str = ""
    address: str = ""
    street2: str = ""
    city: str = ""
    state: str = ""
    zip: str = ""
    country: str = ""
    phone: str = ""
    fax: str = ""


class OtherAddress(Address):
    """One of a contact's further addresses (`/contacts/{id}/address`), beside its billing and shipping ones."""

    address_id: str


class ContactPerson(BaseModel):
    """A person at a contact; exactly one of a contact's persons is primary."""

    contact_person_id: str
    salutation: str = ""
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    phone: str = ""
    mobile: str = ""
    designation: str = ""
    department: str = ""
    is_primary_contact: bool = False


class Contact(BaseModel):
    """A customer (or vendor) of the organisation."""

    contact_id: str
    contact_name: str
    company_name: str = ""
    contact_type: Literal["customer", "vendor"] = "customer"
    customer_sub_type: Literal["business", "individual"] = "business"
    status: Literal["active", "inactive"] = "active"
    website: str = ""
    notes: str = ""
    currency_code: str = "USD"
    payment_terms: int = 0
    payment_terms_label: str = "Due on Receipt"
    billing_address: Address = Field(default_factory=Address)
    shipping_address: Address = Field(default_factory=Address)
    contact_persons: list[ContactPerson] = Field(default_factory=list)
    other_addresses: list[OtherAddress] = Field(default_factory=list)
    custom: dict[str, str] = Field(default_factory=dict)
    created_time: float
    last_modified_time: float
    deleted: bool = False


class InvoiceLine(BaseModel):
    """One line of an invoice; `item_total` = rate × quantity − discount_amount."""

    line_item_id: str
    item_id: str = ""
    name: str = ""
    description: str = ""
    item_order: int = 1
    rate: Decimal
    quantity: Decimal
    unit: str = ""
    discount: Decimal = ZERO  # a percentage when discount_is_percent, else an amount
    discount_is_percent: bool = False
    discount_amount: Decimal = ZERO
    item_total: Decimal


class Invoice(BaseModel):
    """A sales invoice; its effective status is derived from `base_status`, the balance and the clock."""

    invoice_id: str
    invoice_number: str
    customer_id: str
    date: dt.date
    due_date: dt.date
    payment_terms: int = 0
    payment_terms_label: str = "Due on Receipt"
    reference_number: str = ""
    base_status: Literal["draft", "sent", "void"] = "draft"
    line_items: list[InvoiceLine]
    adjustment: Decimal = ZERO
    adjustment_description: str = ""
    notes: str = ""
    terms: str = ""
    currency_code: str = "USD"
    exchange_rate: Decimal = Decimal(1)
    sub_total: Decimal
    total: Decimal
    payment_made: Decimal = ZERO
    last_payment_date: dt.date | None = None
    custom: dict[str, str] = Field(default_factory=dict)
    created_time: float
    last_modified_time: float
    deleted: bool = False

    @property
    def balance(self) -> Decimal:
        """What is still owed on the invoice."""
        return ZERO if self.base_status == "void" else self.total - self.payment_made


class PaymentAllocation(BaseModel):
    """The part of a customer payment applied to one invoice."""

    invoice_payment_id: str
    invoice_id: str
    amount_applied: Decimal


class Refund(BaseModel):
    """Money paid back to the customer out of a payment's unused amount."""

    refund_id: str
    date: dt.date
    amount: Decimal
    refund_mode: str = ""
    reference_number: str = ""
    description: str = ""


class Payment(BaseModel):
    """A customer payment, applied to invoices; whatever is not applied is customer credit."""

    payment_id: str
    payment_number: str
    customer_id: str
    payment_mode: str
    amount: Decimal
    date: dt.date
    reference_number: str = ""
    description: str = ""
    bank_charges: Decimal = ZERO
    exchange_rate: Decimal = Decimal(1)
    allocations: list[PaymentAllocation] = Field(default_factory=list)
    refunds: list[Refund] = Field(default_factory=list)
    custom: dict[str, str] = Field(default_factory=dict)
    created_time: float
    last_modified_time: float
    deleted: bool = False

    @property
    def applied(self) -> Decimal:
        """The sum applied to invoices."""
        return sum((a.amount_applied for a in self.allocations), ZERO)

    @property
    def amount_refunded(self) -> Decimal:
        """The sum refunded."""
        return sum((r.amount for r in self.refunds), ZERO)

    @property
    def unused_amount(self) -> Decimal:
        """What stays with the customer as credit."""
        return self.amount - self.applied - self.amount_refunded


class Item(BaseModel):
    """A product or service that invoice lines can refer to."""

    item_id: str
    name: str
    rate: Decimal
    description: str = ""
    sku: str = ""
    unit: str = ""
    product_type: Literal["goods", "service"] = "service"
    status: Literal["active", "inactive"] = "active"
    created_time: float
    last_modified_time: float
    deleted: bool = False
