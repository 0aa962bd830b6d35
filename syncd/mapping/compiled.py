"""The compiled mapper the engine uses: records to canonical values and back, filters, rules per object.

Build one with `syncd.mapping.loader.load_mappings` (or `compiler.compile_spec`); never by hand.

Canonical space: every mapped field has a canonical name (its key in the mapping file). Each side's value
is run through that side's transforms into a canonical value; equal canonical values mean "in sync", which
is what stops echoes. Writing runs the transforms backwards. Reference fields (`link = "customer"`) are not
compared: they name another mapped object and the engine resolves them through the link table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cached_property
from string import Template
from typing import Literal, NamedTuple

from syncd.errors import SyncdError
from syncd.mapping.filters import FilterExpression
from syncd.mapping.spec import ConflictRule, DeletePolicy, Direction, MappingSpec, Side
from syncd.mapping.transforms import TextCase, Transform, TransformContext, TransformValueError
from syncd.mapping.values import (
    CanonicalScalar,
    CanonicalValue,
    FieldScalar,
    FieldValue,
    RecordLike,
    fields_of,
    lookup,
)
from syncd.systems import DealShape, InvoiceLifecycle
from syncd.textkeys import text_key

Record = RecordLike | Mapping[str, FieldValue]


class FieldConversionError(SyncdError):
    """A record's value could not be converted for one field; the record, not the mapping, is at fault."""

    def __init__(self, obj: str, field_name: str, side: Side, message: str) -> None:
        self.object = obj
        self.field = field_name
        self.side = side
        super().__init__(f"{obj}.{field_name} ({side}): {message}")


def writes_to(direction: Direction, side: Side) -> bool:
    """Whether a field or object with `direction` may write values onto `side`."""
    if direction == "both":
        return True
    return direction == ("accounting_to_crm" if side == "crm" else "crm_to_accounting")


def _apply(steps: Sequence[Transform], value: object, ctx: TransformContext) -> CanonicalScalar:
    if value is None or (isinstance(value, str) and not value.strip()):
        # '' and missing mean the same thing on every system we sync; treat both as "no value".
        return None
    current: object = value
    for step in steps:
        current = step.to_canonical(current, ctx)
        if current is None:
            return None
    return current  # type: ignore[return-value]  # the last step returned a CanonicalScalar


class _Reader(NamedTuple):
    """How one mapped field is read on one side, worked out once per mapper instead of once per record."""

    name: str
    path: str
    steps: tuple[Transform, ...]
    default: CanonicalScalar
    # For a field whose only step is a text transform: what it makes of text (blank: ''), called directly.
    fold: Callable[[str], str] | None
    # Set for a list field (line items), which is read entry by entry.
    listed: MappedField | None


def _reader(side: Side, mapped: MappedField) -> _Reader:
    scalar = mapped.scalar
    steps = scalar.crm_steps if side == "crm" else scalar.acc_steps
    fold = steps[0].fold if len(steps) == 1 and isinstance(steps[0], TextCase) else None
    listed = mapped if mapped.items is not None else None
    return _Reader(scalar.name, scalar.side_name(side), steps, scalar.default, fold, listed)


_ABSENT = object()


def _invert(steps: Sequence[Transform], value: CanonicalScalar) -> FieldScalar:
    current: FieldScalar = value
    for step in reversed(steps):
        if current is None:
            return None
        current = step.to_side(current)
    return current


#: The canonical names a mapping file gives an invoice's lines and their parts (README, "Mapping files"), so that
#: a deal without line items can be invoiced as one line of its amount, named after the deal.
LINES_FIELD = "line_items"
LINE_NAME = "name"
LINE_PRICE = frozenset({"rate", "amount", "price"})
LINE_QUANTITY = "quantity"


@dataclass(frozen=True)
class ScalarField:
    """A mapped value (or a line item's sub-field): its names on each side and the transforms each way."""

    name: str
    crm_name: str
    acc_name: str
    crm_steps: tuple[Transform, ...]
    acc_steps: tuple[Transform, ...]
    default: CanonicalScalar = None

    def canonical(self, side: Side, fields: Mapping[str, object], ctx: TransformContext) -> CanonicalScalar:
        """Canonical value of this field on `side`; the default stands in for a missing value."""
        steps = self.crm_steps if side == "crm" else self.acc_steps
        raw = lookup(fields, self.crm_name if side == "crm" else self.acc_name)
        value = _apply(steps, raw, ctx)
        return self.default if value is None else value

    def to_side(self, side: Side, value: CanonicalScalar) -> FieldScalar:
        """The value to write on `side` for canonical `value`."""
        return _invert(self.crm_steps if side == "crm" else self.acc_steps, value)

    def side_name(self, side: Side) -> str:
        """This field's name on `side`."""
        return self.crm_name if side == "crm" else self.acc_name


