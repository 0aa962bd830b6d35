"""The simulated org's records: validation as Salesforce does it, derived fields, recycle bin, transactions."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal

from syncd.sandbox.salesforce.ids import mint_id, normalize_id
from syncd.sandbox.salesforce.schema import (
    ID_TYPES,
    INTEGRATION_USER_ID,
    NUMBER_TYPES,
    OBJECTS,
    OBJECTS_BY_PREFIX,
    OPPORTUNITY,
    OPPORTUNITY_LINE_ITEM,
    PAYMENT,
    PRICEBOOK,
    PRICEBOOK_ENTRY,
    PRODUCT,
    STAGE_BY_NAME,
    STANDARD_PRICEBOOK_ID,
    STANDARD_PRICEBOOK_NAME,
    STRING_TYPES,
    FieldSpec,
    ObjectSpec,
    object_spec,
)

ChangeType = Literal["CREATE", "UPDATE", "DELETE"]
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_DELETED_AT = "__deleted_at"  # private key: when a record went to the recycle bin (epoch seconds)
_SYSTEM_FIELDS = ("CreatedDate", "LastModifiedDate", "SystemModstamp", "CreatedById", "LastModifiedById")


def format_timestamp(epoch: float) -> str:
    """Salesforce's timestamp format: `2024-01-01T00:00:00.000+0000`."""
    moment = dt.datetime.fromtimestamp(epoch, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


@dataclass(frozen=True)
class SfError:
    """One Salesforce error entry."""

    error_code: str
    message: str
    fields: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The REST API's error shape `{message, errorCode, fields}`."""
        return {"message": self.message, "errorCode": self.error_code, "fields": list(self.fields)}

    def to_collection_json(self) -> dict[str, Any]:
        """The sObject Collections / create-result shape `{statusCode, message, fields}`."""
        return {"statusCode": self.error_code, "message": self.message, "fields": list(self.fields)}


class RecordError(Exception):
    """A refused DML operation: the HTTP status and the errors Salesforce would answer."""

    def __init__(self, status: int, errors: list[SfError]) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.status = status
        self.errors = errors


def not_found() -> RecordError:
    """The answer for an id or route that names nothing."""
    return RecordError(404, [SfError("NOT_FOUND", "The requested resource does not exist")])


@dataclass(frozen=True)
class Change:
    """One committed record change, as Change Data Capture reports it."""

    entity: str
    record_id: str
    change_type: ChangeType
    fields: dict[str, Any]


@dataclass
class _Transaction:
    origin: str
    changes: list[Change] = field(default_factory=list)
    journal: dict[tuple[str, str], dict[str, Any] | None] = field(default_factory=dict)


ChangeListener = Callable[[list[Change], str], None]


class RecordStore:
    """Every record of the simulated org, keyed by object and id."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.tables: dict[str, dict[str, dict[str, Any]]] = {spec.name: {} for spec in OBJECTS}
        self.serial = 0
        self.autonumber = 0
        self.listeners: list[ChangeListener] = []
        self._tx: _Transaction | None = None
        # Lookup indexes; they may hold stale entries (after a rollback) and are always verified on read.
        self._by_key: dict[tuple[str, str], dict[str, set[str]]] = {}
        self._lines_by_opportunity: dict[str, set[str]] = {}
        self._add_standard_pricebook()

    # --- reading ---

    def rows(self, spec: ObjectSpec, *, include_deleted: bool) -> list[dict[str, Any]]:
        """Records of one object in creation order; deleted ones only when asked."""
        table = self.tables[spec.name]
        return [r for r in table.values() if include_deleted or not r["IsDeleted"]]

    def get(self, spec: ObjectSpec, record_id: str) -> dict[str, Any]:
        """A live record by its 15- or 18-character id; 404 NOT_FOUND or ENTITY_IS_DELETED otherwise."""
        normalized = normalize_id(record_id)
        record = self.tables[spec.name].get(normalized) if normalized else None
        if record is None:
            raise not_found()
        if record["IsDeleted"]:
            raise RecordError(404, [SfError("ENTITY_IS_DELETED", "entity is deleted")])
        return record

    def find_by(self, spec: ObjectSpec, field_spec: FieldSpec, value: str) -> list[dict[str, Any]]:
        """Live records whose field equals value (case-insensitively, as external ids match)."""
        if field_spec.type in ID_TYPES:
            normalized = normalize_id(value)
            return [r for r in self.rows(spec, include_deleted=False) if r.get(field_spec.name) == normalized]
        wanted = value.casefold()
        table = self.tables[spec.name]
        index = self._by_key.get((spec.name, field_spec.name))
        candidates = (
            [table[i] for i in sorted(index.get(wanted, ())) if i in table] if index is not None else table.values()
        )
        return [
            r
            for r in candidates
            if not r["IsDeleted"]
            and r.get(field_spec.name) is not None
            and str(r[field_spec.name]).casefold() == wanted
        ]

    def _index(self, spec: ObjectSpec, record: Mapping[str, Any]) -> None:
        for field_spec in spec.fields:
            if (field_spec.unique or field_spec.external_id) and record.get(field_spec.name) is not None:
                key = (spec.name, field_spec.name)
                values = self._by_key.setdefault(key, {})
                values.setdefault(str(record[field_spec.name]).casefold(), set()).add(record["Id"])
        if spec is OPPORTUNITY_LINE_ITEM:
            self._lines_by_opportunity.setdefault(record["OpportunityId"], set()).add(record["Id"])

    def deleted_at(self, record: Mapping[str, Any]) -> float | None:
        """When a record went to the recycle bin."""
        value = record.get(_DELETED_AT)
        return float(value) if value is not None else None

    @staticmethod
    def public(record: Mapping[str, Any]) -> dict[str, Any]:
        """A record without the store's private keys."""
        return {k: v for k, v in record.items() if not k.startswith("__")}

    # --- transactions ---

    @contextmanager
    def transaction(self, origin: str) -> Iterator[None]:
        """Apply every write inside atomically: all kept and announced, or all undone on an exception."""
        if self._tx is not None:
            yield  # nested: the outer transaction decides
            return
        tx = _Transaction(origin)
        self._tx = tx
        try:
            yield
        except BaseException:
            for (obj, record_id), before in tx.journal.items():
                if before is None:
                    self.tables[obj].pop(record_id, None)
                else:
                    self.tables[obj][record_id] = before
            raise
        finally:
            self._tx = None
        if tx.changes:
            for listener in self.listeners:
                listener(tx.changes, tx.origin)

    def _touch(self, obj: str, record_id: str) -> None:
        if self._tx is not None and (obj, record_id) not in self._tx.journal:
            current = self.tables[obj].get(record_id)
            self._tx.journal[(obj, record_id)] = dict(current) if current is not None else None

    def _announce(self, change: Change) -> None:
        if self._tx is not None:
            self._tx.changes.append(change)

    # --- writing ---

    def create(self, spec: ObjectSpec, body: Mapping[str, Any]) -> dict[str, Any]:
        """Insert one record from a REST body; RecordError with every problem found."""
        values = self._coerce_body(spec, body, creating=True)
        errors: list[SfError] = []
        missing = [f.name for f in spec.fields if f.required and values.get(f.name) is None]
        if missing:
            errors.append(
                SfError(
                    "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", tuple(missing)
                )
            )
        if errors:
            raise RecordError(400, errors)
        self._check_unique(spec, values, None)
        if spec is OPPORTUNITY_LINE_ITEM:
            values.update(self._price_line(values))
        elif spec is PRICEBOOK_ENTRY:
            self._check_entry(values)
        self.serial += 1
        record_id = mint_id(spec.key_prefix, self.serial)
        record = self._new_row(spec, record_id, values)
        if spec.field("OwnerId") is not None and record.get("OwnerId") is None:
            record["OwnerId"] = INTEGRATION_USER_ID
        self._derive(spec, record, set(values))
        self._touch(spec.name, record_id)
        self.tables[spec.name][record_id] = record
        self._index(spec, record)
        self._announce(
            Change(spec.name, record_id, "CREATE", {k: v for k, v in self.public(record).items() if v is not None})
        )
        self._after_write(spec, record)
        return record

    def update(self, spec: ObjectSpec, record_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Change fields of one live record; every update bumps LastModifiedDate, as in Salesforce."""
        record = self.get(spec, record_id)
        values = self._coerce_body(spec, body, creating=False, record_id=record["Id"])
        if spec is OPPORTUNITY and record["HasOpportunityLineItem"]:
            # Salesforce's object reference (Opportunity.Amount): on an opportunity with products "any attempt
            # to update this field will be ignored. The update call will not be rejected, and other fields will
            # be updated as specified, but the Amount will be unchanged."
            values.pop("Amount", None)
            if values.get("Pricebook2Id", record["Pricebook2Id"]) != record["Pricebook2Id"]:
                # The sandbox's wording: Salesforce refuses a price book change on an opportunity with products.
                raise RecordError(
                    400,
                    [
                        SfError(
                            "FIELD_INTEGRITY_EXCEPTION",
                            "field integrity exception: Pricebook2Id (an opportunity with products keeps its "
                            "price book)",
                            ("Pricebook2Id",),
                        )
                    ],
                )
        self._check_unique(spec, values, record["Id"])
        self._touch(spec.name, record["Id"])
        before = dict(record)
        record.update(values)
        now = format_timestamp(self.clock())
        record.update(LastModifiedDate=now, SystemModstamp=now, LastModifiedById=INTEGRATION_USER_ID)
        self._derive(spec, record, set(values))
        self._index(spec, record)
        self._refresh_copies(spec, record, before)
        changed = {k: v for k, v in self.public(record).items() if before.get(k) != v and k != "SystemModstamp"}
        # An update always changes LastModifiedDate, even within the millisecond its stamp is rounded to.
        changed["LastModifiedDate"] = record["LastModifiedDate"]
        self._announce(Change(spec.name, record["Id"], "UPDATE", changed))
        self._after_write(spec, record)
        return record

    def delete(self, spec: ObjectSpec, record_id: str) -> None:
        """Move one record (and what cascades from it) to the recycle bin."""
        record = self.get(spec, record_id)
        self._check_deletable(spec, record)
        self._delete_record(spec, record)

    def _delete_record(self, spec: ObjectSpec, record: dict[str, Any]) -> None:
        self._touch(spec.name, record["Id"])
        now = self.clock()
        record.update(IsDeleted=True, SystemModstamp=format_timestamp(now))
        record[_DELETED_AT] = now
        self._announce(Change(spec.name, record["Id"], "DELETE", {}))
        # Master-detail children go with their parent; lookups to the deleted record are cleared.
        for child_spec in OBJECTS:
            for child_field in child_spec.fields:
                if child_field.type != "reference" or spec.name not in child_field.reference_to:
                    continue
                for child in self.rows(child_spec, include_deleted=False):
                    if child.get(child_field.name) != record["Id"]:
                        continue
                    if _cascades(child_spec, child_field):
                        self._delete_record(child_spec, child)
                    else:
                        self._touch(child_spec.name, child["Id"])
                        child[child_field.name] = None
                        child["SystemModstamp"] = format_timestamp(now)
        self._after_write(spec, record)

    def merge(self, spec: ObjectSpec, master_id: str, merged_ids: list[str]) -> list[str]:
        """Merge one or two records into a master, as the UI or SOAP merge() does: lookups to each loser move
        to the master, the loser gets MasterRecordId and goes to the recycle bin; returns the losers' ids."""
        if spec.field("MasterRecordId") is None:
            raise RecordError(400, [SfError("INVALID_TYPE", f"{spec.name} records cannot be merged")])
        if not 1 <= len(merged_ids) <= 2:
            raise RecordError(
                400, [SfError("INVALID_ARGUMENT", "merge takes one or two records to merge into the master")]
            )
        master = self.get(spec, master_id)
        losers: list[dict[str, Any]] = []
        for merged_id in merged_ids:
            loser = self.get(spec, merged_id)
            if loser["Id"] == master["Id"]:
                raise RecordError(400, [SfError("INVALID_ID_FIELD", "Cannot merge with self")])
            if any(loser is other for other in losers):
                raise RecordError(400, [SfError("INVALID_ID_FIELD", f"Duplicate id in merge: {loser['Id']}")])
            losers.append(loser)
        now = self.clock()
        stamp = format_timestamp(now)
        for loser in losers:
            self._reparent(spec, loser["Id"], master["Id"], stamp)
            self._touch(spec.name, loser["Id"])
            loser["MasterRecordId"] = master["Id"]
            self._delete_record(spec, loser)
        # The winning record is updated by a merge (its update triggers fire), so it looks freshly modified.
        self._touch(spec.name, master["Id"])
        master.update(LastModifiedDate=stamp, SystemModstamp=stamp, LastModifiedById=INTEGRATION_USER_ID)
        self._announce(Change(spec.name, master["Id"], "UPDATE", {"LastModifiedDate": stamp}))
        return [loser["Id"] for loser in losers]

    def _reparent(self, spec: ObjectSpec, loser_id: str, master_id: str, stamp: str) -> None:
        """Point every live lookup at loser_id to master_id (merge re-parents children without an update)."""
        for child_spec in OBJECTS:
            for child_field in child_spec.fields:
                if (
                    child_field.type != "reference"
                    or spec.name not in child_field.reference_to
                    or child_field.name == "MasterRecordId"
                ):
                    continue
                for child in self.rows(child_spec, include_deleted=False):
                    if child.get(child_field.name) == loser_id and child["Id"] != master_id:
                        self._touch(child_spec.name, child["Id"])
                        child[child_field.name] = master_id
                        child["SystemModstamp"] = stamp

    def purge(self) -> None:
        """Drop every record (the control plane's reset)."""
        for table in self.tables.values():
            table.clear()
        self._by_key.clear()
        self._lines_by_opportunity.clear()
        self._add_standard_pricebook()

    # --- products and price books ---

    def _add_standard_pricebook(self) -> None:
        """Every org has one standard price book, from the start and after a reset."""
        if STANDARD_PRICEBOOK_ID in self.tables[PRICEBOOK.name]:
            return
        values = {"Name": STANDARD_PRICEBOOK_NAME, "IsActive": True, "IsStandard": True}
        self.tables[PRICEBOOK.name][STANDARD_PRICEBOOK_ID] = self._new_row(PRICEBOOK, STANDARD_PRICEBOOK_ID, values)

    def _new_row(self, spec: ObjectSpec, record_id: str, values: dict[str, Any]) -> dict[str, Any]:
        """A new row of `spec`: every field present, `values` set, and the system fields stamped now."""
        now = format_timestamp(self.clock())
        record: dict[str, Any] = {f.name: None for f in spec.fields}
        record.update(values)
        record.update(
            Id=record_id,
            IsDeleted=False,
            CreatedDate=now,
            LastModifiedDate=now,
            SystemModstamp=now,
            CreatedById=INTEGRATION_USER_ID,
            LastModifiedById=INTEGRATION_USER_ID,
        )
        return record

    def _live(self, spec: ObjectSpec, record_id: str | None) -> dict[str, Any] | None:
        record = self.tables[spec.name].get(record_id) if record_id is not None else None
        return record if record is not None and not record["IsDeleted"] else None

    def entries_of(self, product_id: str, pricebook_id: str) -> list[dict[str, Any]]:
        """The live price book entries of a product in one price book (at most one)."""
        return [
            r
            for r in self.rows(PRICEBOOK_ENTRY, include_deleted=False)
            if r["Product2Id"] == product_id and r["Pricebook2Id"] == pricebook_id
        ]

    def _check_entry(self, values: Mapping[str, Any]) -> None:
        """A price book entry needs the product's standard price first and is unique per product and book."""
        product_id, pricebook_id = values["Product2Id"], values["Pricebook2Id"]
        if self.entries_of(product_id, pricebook_id):
            raise RecordError(
                400, [SfError("DUPLICATE_VALUE", "This price definition already exists in this price book")]
            )
        if pricebook_id != STANDARD_PRICEBOOK_ID and not self.entries_of(product_id, STANDARD_PRICEBOOK_ID):
            raise RecordError(
                400, [SfError("STANDARD_PRICE_NOT_DEFINED", "No standard price defined for this product")]
            )

    def _price_line(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The price book entry, product, list price and name of a new line, as Salesforce resolves them."""
        opportunity = self._live(OPPORTUNITY, values["OpportunityId"])
        assert opportunity is not None  # the reference was checked when the body was read
        entry_id, product_id = values.get("PricebookEntryId"), values.get("Product2Id")
        pricebook_id = opportunity["Pricebook2Id"]
        if entry_id is None and product_id is None:
            raise _integrity(
                "PricebookEntryId, unknown (versions 3.0 and higher must specify pricebook entry id; others must "
                "specify product id)",
                ("PricebookEntryId", "unknown"),
            )
        if entry_id is not None:
            entry = self._live(PRICEBOOK_ENTRY, entry_id)
            assert entry is not None
            if product_id is not None and product_id != entry["Product2Id"]:
                # The sandbox's wording for a Product2Id that is not the entry's product.
                raise _integrity("Product2Id (product does not match the pricebook entry's product)", ("Product2Id",))
            if pricebook_id is not None and entry["Pricebook2Id"] != pricebook_id:
                raise _integrity(
                    "PricebookEntryId (pricebook entry is in a different pricebook than the one assigned to the "
                    "opportunity)",
                    ("PricebookEntryId",),
                )
        else:
            assert product_id is not None
            # A bare Product2Id is looked up in the opportunity's price book, the standard one when it has none.
            found = self.entries_of(product_id, pricebook_id or STANDARD_PRICEBOOK_ID)
            if not found:
                raise _integrity(
                    "Product2Id (no pricebook entry for this product in the opportunity's pricebook)",
                    ("Product2Id",),
                )
            entry = found[0]
        if not entry["IsActive"]:
            raise _integrity("PricebookEntryId (pricebook entry is inactive)", ("PricebookEntryId",))
        product = self._live(PRODUCT, entry["Product2Id"])
        assert product is not None  # entries go to the recycle bin with their product
        return {
            "PricebookEntryId": entry["Id"],
            "Product2Id": product["Id"],
            "ProductCode": product["ProductCode"],
            "ListPrice": entry["UnitPrice"],
            "Name": _line_name(opportunity, product),
        }

    def _refresh_copies(self, spec: ObjectSpec, record: Mapping[str, Any], before: Mapping[str, Any]) -> None:
        """Keep the names Salesforce derives (entry and line names, product codes) in step with their sources.

        Derived values are not changes of their own: no change event, no LastModifiedDate bump.
        """
        if spec is OPPORTUNITY and record["Name"] != before.get("Name"):
            for line in self._lines_of(record["Id"]):
                product = self._live(PRODUCT, line["Product2Id"])
                if product is not None:
                    self._touch(OPPORTUNITY_LINE_ITEM.name, line["Id"])
                    line["Name"] = _line_name(record, product)
        elif spec is PRODUCT and any(record[k] != before.get(k) for k in ("Name", "ProductCode")):
            for entry in self.rows(PRICEBOOK_ENTRY, include_deleted=True):
                if entry["Product2Id"] == record["Id"]:
                    self._touch(PRICEBOOK_ENTRY.name, entry["Id"])
                    entry.update(Name=record["Name"], ProductCode=record["ProductCode"])
            for line in self.rows(OPPORTUNITY_LINE_ITEM, include_deleted=True):
                opportunity = self.tables[OPPORTUNITY.name].get(line["OpportunityId"])
                if line["Product2Id"] == record["Id"] and opportunity is not None:
                    self._touch(OPPORTUNITY_LINE_ITEM.name, line["Id"])
                    line.update(Name=_line_name(opportunity, record), ProductCode=record["ProductCode"])

    def _check_deletable(self, spec: ObjectSpec, record: Mapping[str, Any]) -> None:
        """Products, entries and price books on opportunity products cannot go; nor can the standard book."""
        if spec is PRICEBOOK and record["IsStandard"]:
            raise RecordError(400, [SfError("DELETE_FAILED", "Cannot delete the standard price book")])
        if spec not in (PRICEBOOK, PRODUCT, PRICEBOOK_ENTRY):
            return
        lines = self.rows(OPPORTUNITY_LINE_ITEM, include_deleted=False)
        if spec is PRICEBOOK:
            entries = {
                e["Id"] for e in self.rows(PRICEBOOK_ENTRY, include_deleted=False) if e["Pricebook2Id"] == record["Id"]
            }
            in_use = any(line["PricebookEntryId"] in entries for line in lines)
        else:
            via = "Product2Id" if spec is PRODUCT else "PricebookEntryId"
            in_use = any(line[via] == record["Id"] for line in lines)
        if in_use:
            raise RecordError(
                400,
                [
                    SfError(
                        "DELETE_FAILED",
                        f"Your attempt to delete {record.get('Name')} could not be completed because it is "
                        "associated with opportunity products.",
                    )
                ],
            )

    def _lines_of(self, opportunity_id: str) -> list[dict[str, Any]]:
        table = self.tables[OPPORTUNITY_LINE_ITEM.name]
        candidates = (table.get(i) for i in sorted(self._lines_by_opportunity.get(opportunity_id, ())))
        return [r for r in candidates if r and not r["IsDeleted"] and r["OpportunityId"] == opportunity_id]

    # --- validation ---

    def _coerce_body(
        self, spec: ObjectSpec, body: Mapping[str, Any], *, creating: bool, record_id: str | None = None
    ) -> dict[str, Any]:
        errors: list[SfError] = []
        values: dict[str, Any] = {}
        for key, raw in body.items():
            if key == "attributes":
                continue
            field_spec = spec.field(key)
            if field_spec is None:
                errors.append(
                    SfError("INVALID_FIELD", f"No such column '{key}' on sobject of type {spec.name}", (key,))
                )
                continue
            if field_spec.name == "Id" and not creating and raw is not None and normalize_id(str(raw)) == record_id:
                continue  # collections updates carry the record's own id in the body
            allowed = field_spec.createable if creating else field_spec.updateable
            if not allowed:
                verb = "create" if creating else "update"
                errors.append(
                    SfError(
                        "INVALID_FIELD_FOR_INSERT_UPDATE",
                        f"Unable to {verb} fields: {field_spec.name}. Please check the security settings of "
                        "this field and verify that it is read/write for your profile or permission set.",
                        (field_spec.name,),
                    )
                )
                continue
            try:
                values[field_spec.name] = self._coerce(spec, field_spec, raw)
            except RecordError as exc:
                errors.extend(exc.errors)
        for name, value in values.items():
            field_spec = spec.field(name)
            if field_spec is not None and value is None and not field_spec.nillable:
                if creating and field_spec.defaulted_on_create:
                    continue
                errors.append(SfError("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{name}]", (name,)))
        if errors:
            raise RecordError(400, errors)
        return values

    def _coerce(self, spec: ObjectSpec, field_spec: FieldSpec, raw: Any) -> Any:
        name = field_spec.name
        if raw is None:
            return None

        def bad(type_name: str) -> RecordError:
            kind = type(raw).__name__.upper()
            return RecordError(
                400,
                [
                    SfError(
                        "JSON_PARSER_ERROR",
                        f"Cannot deserialize instance of {type_name} from VALUE_{kind} value {raw!r}",
                        (name,),
                    )
                ],
            )

        if field_spec.type in STRING_TYPES:
            if isinstance(raw, bool) or not isinstance(raw, str | int | float):
                raise bad("string")
            text = str(raw)
            if text == "":
                return None  # Salesforce stores a blank text as null
            if field_spec.length and len(text) > field_spec.length:
                raise RecordError(
                    400,
                    [
                        SfError(
                            "STRING_TOO_LONG",
                            f"{field_spec.label}: data value too large: {text[:40]} (max length={field_spec.length})",
                            (name,),
                        )
                    ],
                )
            if field_spec.type == "email" and not _EMAIL.fullmatch(text):
                raise RecordError(
                    400,
                    [SfError("INVALID_EMAIL_ADDRESS", f"{field_spec.label}: invalid email address: {text}", (name,))],
                )
            if field_spec.restricted_picklist and text not in field_spec.picklist_values:
                raise RecordError(
                    400,
                    [
                        SfError(
                            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                            f"{field_spec.label}: bad value for restricted picklist field: {text}",
                            (name,),
                        )
                    ],
                )
            return text
        if field_spec.type in NUMBER_TYPES:
            if isinstance(raw, bool) or not isinstance(raw, int | float | str):
                raise bad(field_spec.type)
            try:
                number = Decimal(str(raw).strip())
            except InvalidOperation:
                raise bad(field_spec.type) from None
            if not number.is_finite():
                raise bad(field_spec.type)
            if field_spec.type == "int":
                if number != number.to_integral_value():
                    raise bad("int")
                return int(number)
            if field_spec.type == "currency":
                number = number.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
            return float(number)
        if field_spec.type == "boolean":
            if not isinstance(raw, bool):
                raise bad("boolean")
            return raw
        if field_spec.type == "date":
            if not isinstance(raw, str):
                raise bad("date")
            try:
                return dt.date.fromisoformat(raw[:10]).isoformat()
            except ValueError:
                raise bad("date") from None
        if field_spec.type == "reference":
            return self._reference(field_spec, raw)
        raise bad(field_spec.type)

    def _reference(self, field_spec: FieldSpec, raw: Any) -> str | None:
        name = field_spec.name
        if not isinstance(raw, str):
            raise RecordError(400, [SfError("JSON_PARSER_ERROR", f"Cannot deserialize id from {raw!r}", (name,))])
        if raw == "":
            return None
        normalized = normalize_id(raw)
        target = OBJECTS_BY_PREFIX.get(normalized[:3]) if normalized else None
        if normalized is not None and field_spec.reference_to == ("User",):
            if normalized == INTEGRATION_USER_ID:
                return normalized
        elif normalized is not None and target is not None and target.name in field_spec.reference_to:
            record = self.tables[target.name].get(normalized)
            if record is not None and not record["IsDeleted"]:
                return normalized
            if record is not None:
                raise RecordError(400, [SfError("ENTITY_IS_DELETED", "entity is deleted", (name,))])
            raise RecordError(400, [SfError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", (name,))])
        if normalized is None:
            raise RecordError(
                400, [SfError("MALFORMED_ID", f"{field_spec.label}: id value of incorrect type: {raw}", (name,))]
            )
        raise RecordError(
            400,
            [SfError("FIELD_INTEGRITY_EXCEPTION", f"{field_spec.label}: id value of incorrect type: {raw}", (name,))],
        )

    def _check_unique(self, spec: ObjectSpec, values: Mapping[str, Any], record_id: str | None) -> None:
        for field_spec in spec.fields:
            value = values.get(field_spec.name)
            if not field_spec.unique or value is None:
                continue
            for other in self.find_by(spec, field_spec, str(value)):
                if other["Id"] != record_id:
                    raise RecordError(
                        400,
                        [
                            SfError(
                                "DUPLICATE_VALUE",
                                f"duplicate value found: {field_spec.name} duplicates value on record with id: "
                                f"{other['Id']}",
                            )
                        ],
                    )

    # --- derived fields ---

    def _derive(self, spec: ObjectSpec, record: dict[str, Any], written: set[str]) -> None:
        if spec.name == "Contact":
            record["Name"] = " ".join(p for p in (record.get("FirstName"), record.get("LastName")) if p)
        elif spec is OPPORTUNITY:
            probability, closed, won = STAGE_BY_NAME[record["StageName"]]
            record["IsClosed"], record["IsWon"] = closed, won
            # Like Salesforce, a stage change resets Probability unless the same write sets it.
            if "Probability" not in written and ("StageName" in written or record.get("Probability") is None):
                record["Probability"] = float(probability)
            if record.get("HasOpportunityLineItem") is None:
                record["HasOpportunityLineItem"] = False
        elif spec is OPPORTUNITY_LINE_ITEM:
            total = Decimal(str(record["Quantity"])) * Decimal(str(record["UnitPrice"]))
            record["TotalPrice"] = float(total.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
        elif spec is PRODUCT or spec is PRICEBOOK or spec is PRICEBOOK_ENTRY:
            for flag in ("IsActive", "IsStandard", "UseStandardPrice"):
                if flag in record and record[flag] is None:
                    record[flag] = False
            if spec is PRICEBOOK_ENTRY:
                product = self.tables[PRODUCT.name][record["Product2Id"]]
                record.update(Name=product["Name"], ProductCode=product["ProductCode"])
        elif spec is PAYMENT and record.get("Name") is None:
            self.autonumber += 1
            record["Name"] = f"PAY-{self.autonumber:06d}"

    def _after_write(self, spec: ObjectSpec, record: Mapping[str, Any]) -> None:
        if spec is OPPORTUNITY_LINE_ITEM:
            self._roll_up(record["OpportunityId"], record)

    def _roll_up(self, opportunity_id: str, line: Mapping[str, Any]) -> None:
        """Opportunity Amount follows its line items whenever it has any; the first line sets its price book."""
        opportunity = self.tables[OPPORTUNITY.name].get(opportunity_id)
        if opportunity is None or opportunity["IsDeleted"]:
            return
        lines = self._lines_of(opportunity_id)
        has_lines = bool(lines)
        amount = opportunity["Amount"]
        if has_lines:
            total = sum((Decimal(str(r["TotalPrice"])) for r in lines), Decimal(0))
            amount = float(total.quantize(Decimal("0.01")))
        entry = self.tables[PRICEBOOK_ENTRY.name].get(line.get("PricebookEntryId") or "")
        pricebook_id = opportunity["Pricebook2Id"]
        if pricebook_id is None and entry is not None and not line["IsDeleted"]:
            pricebook_id = entry["Pricebook2Id"]
        if (
            has_lines == opportunity["HasOpportunityLineItem"]
            and amount == opportunity["Amount"]
            and pricebook_id == opportunity["Pricebook2Id"]
        ):
            return
        self._touch(OPPORTUNITY.name, opportunity_id)
        now = format_timestamp(self.clock())
        changed: dict[str, Any] = {"LastModifiedDate": now}
        if amount != opportunity["Amount"]:
            changed["Amount"] = amount
        if has_lines != opportunity["HasOpportunityLineItem"]:
            changed["HasOpportunityLineItem"] = has_lines
        if pricebook_id != opportunity["Pricebook2Id"]:
            changed["Pricebook2Id"] = pricebook_id
        opportunity.update(changed, SystemModstamp=now)
        self._announce(Change(OPPORTUNITY.name, opportunity_id, "UPDATE", changed))

    # --- state file ---

    def dump(self) -> dict[str, Any]:
        """JSON-able copy of every record and counter."""
        return {
            "serial": self.serial,
            "autonumber": self.autonumber,
            "tables": {name: list(table.values()) for name, table in self.tables.items()},
        }

    def load(self, state: Mapping[str, Any]) -> None:
        """Restore what dump produced."""
        self.serial = int(state.get("serial", 0))
        self.autonumber = int(state.get("autonumber", 0))
        self.purge()
        for name, rows in state.get("tables", {}).items():
            spec = object_spec(name)
            if spec is not None:
                self.tables[spec.name] = {str(r["Id"]): dict(r) for r in rows}
                for record in self.tables[spec.name].values():
                    self._index(spec, record)
        self._add_standard_pricebook()  # a state file from before the sandbox had price books


def _integrity(what: str, fields: tuple[str, ...]) -> RecordError:
    """Salesforce's FIELD_INTEGRITY_EXCEPTION for a line whose product or price book does not fit."""
    return RecordError(400, [SfError("FIELD_INTEGRITY_EXCEPTION", f"field integrity exception: {what}", fields)])


def _line_name(opportunity: Mapping[str, Any], product: Mapping[str, Any]) -> str:
    """An opportunity product's name as Salesforce generates it: "<Opportunity name> <Product name>"."""
    return f"{opportunity['Name']} {product['Name']}"[:376]


def _cascades(child: ObjectSpec, via: FieldSpec) -> bool:
    """Whether deleting the parent deletes the child (master-detail and the standard cascades)."""
    return (child.name, via.name) in {
        ("OpportunityLineItem", "OpportunityId"),
        ("Contact", "AccountId"),
        ("Opportunity", "AccountId"),
        ("PricebookEntry", "Product2Id"),
        ("PricebookEntry", "Pricebook2Id"),
    }
