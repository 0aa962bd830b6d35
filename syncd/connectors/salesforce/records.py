"""Turning SOQL rows into Records, and write fields into REST bodies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from syncd.connectors.base import FieldValue, Record
from syncd.connectors.salesforce.values import ValueTypeError, to_fields, to_json, to_value
from syncd.errors import SkippableError

SYSTEM = "salesforce"
REFERENCE_FIELD = "Syncd_Ref__c"
LINE_ITEMS = "line_items"
# The Opportunity's line items as the connector hands them out, with their describe types. A line's own Name is
# Salesforce's "<Opportunity name> <Product name>"; the product's name is read through the Product2 relationship
# and handed out under its SOQL path, `Product2.Name`.
LINE_FIELDS: Mapping[str, str] = {
    "Id": "id", "Name": "string", "Description": "string", "Quantity": "double", "UnitPrice": "currency",
    "TotalPrice": "currency", "ProductCode": "string", "Product2.Name": "string",
}


def to_record(obj: str, row: Mapping[str, Any], types: Mapping[str, str],
              line_items: Sequence[Mapping[str, FieldValue]] | None = None) -> Record:
    """One SOQL row as a Record; `SystemModstamp` is its modification time; a row from the recycle bin (queryAll)
    is a deletion, or a merge when it names its master."""
    fields: dict[str, FieldValue] = to_fields(row, types)
    if line_items is not None:
        fields[LINE_ITEMS] = list(line_items)
    stamp = to_value("datetime", row.get("SystemModstamp") or row.get("LastModifiedDate"))
    if not isinstance(stamp, datetime):
        raise ValueTypeError(f"{obj} {row.get('Id')} has no SystemModstamp")
    deleted = bool(row.get("IsDeleted"))
    master = row.get("MasterRecordId") if deleted else None  # a merge's loser names the record it went into
    return Record(system=SYSTEM, object=obj, id=str(row["Id"]), fields=fields, modified_at=stamp,
                  deleted=deleted, merged_into=str(master) if master else None)


def to_line(row: Mapping[str, Any]) -> dict[str, FieldValue]:
    """One OpportunityLineItem row as an entry of an Opportunity's `line_items`; parent fields, which SOQL nests
    (`{"Product2": {"Name": ...}}`, null without a product), flattened to their dotted path."""
    return {name: to_value(kind, _path(row, name)) for name, kind in LINE_FIELDS.items()}


def _path(row: Mapping[str, Any], name: str) -> Any:
    relationship, _, field = name.partition(".")
    if not field:
        return row.get(name)
    parent = row.get(relationship)
    return parent.get(field) if isinstance(parent, Mapping) else None


def write_body(obj: str, fields: Mapping[str, FieldValue], *, record: str,
               connection: str) -> dict[str, Any]:
    """A REST body for a create or update; SkippableError for what Salesforce cannot take this way."""
    if LINE_ITEMS in fields:
        raise SkippableError(
            "Opportunity line items are written as OpportunityLineItem records, not through the Opportunity",
            connection=connection, record=record,
        )
    try:
        body = {name: to_json(value) for name, value in fields.items()}
    except ValueTypeError as exc:
        raise SkippableError(str(exc), connection=connection, record=record) from None
    return {"attributes": {"type": obj}, **body}
