"""The one correction applied to Xero's OpenAPI file before validating responses against it.

Fields Xero marks `x-is-msdate` or `x-is-msdate-time` (`UpdatedDateUTC`, `Date`, `DueDate`...) are written on the
wire in Microsoft's JSON form, `/Date(1573755038314+0000)/` (the file's own examples, and what xero-python's
deserializer parses for them), while some are typed `format: date-time`: their `format` is dropped.

The file also fails its own schema check (openapi-core validates it on load): booleans and numbers whose `default`
or `example` is written quoted (`default: 'false'`) get the unquoted value. Nothing else is changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CONTRACTS_DIR = Path(__file__).parent / "xero"


def _walk(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("x-is-msdate") or node.get("x-is-msdate-time"):
            node.pop("format", None)
        for key in ("default", "example"):
            value = node.get(key)
            if isinstance(value, str) and node.get("type") == "boolean" and value in ("true", "false"):
                node[key] = value == "true"
            elif isinstance(value, str) and node.get("type") in ("number", "integer"):
                try:
                    node[key] = int(value) if node["type"] == "integer" else float(value)
                except ValueError:
                    node.pop(key)
        for value in node.values():
            _walk(value)
    elif isinstance(node, list):
        for value in node:
            _walk(value)


def fix_xero_spec(doc: dict[str, Any]) -> None:
    """Apply the correction in place."""
    _walk(doc)
