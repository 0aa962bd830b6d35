"""Mapping files: the shipped ones compile cleanly, broken ones report every problem with its line."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from syncd.errors import MappingError
from syncd.mapping.command import mappings_command
from syncd.mapping.loader import SHIPPED_MAPPINGS_DIR, check_text, load_mapping, load_mappings
from syncd.systems import registrations

SHIPPED = sorted(SHIPPED_MAPPINGS_DIR.glob("*.toml"))

BROKEN = """\
[mapping]
crm = "hubspot"
accounting = "zohobooks"

[objects.customer]
crm_object = "contacts"
acc_object = "contacts"
direction = "sideways"
match_keys = ["email", "nickname"]
crm_filter = 'email.__class__ == 1'

[objects.customer.fields.email]
crm = "email"
acc = "primary_contact.email"
transform = "emial"
colour = "red"

[objects.customer.fields.phone]
crm = "phone"
acc = "primary_contact.phone"
transform = { name = "phone", region = "Atlantis" }

[objects.invoice]
crm_object = "deals"
acc_object = "invoices"
acc_filter = 'balance > 0 and missing_field'
delete_policy = "shred"

[objects.invoice.fields.stage]
crm = "dealstage"
acc = "status"
crm_transform = [
  "trim",
  { name = "value_map", map = { closedwon = "sent", won = "sent" } },
]

[objects.invoice.fields.balance]
crm = "syncd_balance"
acc = "balance"
transform = "money"

[objects.invoice.fields.balance_copy]
crm = "syncd_balance"
acc = "balance"
transform = "money"
direction = "accounting_to_crm"
"""


def test_shipped_mappings_compile_with_no_problems() -> None:
    assert {p.name for p in SHIPPED} == {f for system in registrations() for f in system.mapping_files}
    mappings = load_mappings(SHIPPED)
    hubspot = next(m for m in mappings if m.crm_system == "hubspot")
    assert hubspot.order.index("customer") < hubspot.order.index("invoice") < hubspot.order.index("payment")
    assert hubspot.objects["invoice"].depends_on == ("customer",)
    salesforce = next(m for m in mappings if m.crm_system == "salesforce")
    assert salesforce.objects["payment"].depends_on == ("invoice",)
    assert salesforce.objects["payment"].references["invoice"].crm_field == "Opportunity__c"


def test_broken_file_reports_every_problem_with_its_line() -> None:
    compiled, problems = check_text(BROKEN, "broken.toml")
    assert compiled is None
    found = {(p.line, p.key_path) for p in problems}
    expected = {
        (8, "objects.customer.direction"),  # unknown direction
        (9, "objects.customer.match_keys[1]"),  # match key that is not a mapped field
        (10, "objects.customer.crm_filter"),  # attribute access in a filter
        (15, "objects.customer.fields.email.transform[0]"),  # unknown transform name
        (16, "objects.customer.fields.email.colour"),  # unknown key
        (21, "objects.customer.fields.phone.transform[0]"),  # bad transform argument
        (26, "objects.invoice.acc_filter"),  # filter names an unknown field
        (27, "objects.invoice.delete_policy"),  # unknown policy
        (34, "objects.invoice.fields.stage.crm_transform[1]"),  # 'both' field with a non-invertible map
        (43, "objects.invoice.fields.balance_copy.crm"),  # two fields write one target
    }
    assert expected <= found, sorted(found)
    messages = {p.key_path: p.message for p in problems}
    assert "unknown transform 'emial'" in messages["objects.customer.fields.email.transform[0]"]
    assert "unknown key 'colour'" in messages["objects.customer.fields.email.colour"]
    assert "Atlantis" in messages["objects.customer.fields.phone.transform[0]"]
    assert "missing_field" in messages["objects.invoice.acc_filter"]
    assert "cannot be inverted" in messages["objects.invoice.fields.stage.crm_transform[1]"]
    assert all(p.file == "broken.toml" for p in problems)


def test_problems_in_a_valid_shape_are_all_reported_together() -> None:
    # Typing succeeds here, so these come from the compile checks alone: match key, filter, link, create.
    text = """\
[mapping]
crm = "salesforce"
accounting = "zohobooks"

[objects.customer]
crm_object = "Account"
acc_object = "contacts"
match_keys = ["email"]
crm_filter = '__import__("os").system("true")'

[objects.customer.create]
crm_to_accounting = true
acc_values = { contact_name = "$first $Name" }

[objects.customer.fields.name]
crm = "Name"
acc = "contact_name"
transform = "trim"

