"""The simulated org's sObject schema: standard fields we need, the operator's custom fields, and describe."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from syncd.sandbox.salesforce.ids import mint_id

STRING_TYPES = frozenset({"string", "email", "phone", "textarea", "picklist", "url"})
ID_TYPES = frozenset({"id", "reference"})
NUMBER_TYPES = frozenset({"currency", "double", "percent", "int"})

# Opportunity stages of a default org: (name, probability, closed, won).
OPPORTUNITY_STAGES: tuple[tuple[str, int, bool, bool], ...] = (
    ("Prospecting", 10, False, False),
    ("Qualification", 10, False, False),
    ("Needs Analysis", 20, False, False),
    ("Value Proposition", 50, False, False),
    ("Id. Decision Makers", 60, False, False),
    ("Perception Analysis", 70, False, False),
    ("Proposal/Price Quote", 75, False, False),
    ("Negotiation/Review", 90, False, False),
    ("Closed Won", 100, True, True),
    ("Closed Lost", 0, True, False),
)
STAGE_BY_NAME = {name: (prob, closed, won) for name, prob, closed, won in OPPORTUNITY_STAGES}

# The user every write is attributed to (the integration user of the simulated org).
INTEGRATION_USER_ID = mint_id("005", 1)
ORG_ID = mint_id("00D", 1)
# The org's standard price book: there from the start (serial 0 is never minted for a created record).
STANDARD_PRICEBOOK_ID = mint_id("01s", 0)
STANDARD_PRICEBOOK_NAME = "Standard Price Book"


@dataclass(frozen=True)
class FieldSpec:
    """One field of an sObject as describe reports it."""

    name: str
    type: str
    label: str
    length: int = 0
    createable: bool = True
    updateable: bool = True
    nillable: bool = True
    external_id: bool = False
    unique: bool = False
    reference_to: tuple[str, ...] = ()
    picklist_values: tuple[str, ...] = ()
    restricted_picklist: bool = False
    calculated: bool = False
    defaulted_on_create: bool = False

    @property
    def required(self) -> bool:
        """True when a create must supply a value (not nillable and nothing fills it in)."""
        return self.createable and not self.nillable and not self.defaulted_on_create

    @property
    def custom(self) -> bool:
        """True for operator-created fields (API names ending in __c)."""
        return self.name.endswith("__c")

    def describe(self) -> dict[str, Any]:
        """Return this field's entry in a describe result."""
        precision, scale = (18, 2) if self.type == "currency" else (18, 0) if self.type == "double" else (0, 0)
        if self.type == "percent":
            precision, scale = 3, 0
        soap = {
            "id": "tns:ID",
            "reference": "tns:ID",
            "boolean": "xsd:boolean",
            "currency": "xsd:double",
            "double": "xsd:double",
            "percent": "xsd:double",
            "int": "xsd:int",
            "date": "xsd:date",
            "datetime": "xsd:dateTime",
        }.get(self.type, "xsd:string")
        return {
            "name": self.name,
            "type": self.type,
            "label": self.label,
            "length": self.length,
            "precision": precision,
            "scale": scale,
            "soapType": soap,
            "createable": self.createable,
            "updateable": self.updateable,
            "nillable": self.nillable,
            "externalId": self.external_id,
            "unique": self.unique,
            "idLookup": self.name == "Id" or self.external_id,
            "custom": self.custom,
            "calculated": self.calculated,
            "defaultedOnCreate": self.defaulted_on_create,
            "filterable": True,
            "sortable": self.type != "textarea",
            "caseSensitive": False,
            "referenceTo": list(self.reference_to),
            "relationshipName": self.relationship_name,
            "restrictedPicklist": self.restricted_picklist,
            "picklistValues": [
                {"active": True, "defaultValue": False, "label": value, "validFor": None, "value": value}
                for value in self.picklist_values
            ],
        }

    @property
    def relationship_name(self) -> str | None:
        """The name SOQL reaches the referenced record by (`Product2` for `Product2Id`), None for non-references."""
        if self.type != "reference":
            return None
        if self.name.endswith("__c"):
            return self.name[:-3] + "__r"
        return self.name[:-2] if self.name.endswith("Id") else self.name


