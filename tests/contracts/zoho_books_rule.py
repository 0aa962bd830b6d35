"""The one documented correction applied to Zoho Books' OpenAPI files before validating responses against them.

The files type many amounts as `string` or `integer` while their own examples are decimal numbers (`total:
10000.00`), and the live API returns amounts as JSON numbers. The rule (contracts README, "Known defects"):
*a schema typed string or integer whose own example is a decimal number is a number*. Nothing else is changed,
except `page_context`, which the invoices file types as an array where the live API (and the contacts file)
has an object; both shapes are then accepted; and the customer-payments list key, which the file spells
`customer_payments` where the live API (Zoho's API docs, every client that reads it) sends `customerpayments`.

Left alone on purpose: `outstanding_receivable_amount` is typed integer with an integer example, so the rule
does not reach it although the live API sends a decimal; responses whose value has a fraction would fail on it
(the simulator's contact tests use whole amounts there). The rule is the documented one and is not widened.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CONTRACTS_DIR = Path(__file__).parent / "zoho_books"


def _is_decimal_example(example: Any) -> bool:
    """True for a YAML/JSON number written with a fraction (`10000.00`, `40.6`); bools and ints are not."""
    return isinstance(example, float)


def _allow_page_context_object(node: dict[str, Any]) -> None:
    """Where `page_context` is typed as an array of objects, accept that object on its own as well."""
    properties = node.get("properties")
    if not isinstance(properties, dict):
        return
    schema = properties.get("page_context")
    if not isinstance(schema, dict) or schema.get("type") != "array":
        return
    items = schema.get("items")
    if isinstance(items, dict) and (items.get("type") == "object" or "properties" in items):
        properties["page_context"] = {"anyOf": [items, schema]}


def _rename_payments_list_key(node: dict[str, Any]) -> None:
    """The list of customer payments is `customerpayments` in the live API's answers."""
    properties = node.get("properties")
    if isinstance(properties, dict) and "customer_payments" in properties and "page_context" in properties:
        properties["customerpayments"] = properties.pop("customer_payments")


def _walk(node: Any) -> None:
    """Apply the corrections to every schema object in the document, depth first."""
    if isinstance(node, dict):
        if node.get("type") in ("string", "integer") and _is_decimal_example(node.get("example")):
            node["type"] = "number"
        _allow_page_context_object(node)
        _rename_payments_list_key(node)
        for value in node.values():
            _walk(value)
    elif isinstance(node, list):
        for value in node:
            _walk(value)


def fix_zoho_books_spec(document: dict[str, Any]) -> None:
    """Transform for `tests.contracts.openapi.load_spec`: apply the documented defect rule in place."""
    _walk(document)