@dataclass(frozen=True)
class MappedField:
    """A top-level mapped field with its sync rules; `items` is set for list fields such as line items."""

    scalar: ScalarField
    direction: Direction
    conflict: ConflictRule
    create_only: bool = False
    items: tuple[ScalarField, ...] | None = None

    @property
    def name(self) -> str:
        """Canonical name."""
        return self.scalar.name

    def writes_to(self, side: Side) -> bool:
        """Whether this field's direction lets syncd write it on `side`."""
        return writes_to(self.direction, side)


@dataclass(frozen=True)
class Reference:
    """A field naming a record of another mapped object; the engine translates its id via the link table.

    `crm_field`/`acc_field` hold the referenced record's id on each side (None on the side the object is
    attached to, where the referenced record *is* the target).
    """

    name: str
    target: str
    crm_field: str | None
    acc_field: str | None

    def side_field(self, side: Side) -> str | None:
        """The field holding the referenced id on `side`."""
        return self.crm_field if side == "crm" else self.acc_field


#: The placeholder of a unique-name alternative that stands for the refused name.
REFUSED_NAME = "value"


@dataclass(frozen=True)
class UniqueName:
    """A field a side keeps unique (an accounting customer's display name), written only on create, and the templates of
    the names a refused create is tried again under, in turn."""

    field: str
    alternatives: tuple[str, ...]

    def candidates(self, refused: str, canonical: Mapping[str, CanonicalValue]) -> list[str]:
        """The names to try after `refused` was taken, in order: each alternative filled in from the source's
        canonical values, passed over when a placeholder is blank or it gives a name already in the list."""
        values = {k: "" if v is None else str(v) for k, v in canonical.items() if not isinstance(v, tuple)}
        values[REFUSED_NAME] = refused
        seen = {text_key(refused)}
        names: list[str] = []
        for alternative in self.alternatives:
            template = Template(alternative)
            if any(not values.get(key, "").strip() for key in template.get_identifiers()):
                continue
            name = template.safe_substitute(values).strip()
            if name and text_key(name) not in seen:
                seen.add(text_key(name))
                names.append(name)
        return names


@dataclass(frozen=True)
class CreateRule:
    """Which side may create records on the other, and where each side stores the idempotency reference."""

    crm_to_accounting: bool
    accounting_to_crm: bool
    crm_ref_field: str | None
    acc_ref_field: str | None
    crm_values: Mapping[str, str | int | bool] = field(default_factory=dict)
    acc_values: Mapping[str, str | int | bool] = field(default_factory=dict)
    crm_unique_name: UniqueName | None = None
    acc_unique_name: UniqueName | None = None
    # After a create, reach the status the record's fields ask for by the system's action (else: its initial one).
    mark_sent: bool = False

    def may_create_on(self, side: Side) -> bool:
        """Whether an unlinked record on the other side may create a new record on `side`."""
        return self.accounting_to_crm if side == "crm" else self.crm_to_accounting

    def ref_field(self, side: Side) -> str | None:
        """The field on `side` that stores syncd's deterministic reference."""
        return self.crm_ref_field if side == "crm" else self.acc_ref_field

    def unique_name(self, side: Side) -> UniqueName | None:
        """The field `side` keeps unique and the names to try when it is taken, if the mapping has the rule."""
        return self.crm_unique_name if side == "crm" else self.acc_unique_name


@dataclass(frozen=True)
class Attachment:
    """On `side` this object writes onto the record linked through `reference` instead of its own record."""

    reference: str
    side: Side