@dataclass(frozen=True)
class ObjectSpec:
    """One sObject type: its name, key prefix and fields."""

    name: str
    label: str
    label_plural: str
    key_prefix: str
    fields: tuple[FieldSpec, ...]
    _by_lower: dict[str, FieldSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_lower", {f.name.lower(): f for f in self.fields})

    @property
    def custom(self) -> bool:
        """True for operator-created objects."""
        return self.name.endswith("__c")

    def field(self, name: str) -> FieldSpec | None:
        """Return the field called name (API names are case-insensitive), or None."""
        return self._by_lower.get(name.lower())

    def external_id_fields(self) -> list[FieldSpec]:
        """Fields usable as upsert keys."""
        return [f for f in self.fields if f.external_id]

    def describe(self, version: str) -> dict[str, Any]:
        """Return the describe result for this object."""
        base = f"/services/data/{version}/sobjects/{self.name}"
        return {
            "name": self.name,
            "label": self.label,
            "labelPlural": self.label_plural,
            "keyPrefix": self.key_prefix,
            "custom": self.custom,
            "createable": True,
            "updateable": True,
            "deletable": True,
            "queryable": True,
            "replicateable": True,
            "retrieveable": True,
            "searchable": True,
            "undeletable": True,
            "fields": [f.describe() for f in self.fields],
            "urls": {
                "sobject": base,
                "describe": f"{base}/describe",
                "rowTemplate": f"{base}/{{ID}}",
            },
        }

    def basic_info(self, version: str) -> dict[str, Any]:
        """Return the short description used by GET /sobjects and GET /sobjects/{Obj}."""
        base = f"/services/data/{version}/sobjects/{self.name}"
        return {
            "name": self.name,
            "label": self.label,
            "labelPlural": self.label_plural,
            "keyPrefix": self.key_prefix,
            "custom": self.custom,
            "createable": True,
            "updateable": True,
            "deletable": True,
            "queryable": True,
            "urls": {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"},
        }


def _system_fields() -> tuple[FieldSpec, ...]:
    """Fields every sObject has and nobody may write."""
    return (
        FieldSpec("IsDeleted", "boolean", "Deleted", createable=False, updateable=False, nillable=False),
        FieldSpec("CreatedDate", "datetime", "Created Date", createable=False, updateable=False, nillable=False),
        FieldSpec(
            "CreatedById",
            "reference",
            "Created By ID",
            18,
            createable=False,
            updateable=False,
            nillable=False,
            reference_to=("User",),
        ),
        FieldSpec(
            "LastModifiedDate",
            "datetime",
            "Last Modified Date",
            createable=False,
            updateable=False,
            nillable=False,
        ),
        FieldSpec(
            "LastModifiedById",
            "reference",
            "Last Modified By ID",
            18,
            createable=False,
            updateable=False,
            nillable=False,
            reference_to=("User",),
        ),
        FieldSpec("SystemModstamp", "datetime", "System Modstamp", createable=False, updateable=False, nillable=False),
    )


def _id_field() -> FieldSpec:
    return FieldSpec("Id", "id", "Record ID", 18, createable=False, updateable=False, nillable=False)


def _owner_field() -> FieldSpec:
    return FieldSpec(
        "OwnerId", "reference", "Owner ID", 18, nillable=False, defaulted_on_create=True, reference_to=("User",)
    )


def _syncd_ref() -> FieldSpec:
    return FieldSpec("Syncd_Ref__c", "string", "Syncd Ref", 255, external_id=True, unique=True)


def _legacy_id() -> FieldSpec:
    # A migration key an operator marked External ID without Unique: upserts on it can match several records.
    return FieldSpec("Legacy_Id__c", "string", "Legacy ID", 64, external_id=True)


def _ref(
    name: str, label: str, target: str, *, nillable: bool = True, updateable: bool = True, createable: bool = True
) -> FieldSpec:
    return FieldSpec(
        name,
        "reference",
        label,
        18,
        createable=createable,
        nillable=nillable,
        updateable=updateable,
        reference_to=(target,),
    )


def _master_record(target: str) -> FieldSpec:
    # Set by a merge on each losing record (deleted, visible through queryAll) to the surviving record's id.
    return _ref("MasterRecordId", "Master Record ID", target, createable=False, updateable=False)


ACCOUNT = ObjectSpec(
    "Account",
    "Account",
    "Accounts",
    "001",
    (
        _id_field(),
        FieldSpec("Name", "string", "Account Name", 255, nillable=False),
        FieldSpec("Phone", "phone", "Account Phone", 40),
        FieldSpec("Website", "url", "Website", 255),
        FieldSpec("Industry", "picklist", "Industry", 255),
        FieldSpec("Description", "textarea", "Account Description", 32000),
        FieldSpec("BillingStreet", "textarea", "Billing Street", 255),
        FieldSpec("BillingCity", "string", "Billing City", 40),
        FieldSpec("BillingPostalCode", "string", "Billing Zip/Postal Code", 20),
        FieldSpec("BillingCountry", "string", "Billing Country", 80),
        _owner_field(),
        _master_record("Account"),
        *_system_fields(),
        _syncd_ref(),
        _legacy_id(),
    ),
)

CONTACT = ObjectSpec(
    "Contact",
    "Contact",
    "Contacts",
    "003",
    (
        _id_field(),
        _ref("AccountId", "Account ID", "Account"),
        FieldSpec("FirstName", "string", "First Name", 40),
        FieldSpec("LastName", "string", "Last Name", 80, nillable=False),
        FieldSpec("Name", "string", "Full Name", 121, createable=False, updateable=False, nillable=False),
        FieldSpec("Email", "email", "Email", 80),
        FieldSpec("Phone", "phone", "Business Phone", 40),
        FieldSpec("Title", "string", "Title", 128),
        FieldSpec("MailingStreet", "textarea", "Mailing Street", 255),
        FieldSpec("MailingCity", "string", "Mailing City", 40),
        FieldSpec("MailingPostalCode", "string", "Mailing Zip/Postal Code", 20),
        FieldSpec("MailingCountry", "string", "Mailing Country", 80),
        FieldSpec("Description", "textarea", "Contact Description", 32000),
        _owner_field(),
        _master_record("Contact"),
        *_system_fields(),
        _syncd_ref(),
        _legacy_id(),
    ),
)

OPPORTUNITY = ObjectSpec(
    "Opportunity",
    "Opportunity",
    "Opportunities",
    "006",
    (
        _id_field(),
        _ref("AccountId", "Account ID", "Account"),
        # The opportunity's primary contact (API v46+: createable and updateable).
        _ref("ContactId", "Contact ID", "Contact"),
        FieldSpec("Name", "string", "Name", 120, nillable=False),
        FieldSpec("Description", "textarea", "Description", 32000),
        FieldSpec(
            "StageName",
            "picklist",
            "Stage",
            255,
            nillable=False,
            restricted_picklist=True,
            picklist_values=tuple(s[0] for s in OPPORTUNITY_STAGES),
        ),
        FieldSpec("Amount", "currency", "Amount"),
        # Set to the price book of the first line added when empty (the standard one for a bare Product2Id).
        _ref("Pricebook2Id", "Price Book ID", "Pricebook2"),
        FieldSpec("Probability", "percent", "Probability (%)", defaulted_on_create=True),
        FieldSpec("CloseDate", "date", "Close Date", nillable=False),
        FieldSpec("IsClosed", "boolean", "Closed", createable=False, updateable=False, nillable=False),
        FieldSpec("IsWon", "boolean", "Won", createable=False, updateable=False, nillable=False),
        FieldSpec(
            "HasOpportunityLineItem",
            "boolean",
            "Has Line Item",
            createable=False,
            updateable=False,
            nillable=False,
        ),
        _owner_field(),
        *_system_fields(),
        _syncd_ref(),
        FieldSpec("Invoice_Number__c", "string", "Invoice Number", 80),
        FieldSpec("Invoice_Status__c", "string", "Invoice Status", 40),
        FieldSpec("Invoice_Balance__c", "currency", "Invoice Balance"),
        FieldSpec("Amount_Paid__c", "currency", "Amount Paid"),
    ),
)

OPPORTUNITY_LINE_ITEM = ObjectSpec(
    "OpportunityLineItem",
    "Opportunity Product",
    "Opportunity Product",
    "00k",
    (
        _id_field(),
        _ref("OpportunityId", "Opportunity ID", "Opportunity", nillable=False, updateable=False),
        # A line names a price book entry, or (API v38+) a product resolved through the opportunity's price
        # book; one of the two is required, which the store checks (describe shows both as optional).
        _ref("PricebookEntryId", "Price Book Entry ID", "PricebookEntry", updateable=False),
        _ref("Product2Id", "Product ID", "Product2", updateable=False),
        # Salesforce builds the name from the opportunity's and the product's: "<Opportunity> <Product>".
        FieldSpec("Name", "string", "Opportunity Product Name", 376, createable=False, updateable=False),
        FieldSpec("ProductCode", "string", "Product Code", 255, createable=False, updateable=False),
        FieldSpec("ListPrice", "currency", "List Price", createable=False, updateable=False),
        FieldSpec("Description", "string", "Line Description", 255),
        FieldSpec("Quantity", "double", "Quantity", nillable=False),
        FieldSpec("UnitPrice", "currency", "Sales Price", nillable=False),
        FieldSpec("TotalPrice", "currency", "Total Price", createable=False, updateable=False, calculated=True),
        FieldSpec("ServiceDate", "date", "Date"),
        FieldSpec("SortOrder", "int", "Sort Order"),
        *_system_fields(),
        _syncd_ref(),
    ),
)

PRODUCT = ObjectSpec(
    "Product2",
    "Product",
    "Products",
    "01t",
    (
        _id_field(),
        FieldSpec("Name", "string", "Product Name", 255, nillable=False),
        FieldSpec("ProductCode", "string", "Product Code", 255),
        FieldSpec("Description", "textarea", "Product Description", 4000),
        # New products are inactive unless created active, as in Salesforce.
        FieldSpec("IsActive", "boolean", "Active", nillable=False, defaulted_on_create=True),
        FieldSpec(
            "Family", "picklist", "Product Family", 40, picklist_values=("Hardware", "Software", "Services")
        ),
        *_system_fields(),
    ),
)

PRICEBOOK = ObjectSpec(
    "Pricebook2",
    "Price Book",
    "Price Books",
    "01s",
    (
        _id_field(),
        FieldSpec("Name", "string", "Price Book Name", 255, nillable=False),
        FieldSpec("Description", "string", "Description", 255),
        FieldSpec("IsActive", "boolean", "Active", nillable=False, defaulted_on_create=True),
        FieldSpec(
            "IsStandard", "boolean", "Is Standard Price Book", createable=False, updateable=False, nillable=False
        ),
        *_system_fields(),
    ),
)

PRICEBOOK_ENTRY = ObjectSpec(
    "PricebookEntry",
    "Price Book Entry",
    "Price Book Entries",
    "01u",
    (
        _id_field(),
        _ref("Pricebook2Id", "Price Book ID", "Pricebook2", nillable=False, updateable=False),
        _ref("Product2Id", "Product ID", "Product2", nillable=False, updateable=False),
        # Copied from the product (and kept in step with it), never written directly.
        FieldSpec("Name", "string", "Product Name", 255, createable=False, updateable=False),
        FieldSpec("ProductCode", "string", "Product Code", 255, createable=False, updateable=False),
        FieldSpec("UnitPrice", "currency", "List Price", nillable=False),
        FieldSpec("IsActive", "boolean", "Active", nillable=False, defaulted_on_create=True),
        FieldSpec("UseStandardPrice", "boolean", "Use Standard Price", nillable=False, defaulted_on_create=True),
        *_system_fields(),
    ),
)

PAYMENT = ObjectSpec(
    "Payment__c",
    "Payment",
    "Payments",
    "a0P",
    (
        _id_field(),
        # A text Name field left optional: the sandbox fills in an auto-number when none is given.
        FieldSpec("Name", "string", "Payment Name", 80, defaulted_on_create=True),
        _ref("Opportunity__c", "Opportunity", "Opportunity"),
        FieldSpec("Amount__c", "currency", "Amount"),
        FieldSpec("Payment_Date__c", "date", "Payment Date"),
        FieldSpec("Payment_Mode__c", "string", "Payment Mode", 40),
        FieldSpec("Reference__c", "string", "Reference", 255),
        FieldSpec("Amount_Refunded__c", "currency", "Amount Refunded"),
        _owner_field(),
        *_system_fields(),
        _syncd_ref(),
    ),
)

OBJECTS: tuple[ObjectSpec, ...] = (
    ACCOUNT,
    CONTACT,
    OPPORTUNITY,
    OPPORTUNITY_LINE_ITEM,
    PAYMENT,
    PRODUCT,
    PRICEBOOK,
    PRICEBOOK_ENTRY,
)
_OBJECTS_BY_LOWER = {o.name.lower(): o for o in OBJECTS}
OBJECTS_BY_PREFIX = {o.key_prefix: o for o in OBJECTS}


def object_spec(name: str) -> ObjectSpec | None:
    """Return the sObject called name (case-insensitive), or None when the org has no such type."""
    return _OBJECTS_BY_LOWER.get(name.lower())
