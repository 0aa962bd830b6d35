"""What the simulated portal defines: object types, their properties (incl. syncd's custom ones), pipelines."""

from __future__ import annotations

from dataclasses import dataclass

from syncd.sandbox.seeding import DEAL_STAGES as SEED_DEAL_STAGES

# name -> object type id; the API accepts either in paths.
OBJECT_TYPE_IDS: dict[str, str] = {"contacts": "0-1", "companies": "0-2", "deals": "0-3", "line_items": "0-8"}
# Singular names are used in webhook event types and association type names.
SINGULAR: dict[str, str] = {"contacts": "contact", "companies": "company", "deals": "deal", "line_items": "line_item"}
# HubSpot accepts singular names in v4 association paths too ("contact", "deal").
_ALIASES: dict[str, str] = {
    **{name: name for name in OBJECT_TYPE_IDS},
    **{type_id: name for name, type_id in OBJECT_TYPE_IDS.items()},
    **{singular: name for name, singular in SINGULAR.items()},
}

# HubSpot's other standard objects, which this portal does not hold: the sandbox app's grant has no scope for
# them, so HubSpot answers 403 MISSING_SCOPES (name or type id -> the granular scope a real app would need).
UNGRANTED_OBJECTS: dict[str, str] = {
    name: scope for names, scope in (
        (("tickets", "ticket", "0-5"), "tickets"),
        (("products", "product", "0-7"), "e-commerce"),
        (("quotes", "quote", "0-14"), "crm.objects.quotes.read"),
        (("feedback_submissions", "feedback_submission", "0-19"), "crm.objects.feedback_submissions.read"),
        (("leads", "lead", "0-136"), "crm.objects.leads.read"),
        (("invoices", "invoice", "0-53"), "crm.objects.invoices.read"),
        (("orders", "order", "0-123"), "crm.objects.orders.read"),
        (("carts", "cart", "0-142"), "crm.objects.carts.read"),
        (("subscriptions", "subscription", "0-69"), "crm.objects.subscriptions.read"),
        (("commerce_payments", "commerce_payment", "0-101"), "crm.objects.commercepayments.read"),
        (("goal_targets", "goal_target", "0-74"), "crm.objects.goals.read"),
    ) for name in names
}

# The seeded world's deal stages are the default pipeline's stage ids.
DEAL_STAGES = SEED_DEAL_STAGES

# The `lastmodifieddate` name differs for contacts; everything else uses hs_lastmodifieddate.
MODIFIED_PROPERTY: dict[str, str] = {
    "contacts": "lastmodifieddate",
    "companies": "hs_lastmodifieddate",
    "deals": "hs_lastmodifieddate",
    "line_items": "hs_lastmodifieddate",
}

# Properties returned when a request names none (list, get, search).
DEFAULT_PROPERTIES: dict[str, tuple[str, ...]] = {
    "contacts": ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
    "companies": ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
    "deals": (
        "amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate", "hs_object_id",
        "pipeline",
    ),
    "line_items": ("amount", "createdate", "hs_lastmodifieddate", "hs_object_id", "name", "price", "quantity"),
}

# Properties the free-text `query` of a search looks in.
QUERY_PROPERTIES: dict[str, tuple[str, ...]] = {
    "contacts": ("firstname", "lastname", "email", "phone", "company", "hs_object_id"),
    "companies": ("name", "domain", "website", "phone", "hs_object_id"),
    "deals": ("dealname", "hs_object_id"),
    "line_items": ("name", "hs_object_id"),
}


@dataclass(frozen=True)
class PropertyDef:
    """One property definition as the properties API describes it."""

    name: str
    label: str
    type: str  # string | number | date | datetime | enumeration | bool | phone_number
    field_type: str
    group: str
    unique: bool = False
    read_only: bool = False
    hubspot_defined: bool = True
    options: tuple[str, ...] = ()
    created_at: float = 0.0

    def to_json(self, iso: str) -> dict[str, object]:
        """The `Property` body; `iso` is the creation time rendered by the caller."""
        return {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "groupName": self.group,
            "description": "",
            "options": [
                {"label": option, "value": option, "hidden": False, "displayOrder": i}
                for i, option in enumerate(self.options)
            ],
            "hasUniqueValue": self.unique,
            "hubspotDefined": self.hubspot_defined,
            "calculated": False,
            "externalOptions": False,
            "hidden": False,
            "formField": not self.read_only,
            "displayOrder": -1,
            "createdAt": iso,
            "updatedAt": iso,
            "archived": False,
            "modificationMetadata": {
                "archivable": not self.hubspot_defined,
                "readOnlyDefinition": self.hubspot_defined,
                "readOnlyValue": self.read_only,
            },
        }


def resolve_object_type(name: str) -> str | None:
    """The canonical plural name for an object name or type id; None when the portal has no such object."""
    return _ALIASES.get(name.lower())


def _text(
    name: str, label: str, group: str, *, unique: bool = False, read_only: bool = False,
    hubspot_defined: bool = True,
) -> PropertyDef:
    return PropertyDef(
        name, label, "string", "text", group, unique=unique, read_only=read_only, hubspot_defined=hubspot_defined
    )


def _number(
    name: str, label: str, group: str, *, read_only: bool = False, hubspot_defined: bool = True
) -> PropertyDef:
    return PropertyDef(name, label, "number", "number", group, read_only=read_only, hubspot_defined=hubspot_defined)


