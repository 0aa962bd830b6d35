"""QuickBooks Online's registration: its settings, connector, simulator and what its objects mean to syncd."""

from __future__ import annotations

from syncd.systems import InvoiceLifecycle, SystemRegistration

REGISTRATION = SystemRegistration(
    name="quickbooks",
    label="QuickBooks Online",
    role="accounting",
    settings="syncd.connectors.quickbooks.settings:QuickBooksConnection",
    connector="syncd.connectors.quickbooks:QuickBooksConnector",
    demo="syncd.connectors.quickbooks.demo",
    setup="syncd.connectors.quickbooks.setup",
    simulator="syncd.sandbox.quickbooks:QuickBooksSimulator",
    default_port=8905,
    objects=("Customer", "Invoice", "Payment", "Item", "PaymentApplication"),
    # A QBO invoice has no status word and no draft: the connector computes `status` from Balance, TotalAmt and
    # the void mark ("open", "partially_paid", "paid", "void"). "open" (nothing paid yet) is editable: QBO lets
    # an unpaid invoice be changed, and once money is applied to it the books keep it as it is.
    invoices=InvoiceLifecycle(object="Invoice", status_field="status", editable=frozenset({"open"}),
                              void_status="void", void_action="void", payment_object="Payment"),
    # Customers and items are made inactive (Active false), never deleted; the connector shows it as `status`.
    deactivated={"Customer": ("status", "inactive"), "Item": ("status", "inactive")},
    mapping_files=("hubspot-quickbooks.toml", "salesforce-quickbooks.toml"),
)