[objects.customer.fields.owner]
crm = "OwnerId"
link = "users"
"""
    _, problems = check_text(text, "m.toml")
    by_path = {p.key_path: (p.line, p.message) for p in problems}
    assert by_path["objects.customer.match_keys[0]"][0] == 8
    assert by_path["objects.customer.crm_filter"][0] == 9
    assert by_path["objects.customer.create.acc_ref_field"][0] == 11
    assert by_path["objects.customer.create.acc_values.contact_name"][0] == 13
    assert "first" in by_path["objects.customer.create.acc_values.contact_name"][1]
    assert by_path["objects.customer.fields.owner.link"][0] == 22


def test_toml_syntax_error_reports_its_line() -> None:
    _, problems = check_text('[mapping]\ncrm = "hubspot"\naccounting = zohobooks\n', "bad.toml")
    assert len(problems) == 1
    assert problems[0].line == 3
    assert problems[0].message.startswith("TOML syntax")


def test_load_raises_mapping_error_listing_all_files(tmp_path: Path) -> None:
    first = tmp_path / "a.toml"
    first.write_text(BROKEN)
    second = tmp_path / "b.toml"
    second.write_text("[mapping\n")
    with pytest.raises(MappingError) as caught:
        load_mappings([first, second])
    files = {p.file for p in caught.value.problems}
    assert files == {str(first), str(second)}
    assert str(caught.value).count("\n") == len(caught.value.problems)


def test_load_mapping_returns_compiled_mapper() -> None:
    mapping = load_mapping(SHIPPED_MAPPINGS_DIR / "hubspot-zohobooks.toml")
    assert mapping.for_object("crm", "deals") == [mapping.objects["invoice"], mapping.objects["payment"]]


def test_validate_command_passes_shipped_files_and_exits_2_on_problems(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(mappings_command, ["validate", *map(str, SHIPPED)])
    assert ok.exit_code == 0, ok.output
    assert "hubspot-zohobooks.toml: OK" in ok.output
    broken = tmp_path / "broken.toml"
    broken.write_text(BROKEN)
    bad = runner.invoke(mappings_command, ["validate", str(broken)])
    assert bad.exit_code == 2
    assert f"{broken}:8: objects.customer.direction:" in bad.output
    assert f"{broken}:15: objects.customer.fields.email.transform[0]: unknown transform 'emial'" in bad.output


def test_validate_live_without_connectors_says_so(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(mappings_command, ["validate", "--live"])
    assert result.exit_code == 2
    assert "--live needs --config" in result.output


def test_every_file_must_name_its_mapping_and_the_message_says_how(tmp_path: Path) -> None:
    shipped = (SHIPPED_MAPPINGS_DIR / "hubspot-zohobooks.toml").read_text()
    unnamed = shipped.replace('name = "hubspot-zohobooks"\n', "")
    _, problems = check_text(unnamed, "conf/hubspot-zohobooks.toml")
    [problem] = problems
    # It has no line of its own: the first table's, before which it belongs.
    assert (problem.key_path, problem.line) == ("name", unnamed.splitlines().index("[mapping]") + 1)
    assert 'add name = "hubspot-zohobooks" at the top of the file' in problem.message
    _, problems = check_text(shipped.replace('name = "hubspot-zohobooks"', 'name = "hub:zoho"'), "m.toml")
    name_line = shipped.splitlines().index('name = "hubspot-zohobooks"') + 1
    assert [(p.key_path, p.line) for p in problems] == [("name", name_line)]
    assert "'hub:zoho'" in problems[0].message


def test_two_files_with_one_name_cannot_be_active_together(tmp_path: Path) -> None:
    original = SHIPPED_MAPPINGS_DIR / "hubspot-zohobooks.toml"
    copy = tmp_path / "my-copy.toml"
    copy.write_text(original.read_text())
    with pytest.raises(MappingError) as caught:
        load_mappings([original, copy])
    [problem] = caught.value.problems
    assert problem.file == str(copy) and problem.key_path == "name" and problem.line is not None
    assert f"'hubspot-zohobooks' is already the name of {original}" in problem.message
    # Alone, the copy is the same mapping as the original: same name, whatever its file is called.
    assert load_mapping(copy).name == "hubspot-zohobooks"


PATHOLOGICAL_FILTER = """\
name = "hostile"

[mapping]
crm = "hubspot"
accounting = "zohobooks"

[objects.customer]
crm_object = "contacts"
acc_object = "contacts"
match_keys = ["email"]
crm_filter = '{filter}'

[objects.customer.fields.email]
crm = "email"
acc = "email"
"""


@pytest.mark.parametrize(
    "expression",
    [
        "not " * 200_000 + "email",  # parser and evaluator recursion
        "+".join(["email"] * 100_000),  # a left-nested sum as deep as it is long
        "-" * 60 + "email == 1",  # short, but nested past the bound
    ],
    ids=["200k-not", "100k-plus", "60-minus"],
)
def test_a_pathological_filter_is_a_mapping_error_with_its_line(tmp_path: Path, expression: str) -> None:
    path = tmp_path / "hostile.toml"
    path.write_text(PATHOLOGICAL_FILTER.format(filter=expression))
    result = CliRunner().invoke(mappings_command, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert f"{path}:11: objects.customer.crm_filter: filter " in result.output
    assert "at most" in result.output


def test_systems_and_objects_are_checked_against_the_registry() -> None:
    text = ('name = "x"\n[mapping]\ncrm = "zohobooks"\naccounting = "abacus"\n'
            '[objects.customer]\ncrm_object = "contacts"\nacc_object = "contacts"\n')
    _, problems = check_text(text, "x.toml")
    crms, books = (", ".join(entry.name for entry in registrations(role)) for role in ("crm", "accounting"))
    assert [str(p) for p in problems] == [
        f"x.toml:3: mapping.crm: expected a registered crm system: {crms} (got 'zohobooks')",
        f"x.toml:4: mapping.accounting: expected a registered accounting system: {books} (got 'abacus')",
    ]
    text = ('name = "x"\n[mapping]\ncrm = "hubspot"\naccounting = "zohobooks"\n'
            '[objects.customer]\ncrm_object = "contact"\nacc_object = "contacts"\n')
    _, problems = check_text(text, "x.toml")
    assert [str(p) for p in problems] == [
        "x.toml:6: objects.customer.crm_object: hubspot has no object 'contact' that syncd syncs "
        "(known: contacts, companies, deals, line_items)",
    ]