def _system(obj: str) -> list[PropertyDef]:
    group = f"{SINGULAR[obj]}information"
    return [
        PropertyDef("createdate", "Create Date", "datetime", "date", group, read_only=False),
        PropertyDef(MODIFIED_PROPERTY[obj], "Last Modified Date", "datetime", "date", group, read_only=True),
        _number("hs_object_id", "Record ID", group, read_only=True),
        PropertyDef("hs_merged_object_ids", "Merged Record IDs", "enumeration", "checkbox", group, read_only=True),
        _text("syncd_ref", "syncd reference", "syncd", unique=True, hubspot_defined=False),
    ]


def default_properties() -> dict[str, dict[str, PropertyDef]]:
    """A fresh copy of the portal's property definitions per object type (custom ones get added to it)."""
    contact = "contactinformation"
    company = "companyinformation"
    deal = "dealinformation"
    line = "lineiteminformation"
    defs: dict[str, list[PropertyDef]] = {
        "contacts": [
            PropertyDef("email", "Email", "string", "text", contact, unique=True),
            _text("firstname", "First Name", contact),
            _text("lastname", "Last Name", contact),
            PropertyDef("phone", "Phone Number", "string", "phonenumber", contact),
            _text("company", "Company Name", contact),
            _text("jobtitle", "Job Title", contact),
            _text("address", "Street Address", contact),
            _text("city", "City", contact),
            _text("zip", "Postal Code", contact),
            _text("country", "Country/Region", contact),
            _text("website", "Website URL", contact),
            _text("hs_additional_emails", "Additional email addresses", contact, read_only=True),
            _number("associatedcompanyid", "Primary Associated Company ID", contact),
            PropertyDef(
                "lifecyclestage", "Lifecycle Stage", "enumeration", "radio", contact,
                options=("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity",
                         "customer", "evangelist", "other"),
            ),
        ],
        "companies": [
            _text("name", "Company name", company),
            _text("domain", "Company Domain Name", company),
            PropertyDef("phone", "Phone Number", "string", "phonenumber", company),
            _text("address", "Street Address", company),
            _text("city", "City", company),
            _text("zip", "Postal Code", company),
            _text("country", "Country/Region", company),
            _text("website", "Website URL", company),
            _text("industry", "Industry", company),
        ],
        "deals": [
            _text("dealname", "Deal Name", deal),
            PropertyDef("amount", "Amount", "number", "number", deal),
            PropertyDef("dealstage", "Deal Stage", "enumeration", "radio", deal, options=DEAL_STAGES),
            PropertyDef("pipeline", "Pipeline", "enumeration", "select", deal, options=("default",)),
            PropertyDef("closedate", "Close Date", "datetime", "date", deal),
            _text("deal_currency_code", "Currency", deal),
            _text("description", "Deal Description", deal),
            _text("syncd_invoice_number", "Invoice number (syncd)", "syncd", hubspot_defined=False),
            _text("syncd_invoice_status", "Invoice status (syncd)", "syncd", hubspot_defined=False),
            _number("syncd_invoice_balance", "Invoice balance (syncd)", "syncd", hubspot_defined=False),
            _number("syncd_amount_paid", "Amount paid (syncd)", "syncd", hubspot_defined=False),
            _number("syncd_invoice_total", "Invoice total (syncd)", "syncd", hubspot_defined=False),
            PropertyDef(
                "syncd_invoice_due_date", "Invoice due date (syncd)", "date", "date", "syncd",
                hubspot_defined=False,
            ),
            PropertyDef(
                "syncd_last_payment_date", "Last payment date (syncd)", "date", "date", "syncd",
                hubspot_defined=False,
            ),
            # The custom properties the shipped mapping writes a deal's last payment into.
            _number("syncd_last_payment_amount", "Last payment amount (syncd)", "syncd", hubspot_defined=False),
            _text("syncd_last_payment_mode", "Last payment mode (syncd)", "syncd", hubspot_defined=False),
            _text("syncd_last_payment_reference", "Last payment reference (syncd)", "syncd", hubspot_defined=False),
            _number("syncd_last_payment_refunded", "Last payment refunded (syncd)", "syncd", hubspot_defined=False),
        ],
        "line_items": [
            _text("name", "Name", line),
            _text("description", "Description", line),
            _number("quantity", "Quantity", line),
            _number("price", "Unit price", line),
            # HubSpot calculates a line item's amount from quantity, price and discount.
            _number("amount", "Net price", line, read_only=True),
            _number("discount", "Unit discount", line),
            _text("hs_product_id", "Product ID", line),
            _text("hs_line_item_currency_code", "Currency", line),
        ],
    }
    return {obj: {p.name: p for p in [*props, *_system(obj)]} for obj, props in defs.items()}


# Property groups every portal has (HubSpot's own per object), and the one syncd's custom properties sit in,
# which the sandbox portal starts with as if `syncd setup` had run (`POST /_sandbox/fresh-portal` drops it).
_GROUP_LABELS: dict[str, str] = {
    "contactinformation": "Contact information",
    "companyinformation": "Company information",
    "dealinformation": "Deal information",
    "lineiteminformation": "Line item information",
    "syncd": "syncd",
}


def default_groups(properties: dict[str, dict[str, PropertyDef]]) -> dict[str, dict[str, str]]:
    """Per object type, the property groups (name -> label) that `properties` use."""
    return {
        obj: {p.group: _GROUP_LABELS.get(p.group, p.group) for p in props.values()}
        for obj, props in properties.items()
    }
