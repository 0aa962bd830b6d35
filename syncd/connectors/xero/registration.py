"""Xero's registration: its settings, connector, simulator and what its objects mean to syncd."""

from __future__ import annotations

from syncd.systems import InvoiceLifecycle, SystemRegistration

REGISTRATION = SystemRegistration(
    name="xero",
    label="Xero",
    role="accounting",
    settings="syncd.connectors.xero.settings:XeroConnection",
    connector="syncd.connectors.xero:XeroConnector",
    demo="syncd.connectors.xero.demo",
    setup="syncd.connectors.xero.setup",
    simulator="syncd.sandbox.xero:XeroSimulator",
    default_port=8904,
    objects=("Contacts", "Invoices", "Payments", "Items"),
    # Xero's words: DRAFT, SUBMITTED, AUTHORISED, PAID, VOIDED, DELETED. A draft Xero will not void is deleted.
    invoices=InvoiceLifecycle(object="Invoices", status_field="Status", editable=frozenset({"draft", "submitted"}),
                              void_status="voided", also_void=frozenset({"deleted"}), void_action="void",
                              payment_object="Payments"),
    # A contact deactivated (`act(..., "inactive")`) is archived.
    deactivated={"Contacts": ("ContactStatus", "ARCHIVED")},
    mapping_files=("hubspot-xero.toml", "salesforce-xero.toml"),
)
