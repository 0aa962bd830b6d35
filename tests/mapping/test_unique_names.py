"""The unique-name rule of a create: checked where it is written, and the names it offers in turn."""

from __future__ import annotations

from syncd.mapping.compiled import UniqueName
from syncd.mapping.loader import SHIPPED_MAPPINGS_DIR, check_text, load_mapping

HEAD = """\
name = "m"

[mapping]
crm = "salesforce"
accounting = "zohobooks"

[objects.customer]
crm_object = "Contact"
acc_object = "contacts"
match_keys = ["email"]

[objects.customer.fields.email]
crm = "Email"
acc = "primary_contact.email"
transform = "email"

[objects.customer.fields.name]
crm = "LastName"
acc = "contact_name"
transform = "trim"
"""


def _with_create(*rules: str) -> str:
    """HEAD with a create from the CRM to Zoho Books under `rules` (lines of [objects.customer.create])."""
    create = '[objects.customer.create]\ncrm_to_accounting = true\nacc_ref_field = "cf_syncd_ref"\n'
    return HEAD.replace('match_keys = ["email"]\n', 'match_keys = ["email"]\n\n' + create + "".join(rules))


def _problems(text: str) -> dict[str, tuple[int | None, str]]:
    compiled, problems = check_text(text, "m.toml")
    assert compiled is None or not problems
    return {p.key_path: (p.line, p.message) for p in problems}


def test_the_shipped_files_disambiguate_zoho_customer_names_by_email_then_company() -> None:
    hubspot = load_mapping(SHIPPED_MAPPINGS_DIR / "hubspot-zohobooks.toml").objects["customer"].create
    rule = hubspot.unique_name("accounting")
    assert rule is not None and rule.field == "contact_name" and hubspot.unique_name("crm") is None
    person = {"email": "jennifer.mitchell229@example.com", "company": "Acme", "first_name": "Jennifer"}
    assert rule.candidates("Jennifer Mitchell", person) == [
        "Jennifer Mitchell (jennifer.mitchell229@example.com)",
        "Jennifer Mitchell (Acme)",
    ]
    # A blank placeholder passes its alternative over; none left means nothing more to try.
    assert rule.candidates("Jennifer Mitchell", {**person, "email": None}) == ["Jennifer Mitchell (Acme)"]
    assert rule.candidates("Jennifer Mitchell", {"email": " ", "company": None}) == []


def test_alternatives_that_give_the_refused_name_or_repeat_one_are_not_tried_twice() -> None:
    # Zoho Books compares names regardless of case, so a name differing only in case is the same name.
    rule = UniqueName("contact_name", ("$value", "$name", "$value ($city)", "$value ($town)", "$value ($zip)"))
    values = {"name": "ann lee", "city": "Boston", "town": "BOSTON", "zip": "02110"}
    assert rule.candidates("Ann Lee", values) == ["Ann Lee (Boston)", "Ann Lee (02110)"]


def test_without_alternatives_the_email_is_appended_as_far_as_the_object_maps_it() -> None:
    text = _with_create('acc_unique_name = { field = "contact_name" }\n')
    text = text.replace('transform = "trim"\n', 'transform = "trim"\ncreate_only = true\n')
    compiled, problems = check_text(text, "m.toml")
    assert not problems and compiled is not None
    assert compiled.objects["customer"].create.unique_name("accounting") == UniqueName(
        "contact_name", ("$value ($email)",)
    )


def test_a_unique_name_rule_on_a_field_compared_after_the_create_is_refused_with_its_line() -> None:
    # The name chosen would differ from the CRM's on every later pass and be written back: a flip-flop.
    text = _with_create(
        'acc_unique_name = { field = "contact_name", alternatives = ["$value ($nickname)"] }\n',
        'crm_unique_name = { field = "LastName", alternatives = [] }\n',
    )
    problems = _problems(text)
    line, message = problems["objects.customer.create.acc_unique_name.field"]
    assert line == 15 and "compared on every pass" in message and "create_only" in message
    line, message = problems["objects.customer.create.acc_unique_name.alternatives[0]"]
    assert line == 15 and "nickname" in message
    assert "creating there is off" in problems["objects.customer.create.crm_unique_name"][1]
    assert "at least one" in problems["objects.customer.create.crm_unique_name.alternatives"][1]


def test_a_unique_name_field_never_written_on_create_is_refused() -> None:
    text = _with_create('acc_unique_name = { field = "display_name", alternatives = ["$value ($email)"] }\n')
    message = _problems(text)["objects.customer.create.acc_unique_name.field"][1]
    assert "'display_name' is not written when creating" in message and "acc_values" in message
