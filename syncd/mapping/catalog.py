"""Check a mapping against the systems' live field lists (each connector's `describe`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from syncd.errors import Problem
from syncd.mapping.spec import FieldSpec, KeyPath, MappingSpec, ObjectSpec, dotted


class FieldCatalog(Protocol):
    """What a connector offers to list an object's field names (describe / properties)."""

    async def fields(self, object: str) -> set[str]:
        """Names of every field `object` has on this system; nested ones flattened with dots."""
        ...


def _known(name: str, available: set[str]) -> bool:
    # Flattened names (primary_contact.email, invoices.0.invoice_id) exist if the name or its root is listed.
    return name in available or name.split(".", 1)[0] in available


def _side_names(obj: ObjectSpec, attr: str) -> list[tuple[KeyPath, str]]:
    names: list[tuple[KeyPath, str]] = []
    for fname, fspec in obj.fields.items():
        value = getattr(fspec, attr)
        if value is not None:
            names.append((("fields", fname, attr), value))
    extra = obj.crm_extra_fields if attr == "crm" else obj.acc_extra_fields
    names += [((f"{attr}_extra_fields", i), n) for i, n in enumerate(extra)]
    ref = obj.create.crm_ref_field if attr == "crm" else obj.create.acc_ref_field
    if ref is not None:
        names.append((("create", f"{attr}_ref_field"), ref))
    return names


def _item_names(fspec: FieldSpec, fname: str, attr: str) -> list[tuple[KeyPath, str]]:
    return [(("fields", fname, "items", i, attr), getattr(s, attr)) for i, s in (fspec.items or {}).items()]


def validate_against_catalog(
    spec: MappingSpec, crm_fields: Mapping[str, set[str]], acc_fields: Mapping[str, set[str]]
) -> list[Problem]:
    """Problems for every mapped field a live system does not have.

    `crm_fields`/`acc_fields` map a system object name to its field names. Objects missing from a catalog
    are reported once. A list field's sub-fields are checked when the catalog lists `"<object>.<field>"`
    (for example `"deals.line_items"` → a CRM's line item properties).
    """
    problems: list[Problem] = []

    def report(path: KeyPath, message: str) -> None:
        problems.append(Problem(spec.source_file, dotted(path), message, spec.line_of(path)))

    for name, obj in spec.objects.items():
        base: KeyPath = ("objects", name)
        for attr, system, catalog, system_object in (
            ("crm", spec.mapping.crm, crm_fields, obj.crm_object),
            ("acc", spec.mapping.accounting, acc_fields, obj.acc_object),
        ):
            available = catalog.get(system_object)
            if available is None:
                report((*base, f"{attr}_object"), f"{system} has no object {system_object!r}")
                continue
            for path, field_name in _side_names(obj, attr):
                if not _known(field_name, available):
                    report((*base, *path), f"{system} {system_object} has no field {field_name!r}")
            for fname, fspec in obj.fields.items():
                sub_available = catalog.get(f"{system_object}.{getattr(fspec, attr)}")
                if fspec.items is None or sub_available is None:
                    continue
                for path, field_name in _item_names(fspec, fname, attr):
                    if not _known(field_name, sub_available):
                        report((*base, *path), f"{system} {system_object} items have no field {field_name!r}")
    problems.sort(key=lambda p: (p.line or 0, p.key_path))
    return problems