@dataclass(frozen=True)
class DocumentMatch:
    """How a document already on the other side is recognised the first time: by `reference` exactly, else by
    the same linked `customer` (a reference name) with `amount` and `date` within their tolerances."""

    reference: ScalarField | None
    customer: str | None
    amount: ScalarField | None
    amount_tolerance: Decimal
    date: ScalarField | None
    tolerance_days: int
    currency: str = "USD"  # the mapping's default currency, which money transforms round in

    def value(self, which: ScalarField | None, side: Side, record: Record) -> CanonicalScalar:
        """The canonical value of one compared field of a record from `side` (None when it has none)."""
        if which is None:
            return None
        try:
            return which.canonical(side, fields_of(record), TransformContext(currency=self.currency))
        except TransformValueError:
            return None  # a value that cannot be read never matches; the record's own sync reports it

    def near(self, mine: Record, my_side: Side, theirs: Record, their_side: Side) -> bool:
        """Whether two documents agree on amount and date within the tolerances (every compared value present)."""
        for which in (self.amount, self.date):
            a, b = self.value(which, my_side, mine), self.value(which, their_side, theirs)
            if a is None or b is None:
                return False
            if which is self.amount and not _within_amount(a, b, self.amount_tolerance):
                return False
            if which is self.date and not _within_days(a, b, self.tolerance_days):
                return False
        return True


def _within_amount(a: CanonicalScalar, b: CanonicalScalar, tolerance: Decimal) -> bool:
    numbers = [Decimal(v) for v in (a, b) if isinstance(v, int | Decimal) and not isinstance(v, bool)]
    return len(numbers) == 2 and abs(numbers[0] - numbers[1]) <= tolerance


def _day(value: CanonicalScalar) -> date | None:
    if isinstance(value, datetime):
        return (value if value.tzinfo is None else value.astimezone(UTC)).date()
    return value if isinstance(value, date) else None


def _within_days(a: CanonicalScalar, b: CanonicalScalar, days: int) -> bool:
    first, second = _day(a), _day(b)
    return first is not None and second is not None and abs((first - second).days) <= days


@dataclass(frozen=True)
class CutOff:
    """`sync_from`: records dated (by canonical `field`) before `since` are history; `since` None means the
    moment the mapping was first activated."""

    field: str
    since: date | datetime | None

    def is_before(self, value: CanonicalValue, cut_off: date | datetime) -> bool:
        """Whether a record dated `value` lies before `cut_off`; a date compares by day (a deal closed on the
        day of activation is not history), an undated record is not history."""
        if isinstance(value, datetime) and isinstance(cut_off, datetime):
            aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
            return aware < cut_off
        day, limit = _day(value) if not isinstance(value, tuple) else None, _day(cut_off)
        return day is not None and limit is not None and day < limit


