"""The one documented correction applied to HubSpot's OpenAPI files before validating responses against them.

The files type every value of a record's `properties` map as a plain `string`, but the live API answers
`null` for a requested property that has no value (`"phone": null`), and the official client
(`hubspot-api-client`, whose models take `dict(str, str)`) deserialises that as None without complaint. The
rule: *a `properties` map of string values also accepts null*. Nothing else in the files is changed.
"""

from __future__ import annotations

from typing import Any


def _allow_null_property_values(node: dict[str, Any]) -> None:
    """Where a schema's `properties` property is a map of strings, let its values be null too."""
    fields = node.get("properties")
    if not isinstance(fields, dict):
        return
    values_map = fields.get("properties")
    if not isinstance(values_map, dict) or values_map.get("type") != "object":
        return
    values = values_map.get("additionalProperties")
    if isinstance(values, dict) and values.get("type") == "string":
        values["nullable"] = True


def _walk(node: Any) -> None:
    """Apply the correction to every schema object in the document, depth first."""
    if isinstance(node, dict):
        _allow_null_property_values(node)
        for value in node.values():
            _walk(value)
    elif isinstance(node, list):
        for value in node:
            _walk(value)


def fix_hubspot_spec(document: dict[str, Any]) -> None:
    """Transform for `tests.contracts.openapi.load_spec`: apply the documented null-value rule in place."""
    _walk(document)
