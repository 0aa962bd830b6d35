"""Turn a typed spec into the compiled mapper, checking every rule that pydantic cannot see."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from string import Template

from syncd.mapping.compiled import (
    REFUSED_NAME,
    Attachment,
    CompiledMapping,
    CreateRule,
    CutOff,
    DocumentMatch,
    MappedField,
    ObjectMapper,
    Reference,
    ScalarField,
    UniqueName,
    writes_to,
)
from syncd.mapping.filters import FilterExpression, parse_filter
from syncd.mapping.spec import (
    Direction,
    FieldSpec,
    ItemFieldSpec,
    KeyPath,
    MappingHeader,
    MappingSpec,
    MatchValueSpec,
    ObjectSpec,
    Side,
    TransformStep,
    UniqueNameSpec,
)
from syncd.mapping.transforms import (
    TRANSFORMS,
    Transform,
    TransformArgumentError,
    TransformContext,
    TransformRegistry,
    TransformValueError,
)
from syncd.mapping.values import CanonicalScalar
from syncd.systems import DealShape, InvoiceLifecycle, registration

_SIDE_LABEL = {"crm": "the CRM", "accounting": "the accounting system"}
#: A unique-name rule without alternatives: the e-mail appended, else the company (each if the object maps it).
DEFAULT_ALTERNATIVES = ("$value ($email)", "$value ($company)")


@dataclass
class Issue:
    """A rule broken at `path`; the loader turns it into a Problem with file and line."""

    path: KeyPath
    message: str


@dataclass
class ObjectCompiler:
    """Compiles one object spec, collecting every issue instead of stopping at the first."""

    header: MappingHeader
    object_names: Collection[str]
    registry: TransformRegistry = TRANSFORMS
    issues: list[Issue] = field(default_factory=list)

    def _issue(self, path: KeyPath, message: str) -> None:
        self.issues.append(Issue(path, message))

    def _known_object(self, system: str, obj: str, path: KeyPath) -> None:
        """`obj` is one of the objects `system`'s registration lists (when it lists them)."""
        known = registration(system).objects
        if known and obj not in known:
            self._issue(path, f"{system} has no object {obj!r} that syncd syncs (known: {', '.join(known)})")

    def _steps(self, steps: Sequence[TransformStep], path: KeyPath) -> tuple[Transform, ...] | None:
        built: list[Transform] = []
        ok = True
        for index, step in enumerate(steps):
            try:
                built.append(self.registry.build(step.name, step.args))
            except KeyError:
                known = ", ".join(self.registry.names())
                self._issue((*path, index), f"unknown transform {step.name!r} (known: {known})")
                ok = False
            except TransformArgumentError as exc:
                self._issue((*path, index), str(exc))
                ok = False
        return tuple(built) if ok else None

    def _scalar(self, name: str, spec: FieldSpec | ItemFieldSpec, path: KeyPath) -> ScalarField | None:
        shared = self._steps(spec.transform, (*path, "transform"))
        crm_own = self._steps(spec.crm_transform, (*path, "crm_transform"))
        acc_own = self._steps(spec.acc_transform, (*path, "acc_transform"))
        if shared is None or crm_own is None or acc_own is None:
            return None
        for side in ("crm", "acc"):
            if getattr(spec, side) is None:
                self._issue(path, f"missing key {side!r}: the field's name on that side")
        if spec.crm is None or spec.acc is None:
            return None
        default: CanonicalScalar = None
        if spec.default is not None:
            try:
                default = _canonical_default(shared, spec.default, self.header.default_currency)
            except TransformValueError as exc:
                self._issue((*path, "default"), f"default does not pass the field's transforms: {exc}")
        return ScalarField(name, spec.crm, spec.acc, crm_own + shared, acc_own + shared, default)

    def _check_invertible(
        self, spec: FieldSpec | ItemFieldSpec, scalar: ScalarField, direction: Direction, path: KeyPath
    ) -> None:
        sides: tuple[tuple[Side, str, tuple[Transform, ...]], ...] = (
            ("crm", "crm_transform", scalar.crm_steps),
            ("accounting", "acc_transform", scalar.acc_steps),
        )
        for side, own_key, steps in sides:
            if not writes_to(direction, side):
                continue
            own_count = len(getattr(spec, own_key))
            for index, step in enumerate(steps):
                if step.invertible:
                    continue
                # Point at the step itself: that is the line the operator has to change (or the direction).
                where = (own_key, index) if index < own_count else ("transform", index - own_count)
                other = "accounting_to_crm" if side == "accounting" else "crm_to_accounting"
                self._issue(
                    (*path, *where),
                    f"direction {direction!r} writes to {_SIDE_LABEL[side]}, but transform {step.name!r} "
                    f"cannot be inverted; make the field {other!r} or use an invertible transform",
                )
                break

    def compile(self, name: str, spec: ObjectSpec, broken_fields: Collection[str] = ()) -> ObjectMapper | None:
        """Compile `spec`; returns None if any issue was found. `broken_fields` failed typing already."""
        start = len(self.issues)
        base: KeyPath = ("objects", name)
        self._known_object(self.header.crm, spec.crm_object, (*base, "crm_object"))
        self._known_object(self.header.accounting, spec.acc_object, (*base, "acc_object"))
        fields: dict[str, MappedField] = {}
        references: dict[str, Reference] = {}
        for fname, fspec in spec.fields.items():
            path: KeyPath = (*base, "fields", fname)
            if fspec.link is not None:
                ref = self._reference(name, fname, fspec, path)
                if ref is not None:
                    references[fname] = ref
                continue
            mapped = self._field(spec, fname, fspec, path)
            if mapped is not None:
                fields[fname] = mapped
        known = set(spec.fields) | set(broken_fields)
        self._check_targets(spec, base)
        self._check_match_keys(spec, fields, known, base)
        depends = list(spec.depends_on)
        for index, dep in enumerate(spec.depends_on):
            if dep not in self.object_names or dep == name:
                self._issue((*base, "depends_on", index), f"depends_on names {dep!r}, which is not another object")
        depends += [r.target for r in references.values() if r.target not in depends]
        currency = self._currency(spec, fields, known, base)
        crm_filter = self._filter(spec, "crm", base, broken=bool(broken_fields))
        acc_filter = self._filter(spec, "accounting", base, broken=bool(broken_fields))
        create = self._create(spec, fields, known, base)
        attach = self._attach(spec, references, known, base)
        match = self._match(spec, references, known, base)
        sync_from = self._sync_from(spec, fields, known, base)
        if len(self.issues) > start or broken_fields:
            return None
        return ObjectMapper(
            name=name, crm_object=spec.crm_object, acc_object=spec.acc_object, direction=spec.direction,
            conflict=spec.conflict, delete_policy=spec.delete_policy, match_keys=tuple(spec.match_keys),
            depends_on=tuple(depends), create=create, fields=fields, references=references, attach=attach,
            crm_filter=crm_filter, acc_filter=acc_filter, currency=currency,
            default_currency=self.header.default_currency.upper(),
            crm_extra_fields=tuple(spec.crm_extra_fields), acc_extra_fields=tuple(spec.acc_extra_fields),
            match=match, sync_from=sync_from, deal=self._deal(spec), invoice=self._invoice(spec),
            deactivated=registration(self.header.accounting).deactivated.get(spec.acc_object),
        )  # fmt: skip

    def _deal(self, spec: ObjectSpec) -> DealShape | None:
        """The CRM's deal shape when this object is its deal object."""
        deals = registration(self.header.crm).deals
        return deals if deals is not None and deals.object == spec.crm_object else None

    def _invoice(self, spec: ObjectSpec) -> InvoiceLifecycle | None:
        """The accounting system's invoice lifecycle when this object is its invoice object."""
        invoices = registration(self.header.accounting).invoices
        return invoices if invoices is not None and invoices.object == spec.acc_object else None

    def _field(self, obj: ObjectSpec, fname: str, fspec: FieldSpec, path: KeyPath) -> MappedField | None:
        direction = fspec.direction or obj.direction
        if obj.direction != "both" and direction != obj.direction:
            self._issue(
                (*path, "direction"),
                f"direction {direction!r} is outside the object's direction {obj.direction!r}",
            )
        if fspec.items is not None:
            if fspec.transform or fspec.crm_transform or fspec.acc_transform or fspec.default is not None:
                self._issue(path, "a list field takes transforms and defaults on its items, not on itself")
                return None
            scalar = self._scalar(fname, FieldSpec(crm=fspec.crm, acc=fspec.acc), path)
            items: list[ScalarField] = []
            for iname, ispec in fspec.items.items():
                item = self._scalar(iname, ispec, (*path, "items", iname))
                if item is not None:
                    self._check_invertible(ispec, item, direction, (*path, "items", iname))
                    items.append(item)
            if scalar is None or len(items) != len(fspec.items):
                return None
            return MappedField(scalar, direction, fspec.conflict or obj.conflict, fspec.create_only, tuple(items))
        scalar = self._scalar(fname, fspec, path)
        if scalar is None:
            return None
        self._check_invertible(fspec, scalar, direction, path)
        return MappedField(scalar, direction, fspec.conflict or obj.conflict, fspec.create_only)

    def _reference(self, obj: str, fname: str, fspec: FieldSpec, path: KeyPath) -> Reference | None:
        target = fspec.link
        assert target is not None
        ok = True
        if target not in self.object_names or target == obj:
            self._issue((*path, "link"), f"link names {target!r}, which is not another object in this file")
            ok = False
        if fspec.transform or fspec.crm_transform or fspec.acc_transform or fspec.items or fspec.default:
            self._issue(path, "a link field holds record ids: no transforms, items or default")
            ok = False
        if fspec.crm is None and fspec.acc is None:
            self._issue(path, "a link field needs 'crm', 'acc' or both: where the referenced id is held")
            ok = False
        return Reference(fname, target, fspec.crm, fspec.acc) if ok and target else None

    def _check_targets(self, spec: ObjectSpec, base: KeyPath) -> None:
        # Two fields writing one target field would fight each other on every sync.
        sides: tuple[tuple[Side, str], ...] = (("crm", "crm"), ("accounting", "acc"))
        for side, attr in sides:
            writers: dict[str, str] = {}
            for fname, fspec in spec.fields.items():
                target = getattr(fspec, attr)
                direction = fspec.direction or spec.direction
                if target is None or fspec.link is not None or not writes_to(direction, side):
                    continue
                if target in writers:
                    self._issue(
                        (*base, "fields", fname, attr),
                        f"fields {writers[target]!r} and {fname!r} both write {_SIDE_LABEL[side]} field {target!r}",
                    )
                else:
                    writers[target] = fname

    def _check_match_keys(
        self, spec: ObjectSpec, fields: Mapping[str, MappedField], known: set[str], base: KeyPath
    ) -> None:
        for index, key in enumerate(spec.match_keys):
            if key not in known:
                self._issue((*base, "match_keys", index), f"match key {key!r} is not a mapped field of this object")
            elif key in fields and fields[key].items is not None:
                self._issue((*base, "match_keys", index), f"match key {key!r} is a list field")

    def _currency(
        self, spec: ObjectSpec, fields: Mapping[str, MappedField], known: set[str], base: KeyPath
    ) -> ScalarField | None:
        if spec.currency_field is None:
            return None
        if spec.currency_field not in known:
            self._issue((*base, "currency_field"), f"currency_field {spec.currency_field!r} is not a mapped field")
            return None
        mapped = fields.get(spec.currency_field)
        return mapped.scalar if mapped is not None else None

    def _filter(self, spec: ObjectSpec, side: Side, base: KeyPath, *, broken: bool) -> FilterExpression | None:
        key = "crm_filter" if side == "crm" else "acc_filter"
        source: str | None = getattr(spec, key)
        if source is None:
            return None
        attr = "crm" if side == "crm" else "acc"
        names = {n for f in spec.fields.values() if (n := getattr(f, attr)) is not None}
        names.update(spec.crm_extra_fields if side == "crm" else spec.acc_extra_fields)
        # With a broken field its name on this side is unknown, so only the syntax can be checked.
        try:
            return parse_filter(source, None if broken else frozenset(names))
        except ValueError as exc:
            extra = f" (declare fields read only by filters in {attr}_extra_fields)" if "unknown" in str(exc) else ""
            self._issue((*base, key), f"{exc}{extra}")
            return None

    def _create(
        self, spec: ObjectSpec, fields: Mapping[str, MappedField], known: set[str], base: KeyPath
    ) -> CreateRule:
        create = spec.create
        path: KeyPath = (*base, "create")
        rules: tuple[tuple[Side, bool, str], ...] = (
            ("accounting", create.crm_to_accounting, "acc_ref_field"),
            ("crm", create.accounting_to_crm, "crm_ref_field"),
        )
        for side, enabled, ref_key in rules:
            if not enabled:
                continue
            flag = "crm_to_accounting" if side == "accounting" else "accounting_to_crm"
            if not writes_to(spec.direction, side):
                self._issue((*path, flag), f"creating on {_SIDE_LABEL[side]} needs the object to write there")
            if getattr(create, ref_key) is None:
                self._issue(
                    (*path, ref_key),
                    f"{flag} creates records, so {ref_key} must name where the idempotency reference is stored",
                )
        for key in ("crm_values", "acc_values"):
            for vkey, value in getattr(create, key).items():
                if not isinstance(value, str):
                    continue
                template = Template(value)
                if not template.is_valid():
                    self._issue((*path, key, vkey), "invalid $placeholder (use $name, ${name} or $$)")
                    continue
                unknown = sorted(set(template.get_identifiers()) - known)
                if unknown:
                    self._issue((*path, key, vkey), f"placeholder(s) {', '.join(unknown)} are not mapped fields")
        if create.mark_sent and not (create.crm_to_accounting or create.accounting_to_crm):
            self._issue((*path, "mark_sent"), "mark_sent applies to records syncd creates, and creating is off")
        return CreateRule(
            create.crm_to_accounting, create.accounting_to_crm, create.crm_ref_field, create.acc_ref_field,
            dict(create.crm_values), dict(create.acc_values),
            self._unique_name(spec, "crm", fields, known, path),
            self._unique_name(spec, "accounting", fields, known, path), create.mark_sent,
        )  # fmt: skip

    def _unique_name(
        self, spec: ObjectSpec, side: Side, fields: Mapping[str, MappedField], known: set[str], path: KeyPath
    ) -> UniqueName | None:
        """The unique-name rule of creates on `side`, checked: a field written only on create, and names to try."""
        attr = "crm" if side == "crm" else "acc"
        rule: UniqueNameSpec | None = getattr(spec.create, f"{attr}_unique_name")
        if rule is None:
            return None
        path = (*path, f"{attr}_unique_name")
        if not (spec.create.accounting_to_crm if side == "crm" else spec.create.crm_to_accounting):
            self._issue(path, f"a unique-name rule for {_SIDE_LABEL[side]}, but creating there is off")
        mapped = [
            f for f in fields.values()
            if f.items is None and f.writes_to(side) and f.scalar.side_name(side) == rule.field
        ]  # fmt: skip
        if any(not f.create_only for f in mapped):
            # Compared after the create, the name chosen would differ from the source's on every later pass
            # and be written back (or refused again): the rule only holds for a name written once.
            self._issue(
                (*path, "field"),
                f"field {rule.field!r} is compared on every pass after the create (mapped as {mapped[0].name!r}); "
                f"make that field create_only = true or write the name in {attr}_values",
            )
        elif not mapped and rule.field not in getattr(spec.create, f"{attr}_values"):
            self._issue(
                (*path, "field"),
                f"field {rule.field!r} is not written when creating on {_SIDE_LABEL[side]}: "
                f"name it in {attr}_values or map it with create_only = true",
            )
        placeholders = known | {REFUSED_NAME}
        if rule.alternatives is None:
            # The default: the e-mail appended, else the company, as far as this object maps them.
            chosen = [a for a in DEFAULT_ALTERNATIVES if set(Template(a).get_identifiers()) <= placeholders]
            if not chosen:
                self._issue(path, "no mapped 'email' or 'company' field to tell names apart: give alternatives")
            return UniqueName(rule.field, tuple(chosen))
        if not rule.alternatives:
            self._issue((*path, "alternatives"), "give at least one alternative name (e.g. \"$value ($email)\")")
        for index, alternative in enumerate(rule.alternatives):
            template = Template(alternative)
            if not template.is_valid():
                self._issue((*path, "alternatives", index), "invalid $placeholder (use $name, ${name} or $$)")
                continue
            unknown = sorted(set(template.get_identifiers()) - placeholders)
            if unknown:
                self._issue(
                    (*path, "alternatives", index),
                    f"placeholder(s) {', '.join(unknown)} are not mapped fields ($value is the refused name)",
                )
        return UniqueName(rule.field, tuple(rule.alternatives))

    def _match(
        self, spec: ObjectSpec, references: Mapping[str, Reference], known: set[str], base: KeyPath
    ) -> DocumentMatch | None:
        """The document match: a reference compared exactly, or customer + amount + date within tolerances."""
        match = spec.match
        if match is None:
            return None
        path: KeyPath = (*base, "match")
        if spec.match_keys:
            self._issue(path, "an object is matched on match_keys or on [match], not both")
        if spec.attach is not None:
            self._issue(path, "an attached object has no records of its own on one side to match")
        if not (spec.create.crm_to_accounting or spec.create.accounting_to_crm):
            self._issue(path, "match links documents that would otherwise be created, and creating is off")
        near = {"customer": match.customer, "amount": match.amount, "date": match.date}
        missing = [k for k, v in near.items() if v is None]
        if match.reference is None and missing:
            self._issue(path, f"match needs 'reference', or 'customer', 'amount' and 'date' together "
                              f"(missing: {', '.join(missing)}); a customer alone is never enough")  # fmt: skip
        elif 0 < len(missing) < len(near):
            self._issue(path, f"'customer', 'amount' and 'date' go together (missing: {', '.join(missing)})")
        customer = match.customer
        # A field that failed typing (known, but not in spec.fields), or a link field that failed, was reported.
        broken = customer in known and (customer not in spec.fields or spec.fields[customer].link is not None)
        if customer is not None and customer not in references and not broken:
            self._issue((*path, "customer"), f"match.customer {customer!r} is not a link field of this object")
        compared: dict[str, ScalarField | None] = {}
        for key in ("reference", "amount", "date"):
            value: MatchValueSpec | None = getattr(match, key)
            if value is None:
                compared[key] = None
                continue
            item = ItemFieldSpec(crm=value.crm, acc=value.acc, transform=value.transform)
            compared[key] = self._scalar(key, item, (*path, key))
        return DocumentMatch(
            compared["reference"], customer, compared["amount"], match.amount_tolerance, compared["date"],
            match.tolerance_days, self.header.default_currency.upper(),
        )  # fmt: skip

    def _sync_from(
        self, spec: ObjectSpec, fields: Mapping[str, MappedField], known: set[str], base: KeyPath
    ) -> CutOff | None:
        """The history cut-off: the canonical field that dates a record, and the moment (default: activation)."""
        if spec.sync_from is None:
            return None
        name = spec.sync_from.field
        path: KeyPath = (*base, "sync_from", "field")
        if name not in known:
            self._issue(path, f"sync_from.field {name!r} is not a mapped field of this object")
        elif name in fields and fields[name].items is not None:
            self._issue(path, f"sync_from.field {name!r} is a list field; name a date field")
        since = spec.sync_from.since
        if isinstance(since, datetime) and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)  # a TOML local date-time is read as UTC, like every stored moment
        return CutOff(name, since)

    def _attach(
        self, spec: ObjectSpec, references: Mapping[str, Reference], known: set[str], base: KeyPath
    ) -> Attachment | None:
        if spec.attach is None:
            return None
        path: KeyPath = (*base, "attach")
        ref = spec.attach.reference
        if ref not in references:
            if ref not in known or (ref in spec.fields and spec.fields[ref].link is None):
                self._issue((*path, "reference"), f"attach.reference {ref!r} is not a link field of this object")
            return None
        side = spec.attach.side
        if spec.create.accounting_to_crm if side == "crm" else spec.create.crm_to_accounting:
            self._issue(path, f"an object attached on {_SIDE_LABEL[side]} cannot also create records there")
        return Attachment(ref, side)


