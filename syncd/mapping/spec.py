"""Typed spec of a mapping file: what the TOML may say, checked with pydantic (`extra="forbid"`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr

from syncd.systems import Role, registrations
from syncd.tomlsource import format_key_path

Direction = Literal["both", "crm_to_accounting", "accounting_to_crm"]
ConflictRule = Literal["latest", "crm", "accounting", "manual"]
DeletePolicy = Literal["ignore", "deactivate", "delete"]
Side = Literal["crm", "accounting"]
#: A key path inside a mapping file, e.g. ("objects", "invoice", "fields", "stage", "transform", 0).
KeyPath = tuple[str | int, ...]
#: Render a key path the way an operator reads it: objects.invoice.fields.stage.transform[0].
dotted = format_key_path


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _as_step(value: Any) -> Any:
    # A step is written either as a bare name ("trim") or an inline table ({ name = "money", currency = "EUR" }).
    if isinstance(value, str):
        return {"name": value, "args": {}}
    if isinstance(value, Mapping) and "name" in value and "args" not in value:
        return {"name": value["name"], "args": {k: v for k, v in value.items() if k != "name"}}
    return value


def _as_steps(value: Any) -> Any:
    if isinstance(value, str | Mapping):
        return [value]
    return value


class TransformStep(_Strict):
    """One named transform with its arguments."""

    name: str
    args: dict[str, Any] = Field(default_factory=dict)


Steps = Annotated[list[Annotated[TransformStep, BeforeValidator(_as_step)]], BeforeValidator(_as_steps)]
DefaultValue = str | int | float | bool | date | datetime


class ItemFieldSpec(_Strict):
    """A sub-field of a list field (a line item's name, quantity, rate)."""

    crm: str
    acc: str
    transform: Steps = Field(default_factory=list)
    crm_transform: Steps = Field(default_factory=list)
    acc_transform: Steps = Field(default_factory=list)
    default: DefaultValue | None = None


class FieldSpec(_Strict):
    """One mapped field; its key in the file is its canonical name.

    `transform` applies on both sides; `crm_transform`/`acc_transform` run first on their side only (a
    value map from deal stage to invoice status sits on the CRM side). `link` makes the field a reference
    to another mapped object, resolved through the link table instead of compared. `items` makes it a list
    of sub-records compared as a whole.
    """

    crm: str | None = None
    acc: str | None = None
    transform: Steps = Field(default_factory=list)
    crm_transform: Steps = Field(default_factory=list)
    acc_transform: Steps = Field(default_factory=list)
    direction: Direction | None = None
    conflict: ConflictRule | None = None
    default: DefaultValue | None = None
    create_only: bool = False
    link: str | None = None
    items: dict[str, ItemFieldSpec] | None = None


class UniqueNameSpec(_Strict):
    """A field the side keeps unique by value (a system refusing a second customer with a display name in use):
    the names a refused create is tried again under, in turn. `$value` is the refused name, other placeholders
    are canonical field names; an alternative with a blank placeholder is passed over. Without `alternatives`,
    the e-mail is appended, else the company (`$value ($email)`, `$value ($company)`, as far as mapped)."""

    field: str
    alternatives: list[str] | None = None


class CreateSpec(_Strict):
    """Which side may create records on the other, and where the idempotency reference is stored."""

    crm_to_accounting: bool = False
    accounting_to_crm: bool = False
    crm_ref_field: str | None = None
    acc_ref_field: str | None = None
    #: Extra values written only on create; text may use $canonical_name placeholders (string.Template).
    crm_values: dict[str, str | int | bool] = Field(default_factory=dict)
    acc_values: dict[str, str | int | bool] = Field(default_factory=dict)
    #: A field written on create that the side keeps unique, and the names to try when it is taken.
    crm_unique_name: UniqueNameSpec | None = None
    acc_unique_name: UniqueNameSpec | None = None
    #: Move a created record on by the system's action to the status its fields ask for (an invoice
    #: to `sent`). Off by default: the system's initial status (a draft) waits for a person to send it.
    mark_sent: bool = False


class AttachSpec(_Strict):
    """This object has no record of its own on `side`: it writes onto the record linked via `reference`."""

    reference: str
    side: Side


class MatchValueSpec(_Strict):
    """A value a document match compares: its field on each side and the transforms that make them comparable."""

    crm: str
    acc: str
    transform: Steps = Field(default_factory=list)


class DocumentMatchSpec(_Strict):
    """How a document (an invoice, a payment) already on the other side is recognised the first time.

    `reference` is compared exactly (a deal's id the invoice carries); failing that, a record of the same linked
    `customer` whose `amount` is within `amount_tolerance` and whose `date` is within `tolerance_days`.
    """

    reference: MatchValueSpec | None = None
    customer: str | None = None
    amount: MatchValueSpec | None = None
    amount_tolerance: Decimal = Field(default=Decimal(0), ge=0)
    date: MatchValueSpec | None = None
    tolerance_days: int = Field(default=0, ge=0)


class SyncFromSpec(_Strict):
    """The cut-off before which a record is history: linked when matched, otherwise left alone.

    `field` is the canonical field that dates a record (a deal's close date, a payment's date); `since` is the
    cut-off, by default the moment the mapping was first activated.
    """

    field: str
    since: date | datetime | None = None


class ObjectSpec(_Strict):
    """One synced object pair, such as a CRM's deals ↔ an accounting system's invoices."""

    crm_object: str
    acc_object: str
    direction: Direction = "both"
    conflict: ConflictRule = "latest"
    delete_policy: DeletePolicy = "ignore"
    match_keys: list[str] = Field(default_factory=list)
    match: DocumentMatchSpec | None = None
    sync_from: SyncFromSpec | None = None
    depends_on: list[str] = Field(default_factory=list)
    crm_filter: str | None = None
    acc_filter: str | None = None
    crm_extra_fields: list[str] = Field(default_factory=list)
    acc_extra_fields: list[str] = Field(default_factory=list)
    currency_field: str | None = None
    attach: AttachSpec | None = None
    create: CreateSpec = Field(default_factory=CreateSpec)
    fields: dict[str, FieldSpec] = Field(default_factory=dict)


def _registered_as(role: Role) -> Callable[[str], str]:
    """A check that a system name is registered in `role` (the registry in `syncd.systems` is the only list)."""

    def check(name: str) -> str:
        known = [entry.name for entry in registrations(role)]
        if name not in known:
            raise ValueError(f"expected a registered {role} system: {', '.join(known) or 'none'}")
        return name

    return check


class MappingHeader(_Strict):
    """Which two systems the file connects: a registered CRM and a registered accounting system."""

    crm: Annotated[str, AfterValidator(_registered_as("crm"))]
    accounting: Annotated[str, AfterValidator(_registered_as("accounting"))]
    default_currency: str = "USD"
    description: str = ""


#: What a mapping's name may be: it keys links, cursors (`name:object:side_object`) and dead letters, so no
#: colon, no spaces, and nothing an operator would have to quote on the command line.
MAPPING_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
MappingName = Annotated[str, Field(pattern=MAPPING_NAME_PATTERN)]


class MappingSpec(_Strict):
    """A whole mapping file, as typed data; the loader attaches where it came from.

    `name` is the mapping's stable identity: links, cursors, conflicts and dead letters are kept under it, so
    a copy of the file (or the file moved elsewhere) with the same name goes on with the same links.
    """

    name: MappingName
    mapping: MappingHeader
    objects: dict[str, ObjectSpec]

    _source_file: str = PrivateAttr(default="<memory>")
    _lines: dict[KeyPath, int] = PrivateAttr(default_factory=dict)

    @property
    def source_file(self) -> str:
        """Path of the file this spec was read from."""
        return self._source_file

    def line_of(self, path: KeyPath) -> int | None:
        """Line of `path` in the source, or of its nearest enclosing key that has one."""
        for end in range(len(path), 0, -1):
            if path[:end] in self._lines:
                return self._lines[path[:end]]
        return None

    def with_source(self, source_file: str, lines: dict[KeyPath, int]) -> MappingSpec:
        """Record where this spec came from (used by the loader)."""
        self._source_file = source_file
        self._lines = lines
        return self
