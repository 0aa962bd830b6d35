"""The systems syncd speaks to: one registration each, and `REGISTRY`, the only list of them."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["crm", "accounting"]


@dataclass(frozen=True)
class DealShape:
    """Where a CRM's deal object keeps what an invoice of one line needs when the deal has no line items."""

    object: str  # the CRM object that holds deals ("deals", "Opportunity")
    amount: str  # its amount field
    name: str  # its name field, the line's description


@dataclass(frozen=True)
class InvoiceLifecycle:
    """How an accounting system's invoices move, in its own words: what the engine needs to freeze and void them."""

    object: str  # the accounting object that holds invoices ("invoices", "Invoices", "Invoice")
    status_field: str  # where the status is read ("status"); compared case-insensitively
    editable: frozenset[str]  # statuses still edited after creation, lower-cased ({"draft"})
    void_status: str  # the status of a voided invoice, lower-cased ("void", "voided")
    void_action: str = "void"  # the connector action (`Connector.act`) that voids one
    # Other statuses that mean the invoice is cancelled, lower-cased (a system may delete a draft it will not void).
    also_void: frozenset[str] = frozenset()
    payment_object: str | None = None  # the object holding payments applied to invoices, if synced


@dataclass(frozen=True)
class SystemRegistration:
    """Everything syncd needs to know of one system; implementations are named by `module:attribute` so that a
    system's SDK is imported only when a connection to it is used."""

    name: str  # the `system` value in config and mapping files ("zohobooks")
    label: str  # how people call it ("Zoho Books")
    role: Role
    settings: str  # its connection settings model, a `syncd.settings.ConnectionBase` ("pkg.module:Class")
    connector: str  # its `Connector` class, built as cls(name, settings, storage=storage)
    setup: str | None = None  # module with its `syncd setup` checks
    simulator: str | None = None  # its sandbox simulator class (`syncd sandbox`, `syncd demo`, tests)
    default_port: int = 0  # the simulator's port under `syncd sandbox` (`--<name>-port`)
    option_aliases: tuple[str, ...] = ()  # other names in command-line options (`--<alias>-port`), kept for scripts
    objects: tuple[str, ...] = ()  # the objects a mapping may name on this system
    deals: DealShape | None = None  # CRMs: their deal object
    invoices: InvoiceLifecycle | None = None  # accounting systems: their invoice lifecycle
    # Accounting systems: by object, the field and value a record deactivated (`act(..., "inactive")`) shows.
    deactivated: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    mapping_files: tuple[str, ...] = ()  # shipped mapping files (in mappings/) that use this system
    # Module of its steps in `syncd demo` (syncd/demo.py): a CRM's `win_a_deal(connector, customer_ids)`, an
    # accounting system's `pay_part(connector, invoice)`; each returns the line to show, or None.
    demo: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # capabilities only this system's code reads


#: The one list of systems: name → where its registration lives (each system's own package). Adding a system is
#: adding its line here.
REGISTRY: Mapping[str, str] = {
    "hubspot": "syncd.connectors.hubspot.registration:REGISTRATION",
    "salesforce": "syncd.connectors.salesforce.registration:REGISTRATION",
    "zohobooks": "syncd.connectors.zohobooks.registration:REGISTRATION",
    "xero": "syncd.connectors.xero.registration:REGISTRATION",
    "quickbooks": "syncd.connectors.quickbooks.registration:REGISTRATION",
}


def load_object(path: str) -> Any:
    """The object a `module:attribute` path names."""
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


def registration(name: str) -> SystemRegistration:
    """One system's registration; a clear error naming the known systems otherwise."""
    if name not in REGISTRY:
        raise KeyError(f"unknown system {name!r}; known: {', '.join(REGISTRY)}")
    found = load_object(REGISTRY[name])
    if not isinstance(found, SystemRegistration) or found.name != name:
        raise TypeError(f"{REGISTRY[name]} is not the SystemRegistration of {name!r}")
    return found


def registrations(role: Role | None = None) -> list[SystemRegistration]:
    """Every registered system (of one role), in registry order."""
    found = [registration(name) for name in REGISTRY]
    return [entry for entry in found if role is None or entry.role == role]