@dataclass(frozen=True)
class ObjectMapper:
    """Everything the engine needs to sync one object pair, compiled and checked."""

    name: str
    crm_object: str
    acc_object: str
    direction: Direction
    conflict: ConflictRule
    delete_policy: DeletePolicy
    match_keys: tuple[str, ...]
    depends_on: tuple[str, ...]
    create: CreateRule
    fields: Mapping[str, MappedField]
    references: Mapping[str, Reference]
    attach: Attachment | None
    crm_filter: FilterExpression | None
    acc_filter: FilterExpression | None
    currency: ScalarField | None
    default_currency: str
    crm_extra_fields: tuple[str, ...] = ()
    acc_extra_fields: tuple[str, ...] = ()
    match: DocumentMatch | None = None
    sync_from: CutOff | None = None
    # The lifecycle words of the two systems, from their registrations: set when this object is the CRM's deal
    # object, and when it is the accounting system's invoice object (then the invoice lifecycle applies).
    deal: DealShape | None = None
    invoice: InvoiceLifecycle | None = None
    # The field and value an accounting record of this object shows once deactivated, if its system says.
    deactivated: tuple[str, str] | None = None

    # --- reading -----------------------------------------------------------------------------------
    def crm_to_canonical(self, record: Record) -> dict[str, CanonicalValue]:
        """Canonical values of every mapped field of a CRM record."""
        return self._to_canonical("crm", fields_of(record))

    def acc_to_canonical(self, record: Record) -> dict[str, CanonicalValue]:
        """Canonical values of every mapped field of an accounting record."""
        return self._to_canonical("accounting", fields_of(record))

    def to_canonical(self, side: Side, record: Record) -> dict[str, CanonicalValue]:
        """Canonical values of a record from `side`."""
        return self._to_canonical(side, fields_of(record))

    @cached_property
    def _readers(self) -> dict[Side, tuple[_Reader, ...]]:
        # Mapping runs per record on both sides: each field's path and steps are looked up once, here.
        return {side: tuple(_reader(side, m) for m in self.fields.values()) for side in ("crm", "accounting")}

    @cached_property
    def _key_readers(self) -> dict[Side, tuple[_Reader, ...]]:
        keys = [self.fields[n] for n in self.match_keys if n in self.fields]
        return {side: tuple(_reader(side, m) for m in keys) for side in ("crm", "accounting")}

    @cached_property
    def _default_context(self) -> TransformContext:
        return TransformContext(currency=self.default_currency)

    def _context(self, side: Side, fields: Mapping[str, FieldValue]) -> TransformContext:
        if self.currency is None:
            return self._default_context  # the same for every record: one shared (frozen) context
        code = lookup(fields, self.currency.side_name(side))
        text = code.strip().upper() if isinstance(code, str) else ""
        return TransformContext(currency=text or self.default_currency)

    def _to_canonical(
        self, side: Side, fields: Mapping[str, FieldValue], readers: Sequence[_Reader] | None = None
    ) -> dict[str, CanonicalValue]:
        ctx = self._context(side, fields)
        out: dict[str, CanonicalValue] = {}
        name = ""
        try:
            for name, path, steps, default, fold, listed in self._readers[side] if readers is None else readers:
                if listed is not None:
                    out[name] = self._list_canonical(side, listed, fields, ctx)
                    continue
                raw = fields.get(path, _ABSENT)
                if raw is _ABSENT:
                    raw = lookup(fields, path)
                # Text through one text transform (most fields) skips the generic chain: same value, fewer calls.
                value = (fold(raw) or None) if fold is not None and type(raw) is str else _apply(steps, raw, ctx)
                out[name] = default if value is None else value
        except TransformValueError as exc:
            raise FieldConversionError(self.name, name, side, str(exc)) from exc
        return out

    @staticmethod
    def _list_canonical(
        side: Side, mapped: MappedField, fields: Mapping[str, FieldValue], ctx: TransformContext
    ) -> CanonicalValue:
        raw = lookup(fields, mapped.scalar.side_name(side))
        if raw is None:
            # Absent is "unknown" (some list endpoints omit line items), not "empty": never write it as [].
            return None
        if not isinstance(raw, list | tuple):
            raise TransformValueError(f"expected a list, got {type(raw).__name__}")
        items = mapped.items or ()
        result: list[Mapping[str, CanonicalScalar]] = []
        for entry in raw:
            if not isinstance(entry, Mapping):
                raise TransformValueError(f"expected list entries to be tables, got {type(entry).__name__}")
            result.append({sub.name: sub.canonical(side, entry, ctx) for sub in items})
        return tuple(result)

    # --- writing -----------------------------------------------------------------------------------
    def canonical_to_crm(
        self, changes: Mapping[str, CanonicalValue], *, creating: bool = False
    ) -> dict[str, FieldValue]:
        """CRM field values to write for canonical `changes` (fields that may not be written are dropped)."""
        return self.canonical_to_side("crm", changes, creating=creating)

    def canonical_to_acc(
        self, changes: Mapping[str, CanonicalValue], *, creating: bool = False
    ) -> dict[str, FieldValue]:
        """Accounting field values to write for canonical `changes`; see `canonical_to_side`."""
        return self.canonical_to_side("accounting", changes, creating=creating)

    def canonical_to_side(
        self, side: Side, changes: Mapping[str, CanonicalValue], *, creating: bool = False
    ) -> dict[str, FieldValue]:
        """Side field values for canonical `changes`.

        Fields whose direction does not write to `side` are dropped, as are `create_only` fields unless
        `creating`; when creating, the object's create values (templates over canonical names) are added.
        The reference field and link fields are the engine's to fill in. Unknown names raise KeyError.
        """
        out: dict[str, FieldValue] = {}
        for name, value in changes.items():
            mapped = self.fields[name]
            if not mapped.writes_to(side) or (mapped.create_only and not creating):
                continue
            try:
                out[mapped.scalar.side_name(side)] = self._value_to_side(side, mapped, value)
            except TransformValueError as exc:
                raise FieldConversionError(self.name, name, side, str(exc)) from exc
        if creating:
            values = self.create.crm_values if side == "crm" else self.create.acc_values
            names = {k: "" if v is None else str(v) for k, v in changes.items() if not isinstance(v, tuple)}
            for key, template in values.items():
                out.setdefault(key, Template(template).safe_substitute(names).strip()
                               if isinstance(template, str) else template)  # fmt: skip
        return out

    @staticmethod
    def _value_to_side(side: Side, mapped: MappedField, value: CanonicalValue) -> FieldValue:
        if mapped.items is None:
            if isinstance(value, tuple):
                raise TransformValueError("expected a single value, got a list")
            return mapped.scalar.to_side(side, value)
        if value is None:
            return None
        if not isinstance(value, tuple):
            raise TransformValueError("expected a list of items")
        return [
            {sub.side_name(side): sub.to_side(side, entry.get(sub.name)) for sub in mapped.items}
            for entry in value
        ]

    # --- rules -------------------------------------------------------------------------------------
    def accepts_crm(self, record: Record) -> bool:
        """Whether a CRM record takes part in the sync (its filter holds); raises FilterError if it cannot tell."""
        return self.crm_filter is None or self.crm_filter.evaluate(fields_of(record))

    def accepts_acc(self, record: Record) -> bool:
        """Whether an accounting record takes part in the sync."""
        return self.acc_filter is None or self.acc_filter.evaluate(fields_of(record))

    def match_key(self, side: Side, record: Record) -> tuple[CanonicalScalar, ...] | None:
        """Normalised match-key values for first-time linking; None if any is missing (never match on blanks).

        Text is trimmed and its ASCII letters lower-cased on top of the field's transforms, so 'Ann@X.com '
        finds 'ann@x.com'; never Unicode case folding, which would make 'straße@x' and 'strasse@x' one person.
        """
        if not self.match_keys:
            return None
        # Only the key's fields: matching runs on every unlinked record, and most mapped fields are not keys.
        canonical = self._to_canonical(side, fields_of(record), self._key_readers[side])
        key: list[CanonicalScalar] = []
        for name in self.match_keys:
            value = canonical.get(name)
            if isinstance(value, str):
                value = text_key(value) or None
            if value is None or isinstance(value, tuple):
                return None
            key.append(value)
        return tuple(key)

    def field_direction(self, name: str) -> Direction:
        """Direction of one canonical field."""
        return self.fields[name].direction

    def field_conflict(self, name: str) -> ConflictRule:
        """Conflict rule of one canonical field."""
        return self.fields[name].conflict

    def read_fields(self, side: Side) -> frozenset[str]:
        """Every field name on `side` this object needs a connector to fetch."""
        names: set[str] = {f.scalar.side_name(side) for f in self.fields.values()}
        names.update(n for r in self.references.values() if (n := r.side_field(side)) is not None)
        names.update(self.crm_extra_fields if side == "crm" else self.acc_extra_fields)
        expression = self.crm_filter if side == "crm" else self.acc_filter
        if expression is not None:
            names.update(expression.names)
        if (ref := self.create.ref_field(side)) is not None:
            names.add(ref)
        if self.match is not None:
            compared = (self.match.reference, self.match.amount, self.match.date)
            names.update(f.side_name(side) for f in compared if f is not None)
        return frozenset(names)


@dataclass(frozen=True)
class CompiledMapping:
    """A whole mapping file, compiled: its objects in dependency order (dependencies first)."""

    crm_system: str
    acc_system: str
    objects: Mapping[str, ObjectMapper]
    order: tuple[str, ...]
    spec: MappingSpec

    @property
    def source_file(self) -> str:
        """The file this mapping was read from."""
        return self.spec.source_file

    @property
    def name(self) -> str:
        """The mapping's stable name (its file's `name`), which its links, cursors and dead letters key on."""
        return self.spec.name

    def for_object(self, side: Side, system_object: str) -> list[ObjectMapper]:
        """Mapped objects reading `system_object` on `side` (a CRM's deals feed both invoices and payments)."""
        attr: Literal["crm_object", "acc_object"] = "crm_object" if side == "crm" else "acc_object"
        return [self.objects[n] for n in self.order if getattr(self.objects[n], attr) == system_object]
