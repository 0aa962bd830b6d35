"""The engine names no system, and no object or field of one: what it needs of them comes from registrations."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import syncd.engine
from syncd.systems import registrations

ENGINE = Path(syncd.engine.__file__).parent


def _vendor_words() -> tuple[set[str], set[str]]:
    """(system names and labels, object and field names) of every registered system."""
    systems: set[str] = set()
    names: set[str] = set()
    for entry in registrations():
        systems.update({entry.name.lower(), entry.label.lower(), entry.label.replace(" ", "").lower()})
        names.update(entry.objects)
        if entry.deals is not None:
            names.update({entry.deals.object, entry.deals.amount, entry.deals.name})
        if entry.invoices is not None:
            names.update({entry.invoices.object, entry.invoices.status_field})
            if entry.invoices.payment_object:
                names.add(entry.invoices.payment_object)
    return systems, names


def test_no_engine_module_names_a_system_anywhere_in_its_text() -> None:
    systems, _ = _vendor_words()
    # "Zoho" alone, as people say it, counts too.
    words = systems | {label.split()[0] for label in systems if " " in label}
    found = []
    for path in sorted(ENGINE.glob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            lowered = line.lower()
            found += [f"{path.name}:{number}: {word}" for word in words
                      if re.search(rf"(?<![a-z]){re.escape(word)}(?![a-z])", lowered)]
    assert found == []


def test_no_engine_string_literal_is_an_object_or_field_of_a_system() -> None:
    _, names = _vendor_words()
    found = []
    for path in sorted(ENGINE.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                      and node.body and isinstance(node.body[0], ast.Expr)
                      and isinstance(node.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
                    and node.value in names):
                found.append(f"{path.name}:{node.lineno}: {node.value!r}")
    assert found == []
