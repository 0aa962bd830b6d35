"""Custom fields the simulated organisation has defined, and their request/response shapes.

Every module (contacts, invoices, customer payments) carries `cf_syncd_ref`: a text field marked unique, so it
can serve as `X-Unique-Identifier-Key` for upserts. Requests name a field by `api_name` (or its `label`);
responses carry the `custom_fields` array and, as the live API does, each value flattened as `cf_<name>` and in
`custom_field_hash`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from syncd.sandbox.zohobooks.errors import ZohoError, invalid


@dataclass(frozen=True)
class CustomFieldDefinition:
    """One custom field of a module."""

    api_name: str
    label: str
    index: int
    data_type: str = "string"
    unique: bool = False
    max_length: int = 255


SYNCD_REF = CustomFieldDefinition(api_name="cf_syncd_ref", label="Syncd Ref", index=1, unique=True)
DEFINITIONS: tuple[CustomFieldDefinition, ...] = (SYNCD_REF,)
UNIQUE_FIELD_CODE = 3062  # unverified


def definition(api_name: str) -> CustomFieldDefinition | None:
    """The field with this api_name, if defined."""
    return next((d for d in DEFINITIONS if d.api_name == api_name), None)


def parse_custom_fields(raw: Any) -> dict[str, str]:
    """Values from a request's `custom_fields` array (`api_name`, `label` or `index` with `value`)."""
    if not isinstance(raw, list):
        raise invalid("custom_fields")
    values: dict[str, str] = {}
    for entry in raw:
        if not isinstance(entry, Mapping):
            raise invalid("custom_fields")
        field = None
        if "api_name" in entry:
            field = definition(str(entry["api_name"]))
        elif "label" in entry:
            field = next((d for d in DEFINITIONS if d.label == entry["label"]), None)
        elif "index" in entry:
            field = next((d for d in DEFINITIONS if d.index == entry["index"]), None)
        if field is None:
            raise ZohoError(400, 4, "Invalid value passed for custom_fields: unknown custom field")
        value = entry.get("value", "")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise invalid(field.label)
        text = str(value)
        if len(text) > field.max_length:
            raise invalid(field.label)
        values[field.api_name] = text
    return values


def check_unique(values: Mapping[str, str], others: Iterable[Mapping[str, str]], entity: str) -> None:
    """Refuse a value of a unique field that another live record of the module already holds."""
    taken = list(others)
    for field in DEFINITIONS:
        value = values.get(field.api_name, "")
        if field.unique and value and any(o.get(field.api_name) == value for o in taken):
            raise ZohoError(
                400,
                UNIQUE_FIELD_CODE,
                f"The value '{value}' for the unique field {field.label} is already used by another {entity}.",
            )


def custom_fields_json(values: Mapping[str, str]) -> dict[str, Any]:
    """The `custom_fields` array plus the flattened `cf_*` keys and `custom_field_hash` of a response."""
    fields = []
    flat: dict[str, Any] = {}
    for field in DEFINITIONS:
        if field.api_name not in values:
            continue
        value = values[field.api_name]
        fields.append(
            {
                "index": field.index,
                "label": field.label,
                "api_name": field.api_name,
                "value": value,
                "data_type": field.data_type,
                "is_active": True,
                "show_on_pdf": False,
            }
        )
        flat[field.api_name] = value
    return {"custom_fields": fields, **flat, "custom_field_hash": {**flat}}


def as_fields(custom: Mapping[str, str]) -> list[dict[str, str]]:
    """Custom values as a request's `custom_fields` array (used to merge upsert header values into a body)."""
    return [{"api_name": key, "value": value} for key, value in custom.items()]
