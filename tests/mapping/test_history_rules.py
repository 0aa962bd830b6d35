"""The history rules of a mapping file: document match keys, the `sync_from` cut-off and `mark_sent`, checked
with every mistake reported at its line, and what they decide once compiled."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from syncd.connectors.base import Record
from syncd.mapping.loader import SHIPPED_MAPPINGS_DIR, check_text

SHIPPED = (SHIPPED_MAPPINGS_DIR / "hubspot-zohobooks.toml").read_text()
CUT_OFF = 'sync_from = { field = "date" }\n\n[objects.invoice.create]'


def problems_of(text: str) -> dict[str, tuple[str, str]]:
    """key path → (message, the text of the line reported) for every problem in a mapping file's text."""
    _, problems = check_text(text, "hub.toml")
    lines = text.splitlines()
    return {p.key_path: (p.message, lines[(p.line or 1) - 1].strip()) for p in problems}


def test_the_shipped_history_rules_compile() -> None:
    mapping, problems = check_text(SHIPPED, "hub.toml")
    assert not problems and mapping is not None
    invoice = mapping.objects["invoice"]
    assert invoice.match is not None and invoice.match.tolerance_days == 7 and invoice.match.customer == "customer"
    assert invoice.sync_from is not None and invoice.sync_from.since is None  # the mapping's activation
    assert not invoice.create.mark_sent


def test_every_history_mistake_is_reported_at_its_line() -> None:
    broken = SHIPPED.replace('customer = "customer"\namount', 'customer = "due_date"\namount').replace(
        CUT_OFF, CUT_OFF.replace('field = "date"', 'field = "closing", since = 2025-01-01')
    )
    found = problems_of(broken)
    assert found["objects.invoice.match.customer"] == (
        "match.customer 'due_date' is not a link field of this object", 'customer = "due_date"')
    assert found["objects.invoice.sync_from.field"] == (
        "sync_from.field 'closing' is not a mapped field of this object",
        'sync_from = { field = "closing", since = 2025-01-01 }')
    mistyped = SHIPPED.replace("tolerance_days = 7", "tolerance_days = -1").replace(
        "mark_sent = false", 'mark_sent = "maybe"'
    )
    found = problems_of(mistyped)
    assert found["objects.invoice.match.tolerance_days"][1] == "tolerance_days = -1"
    assert found["objects.invoice.create.mark_sent"][1] == 'mark_sent = "maybe"'


def test_a_customer_alone_never_matches_and_match_keys_do_not_mix_with_match() -> None:
    alone = SHIPPED.replace('amount = { crm = "amount", acc = "total", transform = "money" }\n', "").replace(
        'date = { crm = "closedate", acc = "date", transform = "date" }\n', ""
    ).replace('reference = { crm = "hs_object_id", acc = "reference_number", transform = "trim" }\n', "")
    message, line = problems_of(alone)["objects.invoice.match"]
    assert "a customer alone is never enough" in message and line == "[objects.invoice.match]"
    both = SHIPPED.replace('depends_on = ["customer"]\n', 'depends_on = ["customer"]\nmatch_keys = ["date"]\n', 1)
    assert "not both" in problems_of(both)["objects.invoice.match"][0]


def test_mark_sent_needs_creating() -> None:
    text = SHIPPED.replace(
        "crm_to_accounting = true\naccounting_to_crm = false\ncrm_ref_field = \"syncd_ref\"\n"
        "acc_ref_field = \"reference_number\"",
        "crm_ref_field = \"syncd_ref\"",
    ).replace("mark_sent = false", "mark_sent = true")
    found = problems_of(text)
    assert found["objects.invoice.create.mark_sent"] == (
        "mark_sent applies to records syncd creates, and creating is off", "mark_sent = true")


def test_documents_match_within_the_tolerances_and_history_is_dated_by_day() -> None:
    mapping, _ = check_text(SHIPPED, "hub.toml")
    assert mapping is not None
    invoice = mapping.objects["invoice"]
    match, cut_off = invoice.match, invoice.sync_from
    assert match is not None and cut_off is not None
    now = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)

    def deal(amount: str, closed: date) -> Record:
        return Record("hubspot", "deals", "1", {"amount": Decimal(amount), "closedate": closed}, now)

    def bill(total: str, on: date) -> Record:
        return Record("zohobooks", "invoices", "9", {"total": Decimal(total), "date": on}, now)

    assert match.near(deal("1200", date(2026, 1, 10)), "crm", bill("1200.00", date(2026, 1, 17)), "accounting")
    assert not match.near(deal("1200", date(2026, 1, 10)), "crm", bill("1200.00", date(2026, 1, 18)), "accounting")
    assert not match.near(deal("1200", date(2026, 1, 10)), "crm", bill("1200.01", date(2026, 1, 10)), "accounting")
    assert not match.near(deal("1200", date(2026, 1, 10)), "crm", bill("1200", None), "accounting")  # type: ignore[arg-type]
    # A deal closed on the day syncd was switched on is new work; the day before is history.
    assert not cut_off.is_before(date(2026, 3, 10), now)
    assert cut_off.is_before(date(2026, 3, 9), now)
    assert not cut_off.is_before(None, now)
    assert cut_off.is_before(datetime(2026, 3, 10, 14, 59, tzinfo=UTC), now)