def _canonical_default(steps: Sequence[Transform], value: object, default_currency: str) -> CanonicalScalar:
    current: object = value
    for step in steps:
        current = step.to_canonical(current, TransformContext(currency=default_currency))
    return current  # type: ignore[return-value]  # output of a transform step is canonical


def dependency_order(objects: Mapping[str, ObjectMapper]) -> tuple[list[str], list[str]]:
    """Objects with their dependencies first; the second list names objects caught in a cycle."""
    order: list[str] = []
    state: dict[str, int] = {}
    cyclic: list[str] = []

    def visit(name: str) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cyclic.append(name)
            return
        state[name] = 1
        for dep in objects[name].depends_on:
            if dep in objects:
                visit(dep)
        state[name] = 2
        order.append(name)

    for name in objects:
        visit(name)
    return order, cyclic


def compile_objects(
    spec: MappingSpec, registry: TransformRegistry = TRANSFORMS
) -> tuple[CompiledMapping | None, list[Issue]]:
    """Compile a fully typed spec; returns the mapping (None if anything is wrong) and every issue."""
    compiler = ObjectCompiler(spec.mapping, set(spec.objects), registry)
    compiled: dict[str, ObjectMapper] = {}
    for name, obj in spec.objects.items():
        mapper = compiler.compile(name, obj)
        if mapper is not None:
            compiled[name] = mapper
    issues = compiler.issues
    order, cyclic = dependency_order(compiled)
    for name in cyclic:
        issues.append(Issue(("objects", name, "depends_on"), f"object {name!r} depends on itself through a cycle"))
    if issues or len(compiled) != len(spec.objects):
        return None, issues
    return CompiledMapping(spec.mapping.crm, spec.mapping.accounting, compiled, tuple(order), spec), issues
