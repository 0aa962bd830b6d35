"""The portal's CRM records: create, update, archive, merge, unique properties and search-index snapshots."""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from syncd.sandbox.hubspot.catalog import (
    MODIFIED_PROPERTY,
    SINGULAR,
    PropertyDef,
    default_groups,
    default_properties,
)
from syncd.sandbox.hubspot.errors import HubSpotError, validation_error
from syncd.sandbox.hubspot.values import InvalidValue, iso_ms, normalise

# How many past states a record keeps for the simulated search-index lag.
_VERSIONS_KEPT = 6

ChangeListener = Callable[[str, str, "Record", dict[str, Any]], None]  # (kind, object, record, extra)


@dataclass
class Record:
    """One CRM record; property values are stored as HubSpot returns them (strings)."""

    object_type: str
    id: int
    properties: dict[str, str]
    created_at: float
    updated_at: float
    archived_at: float | None = None
    merged_into: int | None = None
    # (time, properties, archived) snapshots: what the search index saw, newest last.
    versions: list[tuple[float, dict[str, str], bool]] = field(default_factory=list)

    @property
    def archived(self) -> bool:
        """Whether the record is archived (deleted or merged away)."""
        return self.archived_at is not None

    def snapshot(self) -> None:
        """Remember the current state for the search index."""
        self.versions.append((self.updated_at, dict(self.properties), self.archived))
        del self.versions[:-_VERSIONS_KEPT]

    def as_seen_at(self, moment: float) -> tuple[dict[str, str], bool] | None:
        """The properties and archived flag the search index held at `moment`; None if not yet indexed."""
        for when, props, archived in reversed(self.versions):
            if when <= moment:
                return props, archived
        return None

    def to_state(self) -> dict[str, Any]:
        """JSON-able form for the state file and the control plane's records listing."""
        return {
            "id": str(self.id),
            "object": self.object_type,
            "properties": dict(self.properties),
            "createdAt": iso_ms(self.created_at),
            "updatedAt": iso_ms(self.updated_at),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "archived": self.archived,
            "archived_at": self.archived_at,
            "merged_into": None if self.merged_into is None else str(self.merged_into),
        }


