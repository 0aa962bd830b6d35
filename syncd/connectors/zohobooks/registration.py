"""Zoho Books' registration: its settings, connector, simulator and what its objects mean to syncd."""

from __future__ import annotations

from syncd.systems import InvoiceLifecycle, SystemRegistration

REGISTRATION = SystemRegistration(
    name="zohobooks",
    label="Zoho Books",
    role="accounting",
    settings="syncd.connectors.zohobooks.settings:ZohoBooksConnection",
    connector="syncd.connectors.zohobooks:ZohoBooksConnector",
    demo="syncd.connectors.zohobooks.demo",
    setup="syncd.connectors.zohobooks.setup",
    simulator="syncd.sandbox.zohobooks:ZohoBooksSimulator",
    default_port=8903,
    option_aliases=("zoho",),  # `syncd sandbox --zoho-port`, as it was before systems were registered
    objects=("contacts", "invoices", "customerpayments", "items", "invoicepayments"),
    invoices=InvoiceLifecycle(object="invoices", status_field="status", editable=frozenset({"draft"}),
                              void_status="void", void_action="void", payment_object="customerpayments"),
    deactivated={"contacts": ("status", "inactive")},
    mapping_files=("hubspot-zohobooks.toml", "salesforce-zohobooks.toml"),
)
