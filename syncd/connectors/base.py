"""What the engine may ask of an external system: the connector protocol and the plain values it trades in."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Literal, Protocol, TypeAlias, runtime_checkable

from syncd.errors import ConnectorError

# A field value as it leaves a connector: vendor JSON is already parsed into these types (money as Decimal,
# dates as date, timestamps as aware datetime) and nested structures flattened into dotted names, except
# line-like lists (invoice line items, payment applications), which stay lists of mappings.
FieldValue: TypeAlias = (
    str | int | Decimal | bool | date | datetime | list[Mapping[str, "FieldValue"]] | None
)
Fields: TypeAlias = Mapping[str, FieldValue]


@dataclass(frozen=True)
class Record:
    """One record of one system, as plain typed values."""

    system: str
    object: str
    id: str
    fields: Fields
    modified_at: datetime
    deleted: bool = False
    # Set when the system merged this record into another (CRMs merge duplicate contacts and companies).
    merged_into: str | None = None
    # Fields a list answer leaves out (an invoice's line items and addresses, a deal's associations):
    # `get_many` reads them, which the engine asks for only when the mapping needs them and the record changed.
    missing: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Page:
    """A page of changed records and the cursor that may be committed once this page (and all before it)
    has been applied; the cursor never passes the time the read started."""

    records: Sequence[Record]
    cursor: datetime


@dataclass(frozen=True)
class Deletion:
    """A record the system reports as deleted (or merged away) since a point in time."""

    object: str
    id: str
    deleted_at: datetime
    merged_into: str | None = None


@dataclass(frozen=True)
class Create:
    """A record to create, with the deterministic reference the connector stores on it for idempotence."""

    reference: str
    fields: Fields


@dataclass(frozen=True)
class Update:
    """Changes to write to an existing record."""

    id: str
    fields: Fields


@dataclass(frozen=True)
class WriteOutcome:
    """The result of one create/update/delete in a batch: the record id, or the typed error for it."""

    id: str | None
    error: ConnectorError | None = None
    # For creates: True when the record was found by its reference (an earlier attempt had created it).
    existed: bool = False
    # The record's modification stamp after this write, where the answer says it: the echo of our own
    # write then reads as already seen.
    modified_at: datetime | None = None

    @property
    def ok(self) -> bool:
        """Whether this write succeeded."""
        return self.error is None


@dataclass(frozen=True)
class FieldInfo:
    """A field as the system describes it (describe/properties), for mapping validation."""

    name: str
    type: str
    label: str = ""
    createable: bool = True
    updateable: bool = True
    required: bool = False
    unique: bool = False
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class ActionField:
    """A field the system moves only by actions (`act`), never by writing it: a create leaves it at `initial`
    (an invoice created a draft and marked sent, or void, by an action)."""

    field: str
    initial: str


ChangeKind = Literal["created", "updated", "deleted", "merged", "restored"]


@dataclass(frozen=True)
class ChangeEvent:
    """One change announced by a webhook: enough to fetch the record, never trusted as its content."""

    event_id: str
    object: str
    record_id: str
    kind: ChangeKind
    occurred_at: datetime
    merged_into: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class WebhookRequest:
    """The parts of an HTTP request a connector needs to verify a webhook (raw body, exact URL)."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes
    query: Mapping[str, str] = field(default_factory=dict)


class WebhookRejected(Exception):
    """A webhook that must not reach the inbox: 401 for a bad signature or stale timestamp, 400 for a bad body."""

    def __init__(self, status: Literal[400, 401], reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(f"{status}: {reason}")


@runtime_checkable
class Connector(Protocol):
    """One connection to one system. Every method raises only `syncd.errors.ConnectorError` subclasses."""

    name: str
    system: str
    #: Per object, the field the system moves only by actions, if it has one (capability, declared per system).
    action_fields: Mapping[str, ActionField]

    async def start(self) -> None:
        """Open pools and executors; load or refresh the token lazily on first use."""

    async def close(self) -> None:
        """Release every resource the connector holds."""

    def objects(self) -> Sequence[str]:
        """The object names this connector serves (its own naming: `contacts`, `Contact`, `invoices`...)."""
        ...

    def changes(
        self, object: str, since: datetime | None, overlap: timedelta, expected: int = 0
    ) -> AsyncIterator[Page]:
        """Records of `object` modified after `since - overlap` (all when `since` is None), oldest first, as
        the list answers give them: fields they lack are named in `Record.missing`, never fetched here.
        `expected` is how many of them syncd already knows of (a hint: a list read by page numbers can start at
        its far end and so needs no overlap between pages); a connector may ignore it."""
        ...

    async def get_many(self, object: str, ids: Sequence[str]) -> Mapping[str, Record]:
        """Full records by id (line items included); ids that do not exist are absent from the result."""
        ...

    async def create_many(self, object: str, items: Sequence[Create]) -> Sequence[WriteOutcome]:
        """Create records (through batch endpoints where the system has them), one outcome per item in order.
        After an unknown outcome the connector looks each reference up before creating again."""
        ...

    async def update_many(self, object: str, items: Sequence[Update]) -> Sequence[WriteOutcome]:
        """Update records, one outcome per item in order."""
        ...

    async def delete_many(self, object: str, ids: Sequence[str]) -> Sequence[WriteOutcome]:
        """Archive/delete records, one outcome per id in order; an already-deleted record counts as done."""
        ...

    async def find_by_field(self, object: str, field: str, values: Sequence[str]) -> Mapping[str, list[Record]]:
        """Records whose `field` equals each value exactly (escaped, never injected); for match keys
        (email compared case-insensitively where the system does) and create references. Records come as
        the lookup answers them (see `Record.missing`)."""
        ...

    async def deletions(self, object: str, since: datetime) -> Sequence[Deletion] | None:
        """Records deleted since `since`, or None when the system cannot list deletions."""
        ...

    async def describe(self, object: str) -> Mapping[str, FieldInfo]:
        """The object's fields as the live system describes them."""
        ...

    async def act(self, object: str, id: str, action: str) -> None:
        """A state transition the system models as an action (an invoice's `void`, `sent`, `draft`)."""
        ...

    def verify_webhook(self, request: WebhookRequest) -> None:
        """Check the webhook's signature and freshness; raise `WebhookRejected` if it must be refused."""
        ...

    def parse_webhook(self, request: WebhookRequest) -> Sequence[ChangeEvent]:
        """Turn a verified webhook body into change events; raise `WebhookRejected(400)` if malformed."""
        ...

    async def register_webhooks(self, url: str, fields: Mapping[str, Collection[str]]) -> bool:
        """Point the system's webhooks at `url` where its API allows it; False when it must be done by hand.
        `fields` names what the active mappings read (object → field names), for systems that subscribe per
        object or field; the others ignore it."""
        ...


def utc_floor(moment: datetime, read_started: datetime) -> datetime:
    """A cursor value never later than the time the read started (changes may still be landing)."""
    return min(moment, read_started)