class CrmStore:
    """Every record of the portal, its property definitions and the unique-value indexes."""

    def __init__(self, *, clock: Callable[[], float], on_change: ChangeListener | None = None) -> None:
        self.clock = clock
        self.on_change = on_change
        self.properties: dict[str, dict[str, PropertyDef]] = default_properties()
        self.groups: dict[str, dict[str, str]] = default_groups(self.properties)  # object -> name -> label
        self.records: dict[str, dict[int, Record]] = {obj: {} for obj in self.properties}
        self._next_id = 1001
        # (object, property) -> value -> record id, for every property with hasUniqueValue.
        self._unique: dict[tuple[str, str], dict[str, int]] = {}
        # Per object: every record id in ascending order (list pages start after an id).
        self._ids: dict[str, list[int]] = {obj: [] for obj in self.properties}
        # Per object: (time, id) of every state the search index was given, in the order given; a search on
        # modification time reads only the records written since its lower bound. Ordered while the clock
        # only moves forward; `_log_ordered` is false once it went back, and searches then read every record.
        self._log: dict[str, list[tuple[float, int]]] = {obj: [] for obj in self.properties}
        self._log_ordered: dict[str, bool] = {obj: True for obj in self.properties}

    def restore_definitions(self) -> None:
        """The property definitions and groups a new sandbox portal has (syncd's custom ones included)."""
        self.properties = default_properties()
        self.groups = default_groups(self.properties)

    def drop_custom_definitions(self) -> None:
        """Drop every custom property and the groups only they used: a portal nobody set up for syncd."""
        self.properties = {obj: {n: p for n, p in props.items() if p.hubspot_defined}
                           for obj, props in self.properties.items()}
        self.groups = {obj: {g: label for g, label in groups.items()
                             if any(p.group == g for p in self.properties[obj].values())}
                       for obj, groups in self.groups.items()}

    def clear(self) -> None:
        """Drop every record (property definitions stay)."""
        self.records = {obj: {} for obj in self.properties}
        self._unique = {}
        self._ids = {obj: [] for obj in self.properties}
        self._log = {obj: [] for obj in self.properties}
        self._log_ordered = {obj: True for obj in self.properties}
        self._next_id = 1001

    # --- lookups ---

    def get(self, obj: str, record_id: str | int, *, archived: bool = False) -> Record | None:
        """A live record by id (a merged-away id leads to the record it was merged into); archived ones
        only when `archived` is true."""
        try:
            key = int(record_id)
        except (TypeError, ValueError):
            return None
        record = self.records[obj].get(key)
        seen = 0
        while record is not None and record.merged_into is not None and not archived and seen < 50:
            record = self.records[obj].get(record.merged_into)
            seen += 1
        if record is None or record.archived != archived:
            return None
        return record

    def find_unique(self, obj: str, prop: str, value: str) -> Record | None:
        """The live record holding `value` in the unique property `prop`."""
        key = value.strip().lower() if prop == "email" else value
        record_id = self._unique.get((obj, prop), {}).get(key)
        return None if record_id is None else self.records[obj].get(record_id)

    def lookup(self, obj: str, ident: str, id_property: str | None) -> Record | None:
        """A record by id or, with `id_property`, by a unique property's value (400 if it is not unique)."""
        if id_property is None or id_property == "hs_object_id":
            return self.get(obj, ident)
        self.require_unique_property(obj, id_property)
        return self.find_unique(obj, id_property, ident)

    def require_unique_property(self, obj: str, prop: str) -> None:
        """400 unless `prop` exists on `obj` and has unique values (only those can be an idProperty)."""
        definition = self.properties[obj].get(prop)
        if definition is None or not definition.unique:
            raise validation_error(
                f"Property \"{prop}\" is not a unique identifier property for {obj}; use hs_object_id, "
                f"email or a property with hasUniqueValue."
            )

    def live(self, obj: str) -> Iterable[Record]:
        """Live records in id order."""
        return (r for _, r in sorted(self.records[obj].items()) if not r.archived)

    def after_id(self, obj: str, start: int) -> Iterable[Record]:
        """Every record (archived and merged ones too) with an id above `start`, in id order."""
        ids = self._ids[obj]
        records = self.records[obj]
        return (records[i] for i in ids[bisect_right(ids, start) :])

    def written_since(self, obj: str, since: float) -> Iterable[Record]:
        """Records (in no particular order) whose search-index states include one given at or after `since`;
        every record when the clock went back at some point."""
        if not self._log_ordered[obj]:
            return self.records[obj].values()
        log = self._log[obj]
        start = bisect_left(log, (since, -1))
        records = self.records[obj]
        return [records[i] for i in {record_id for _, record_id in log[start:]} if i in records]

    def _snapshot(self, record: Record) -> None:
        """Give the search index the record's current state, and note when."""
        record.snapshot()
        log = self._log[record.object_type]
        if log and record.updated_at < log[-1][0]:
            self._log_ordered[record.object_type] = False
        log.append((record.updated_at, record.id))

    def _add(self, record: Record) -> None:
        self.records[record.object_type][record.id] = record
        ids = self._ids[record.object_type]
        if ids and record.id < ids[-1]:
            insort(ids, record.id)
        else:
            ids.append(record.id)

    # --- validation ---

    def validate(self, obj: str, values: Any) -> dict[str, str]:
        """Normalised values for a write, or 400 VALIDATION_ERROR listing every bad property."""
        if not isinstance(values, Mapping):
            raise validation_error("Invalid input JSON: properties must be an object.")
        out: dict[str, str] = {}
        problems: list[tuple[str, str, str]] = []  # (property, code, message)
        for name, raw in values.items():
            definition = self.properties[obj].get(name)
            if definition is None:
                problems.append((name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'))
                continue
            if definition.read_only:
                message = f'"{name}" is a read only property; its value cannot be set.'
                problems.append((name, "READ_ONLY_VALUE", message))
                continue
            try:
                out[name] = normalise(definition, raw)
            except InvalidValue as exc:
                problems.append((name, exc.code, exc.message))
        if problems:
            summary = ",".join(
                f'{{"isValid":false,"message":"{message}","error":"{code}","name":"{name}"}}'
                for name, code, message in problems
            )
            raise validation_error(
                f"Property values were not valid: [{summary}]",
                [
                    {"message": message, "code": code, "context": {"propertyName": [name]}}
                    for name, code, message in problems
                ],
            )
        return out

    def check_unique(self, obj: str, values: Mapping[str, str], exclude: int | None = None) -> None:
        """409 CONFLICT if a unique property's value is held by another live record."""
        for name, value in values.items():
            definition = self.properties[obj].get(name)
            if definition is None or not definition.unique or value == "":
                continue
            holder = self.find_unique(obj, name, value)
            if holder is not None and holder.id != exclude:
                raise conflict(obj, name, value, holder.id)

    # --- writes ---

    def create(self, obj: str, values: Mapping[str, str], *, source: str = "API") -> Record:
        """A new record from validated values (caller checked uniqueness)."""
        now = self.clock()
        record_id = self._next_id
        self._next_id += 1
        props = {k: v for k, v in values.items() if v != ""}
        props.setdefault("createdate", iso_ms(now))
        props[MODIFIED_PROPERTY[obj]] = iso_ms(now)
        props["hs_object_id"] = str(record_id)
        record = Record(obj, record_id, props, now, now)
        self._derive(record)
        self._add(record)
        self._index(record)
        self._snapshot(record)
        self._notify("creation", obj, record, {"changeSource": source, "properties": dict(props)})
        return record

    def update(self, obj: str, record: Record, values: Mapping[str, str], *, source: str = "API") -> list[str]:
        """Apply validated values; returns the names of properties whose value changed."""
        changed = [k for k, v in values.items() if record.properties.get(k, "") != v]
        if not changed:
            return []
        self._unindex(record)
        for name in changed:
            if values[name] == "":
                record.properties.pop(name, None)
            else:
                record.properties[name] = values[name]
        self._derive(record)
        self._touch(record)
        self._index(record)
        for name in changed:
            self._notify(
                "propertyChange", obj, record,
                {"changeSource": source, "propertyName": name, "propertyValue": record.properties.get(name, "")},
            )
        return changed

    def archive(self, obj: str, record: Record, *, source: str = "API") -> None:
        """Archive (soft-delete) a record; its unique values become free."""
        if record.archived:
            return
        self._unindex(record)
        record.archived_at = self.clock()
        self._touch(record)
        self._notify("deletion", obj, record, {"changeSource": source})

    def purge(self, obj: str, record: Record) -> None:
        """Delete a record for good (GDPR delete): not even archived, its id leads nowhere from now on."""
        self._unindex(record)
        self.records[obj].pop(record.id, None)
        ids = self._ids[obj]
        position = bisect_left(ids, record.id)
        if position < len(ids) and ids[position] == record.id:
            del ids[position]
        if not record.archived:
            record.archived_at = self.clock()
            self._notify("deletion", obj, record, {"changeSource": "GDPR"})

    def restore(self, obj: str, record: Record, *, source: str = "CRM") -> None:
        """Bring an archived record back from the recycle bin (a user's action in HubSpot's UI: the API has
        no restore call); 409 if another record took one of its unique values meanwhile."""
        if not record.archived or record.merged_into is not None:
            raise validation_error(f"{SINGULAR[obj]} {record.id} is not in the recycle bin.")
        self.check_unique(obj, record.properties, exclude=record.id)
        record.archived_at = None
        self._touch(record)
        self._index(record)
        self._notify("restore", obj, record, {"changeSource": source})

    def merge(self, obj: str, primary: Record, merged: Record) -> Record:
        """Merge `merged` into `primary`: blanks of the primary are filled, the other is archived and its
        id leads to the primary from now on."""
        self._unindex(merged)
        self._unindex(primary)
        for name, value in merged.properties.items():
            definition = self.properties[obj].get(name)
            if definition is None or definition.read_only or name in ("createdate",):
                continue
            if name not in primary.properties:
                primary.properties[name] = value
        if obj == "contacts" and merged.properties.get("email"):
            extra = [e for e in primary.properties.get("hs_additional_emails", "").split(";") if e]
            primary.properties["hs_additional_emails"] = ";".join([*extra, merged.properties["email"]])
        ids = [i for i in primary.properties.get("hs_merged_object_ids", "").split(";") if i]
        primary.properties["hs_merged_object_ids"] = ";".join([*ids, str(merged.id)])
        merged.merged_into = primary.id
        merged.archived_at = self.clock()
        self._touch(merged)
        self._touch(primary)
        self._index(primary)
        self._notify(
            "merge", obj, primary,
            {
                "changeSource": "API",
                "primaryObjectId": primary.id,
                "mergedObjectIds": [merged.id],
                "newObjectId": primary.id,
                "numberOfPropertiesMoved": 0,
            },
        )
        return primary

    # --- state ---

    def dump(self) -> dict[str, Any]:
        """Records and custom property definitions as JSON-able data."""
        return {
            "next_id": self._next_id,
            "records": {obj: [r.to_state() for r in recs.values()] for obj, recs in self.records.items()},
            "custom_properties": {
                obj: [
                    {"name": p.name, "label": p.label, "type": p.type, "fieldType": p.field_type,
                     "groupName": p.group, "hasUniqueValue": p.unique, "options": list(p.options)}
                    for p in props.values() if not p.hubspot_defined and p.name not in _BUILT_IN_CUSTOM
                ]
                for obj, props in self.properties.items()
            },
            "groups": {obj: dict(groups) for obj, groups in self.groups.items()},
            # Built-in custom properties dropped (a fresh portal), so that a reload does not bring them back.
            "dropped_built_in": {
                obj: sorted(_BUILT_IN_CUSTOM & (set(default_properties()[obj]) - set(props)))
                for obj, props in self.properties.items()
            },
        }

    def load(self, state: Mapping[str, Any]) -> None:
        """Restore what dump produced."""
        self.restore_definitions()
        for obj, names in state.get("dropped_built_in", {}).items():
            for name in names:
                self.properties[obj].pop(name, None)
        if "groups" in state:
            self.groups = {obj: dict(groups) for obj, groups in state["groups"].items()}
        for obj, props in state.get("custom_properties", {}).items():
            for p in props:
                self.properties[obj][p["name"]] = PropertyDef(
                    p["name"], p["label"], p["type"], p["fieldType"], p["groupName"],
                    unique=bool(p["hasUniqueValue"]), hubspot_defined=False, options=tuple(p["options"]),
                )
        self.clear()
        for obj, recs in state.get("records", {}).items():
            for r in recs:
                record = Record(
                    obj, int(r["id"]), dict(r["properties"]), float(r["created_at"]), float(r["updated_at"]),
                    archived_at=r.get("archived_at"),
                    merged_into=None if r.get("merged_into") is None else int(r["merged_into"]),
                )
                self._add(record)
                self._snapshot(record)
                if not record.archived:
                    self._index(record)
        self._next_id = int(state.get("next_id", self._next_id))

    # --- internals ---

    def _touch(self, record: Record) -> None:
        now = self.clock()
        record.updated_at = now
        record.properties[MODIFIED_PROPERTY[record.object_type]] = iso_ms(now)
        self._snapshot(record)

    def _derive(self, record: Record) -> None:
        # Line item amount is calculated by HubSpot: quantity × (price − discount).
        if record.object_type == "line_items":
            try:
                quantity = Decimal(record.properties.get("quantity", "1") or "1")
                price = Decimal(record.properties.get("price", "0") or "0")
                discount = Decimal(record.properties.get("discount", "0") or "0")
            except InvalidOperation:
                return
            record.properties["amount"] = str(quantity * (price - discount))

    def _index(self, record: Record) -> None:
        for name, definition in self.properties[record.object_type].items():
            value = record.properties.get(name, "")
            if definition.unique and value != "":
                self._unique.setdefault((record.object_type, name), {})[value] = record.id

    def _unindex(self, record: Record) -> None:
        for name, definition in self.properties[record.object_type].items():
            value = record.properties.get(name, "")
            index = self._unique.get((record.object_type, name))
            if definition.unique and index is not None and index.get(value) == record.id:
                del index[value]

    def _notify(self, kind: str, obj: str, record: Record, extra: dict[str, Any]) -> None:
        if self.on_change is not None:
            self.on_change(kind, obj, record, extra)


# Custom properties every sandbox portal starts with (created by default_properties, not by users).
_BUILT_IN_CUSTOM = frozenset(
    {"syncd_ref", "syncd_invoice_number", "syncd_invoice_status", "syncd_invoice_balance",
     "syncd_amount_paid", "syncd_last_payment_date", "syncd_invoice_total", "syncd_invoice_due_date",
     "syncd_last_payment_amount", "syncd_last_payment_mode", "syncd_last_payment_reference",
     "syncd_last_payment_refunded"}
)


def conflict(obj: str, prop: str, value: str, existing: int) -> HubSpotError:
    """409 CONFLICT for a unique value already held; contacts' e-mail uses HubSpot's exact wording."""
    if obj == "contacts" and prop == "email":
        message = f"Contact already exists. Existing ID: {existing}"
    else:
        message = (
            f"A {SINGULAR[obj]} with {prop} \"{value}\" already exists ({prop} has unique values). "
            f"Existing ID: {existing}"
        )
    return HubSpotError(409, message, "CONFLICT", context={"existingId": [str(existing)]})
