"""QuickBooks Online answers checked against Intuit's XSD files (the contract in ../shared/contracts/quickbooks).

QBO's JSON is the XSD's XML written as JSON (JAXB): an element is a key, a repeated element a list, an attribute a
key too, and an element of simple content (`ReferenceType`) an object whose `value` is its text. So rather than
rebuilding XML (which needs the XSD's element order, which JSON does not keep), every key of an answer is looked
up in the complexType it belongs to, recursively, and every scalar is validated by the XSD simple type it has
(enumerations, dates, decimals, booleans): a key the schema lacks, a list where one element is allowed, or a value
its type refuses fails the test. `IntuitRestServiceDef.xsd` includes a `Report.xsd` that the contract folder does
not ship; an empty `Report` type stands in for it (no answer of the simulator holds a report).
"""

from __future__ import annotations

import shutil
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import xmlschema

CONTRACT_DIR = Path(__file__).resolve().parents[3] / "shared" / "contracts" / "quickbooks"
_STUB_REPORT = """<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns="http://schema.intuit.com/finance/v3"
    targetNamespace="http://schema.intuit.com/finance/v3" elementFormDefault="qualified">
  <xs:complexType name="Report"><xs:sequence>
    <xs:any minOccurs="0" maxOccurs="unbounded" processContents="skip"/>
  </xs:sequence></xs:complexType>
</xs:schema>
"""


def contract_dir() -> Path:
    """Where the XSD files are: ../shared/contracts/quickbooks next to the repository, or /work/shared."""
    for candidate in (CONTRACT_DIR, Path("/work/shared/contracts/quickbooks")):
        if (candidate / "Finance.xsd").is_file():
            return candidate
    raise FileNotFoundError("the QuickBooks XSD files (shared/contracts/quickbooks) are not there")


@cache
def schema() -> xmlschema.XMLSchema:
    """The QBO schema (IntuitRestServiceDef.xsd with what it includes), built once per test session."""
    folder = Path(tempfile.mkdtemp(prefix="qbo-xsd-"))
    for xsd in contract_dir().glob("*.xsd"):
        shutil.copy(xsd, folder / xsd.name)
    (folder / "Report.xsd").write_text(_STUB_REPORT, encoding="utf-8")
    return xmlschema.XMLSchema(str(folder / "IntuitRestServiceDef.xsd"))


@cache
def _children(xsd_type: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for element in xsd_type.content.iter_elements():
        found.setdefault(element.local_name, element)
    return found


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _check_simple(value: Any, xsd_type: Any, where: str, problems: list[str]) -> None:
    if isinstance(value, dict | list):
        problems.append(f"{where}: a simple value was expected, got {type(value).__name__}")
        return
    errors = list(xsd_type.iter_errors(_text(value)))
    if errors:
        problems.append(f"{where}: {value!r} is not a valid {xsd_type.local_name or xsd_type}: {errors[0].reason}")


def _element_for(xsd_type: Any, key: str) -> tuple[Any, Any] | None:
    """The (element, its type) a key names; for a member of IntuitObject's substitution group (any entity:
    Customer, Invoice...) the occurrences are those of the IntuitObject reference it stands in for."""
    children = _children(xsd_type)
    if key in children:
        return children[key], children[key].type
    member = schema().elements.get(key)
    if "IntuitObject" in children and member is not None:
        return children["IntuitObject"], member.type
    return None


def _check(value: Any, xsd_type: Any, where: str, problems: list[str]) -> None:
    if xsd_type.is_simple():
        _check_simple(value, xsd_type, where, problems)
        return
    if not isinstance(value, dict):
        problems.append(f"{where}: an object was expected, got {value!r}")
        return
    attributes = xsd_type.attributes
    for key, item in value.items():
        here = f"{where}.{key}"
        if xsd_type.has_simple_content() and key == "value":
            _check_simple(item, xsd_type.content, here, problems)
            continue
        if key in attributes:
            _check_simple(item, attributes[key].type, here, problems)
            continue
        found = _element_for(xsd_type, key)
        if found is None:
            problems.append(f"{here}: no such element or attribute in {xsd_type.local_name}")
            continue
        element, element_type = found
        repeated = element.max_occurs is None or element.max_occurs > 1
        if repeated:
            if not isinstance(item, list):
                problems.append(f"{here}: a list was expected (maxOccurs {element.max_occurs})")
                continue
            for n, entry in enumerate(item):
                _check(entry, element_type, f"{here}[{n}]", problems)
        elif isinstance(item, list):
            problems.append(f"{here}: one value was expected, got a list")
        else:
            _check(item, element_type, here, problems)


def problems(answer: Any, type_name: str = "IntuitResponse") -> list[str]:
    """What in a JSON answer the XSD type does not allow (empty when it conforms)."""
    found: list[str] = []
    _check(answer, schema().types[type_name], type_name, found)
    return found


def assert_conforms(answer: Any, type_name: str = "IntuitResponse") -> None:
    """Fail with every problem found when a JSON answer does not conform to the XSD."""
    found = problems(answer, type_name)
    assert not found, "answer does not conform to the QBO XSD:\n" + "\n".join(found[:20])
