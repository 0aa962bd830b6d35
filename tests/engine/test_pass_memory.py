"""What a first sync keeps for the whole pass stays small and still answers every question the pass asks: the
own side's index keeps only the keys the other side holds (and says it does not know any other key), the read
waits on disk page by page, and the records met are kept as compact flags."""

from __future__ import annotations

from datetime import UTC, datetime

from syncd.connectors.base import Page, Record
from syncd.engine.held_names import HeldNames
from syncd.engine.match_index import FullRead, MatchIndex
from syncd.engine.pass_records import HANDLED, LINKED, READ, PassRecords, id_key
from syncd.mapping.compiled import ObjectMapper
from syncd.mapping.loader import SHIPPED_MAPPINGS_DIR, load_mapping

STAMP = datetime(2026, 1, 5, 9, tzinfo=UTC)


def customer() -> ObjectMapper:
    """The shipped HubSpot ↔ Zoho Books customer mapping."""
    return load_mapping(SHIPPED_MAPPINGS_DIR / "hubspot-zohobooks.toml").objects["customer"]


def contact(i: int, email: str) -> Record:
    return Record("hubspot", "contacts", str(i), {"email": email, "firstname": "Ann", "lastname": f"Lee{i}"}, STAMP)


def zoho(i: int, email: str) -> Record:
    return Record("zohobooks", "contacts", f"46000000{i}", {
        "contact_name": f"Ann Lee{i}", "contact_type": "customer", "primary_contact.email": email,
    }, STAMP)  # fmt: skip


def test_the_own_side_index_keeps_only_the_keys_the_other_side_holds() -> None:
    mapper = customer()
    there = MatchIndex.of(mapper, "accounting", [zoho(1, "ann.lee1@example.com"), zoho(9, "zoe@example.com")])
    contacts = [contact(i, f"Ann.Lee{i}@example.com") for i in range(1, 1001)]
    own = MatchIndex.of(mapper, "crm", contacts, lean=True, among=there)

    assert len(own.by_key) == 1  # 1,000 contacts read, one of them a customer already
    shared = mapper.match_key("crm", contacts[0])
    assert shared is not None
    assert [r.id for r in own.find(shared) or []] == ["1"]
    # A key the other side held but no contact: known to be nobody's here.
    zoe = mapper.match_key("accounting", zoho(9, "zoe@example.com"))
    assert zoe is not None and own.find(zoe) == []
    # Any other key (a customer made since the read, say): not known here, so matching looks it up.
    later = mapper.match_key("crm", contacts[5])
    assert later is not None and own.find(later) is None
    # The estimate of creates still counts every contact without a customer.
    assert own.unmatched_in(there) == 999


def test_a_full_read_gives_its_pages_back_in_order_with_their_cursors() -> None:
    read = FullRead()
    pages = [Page([contact(p * 100 + i, f"p{p}.{i}@example.com") for i in range(100)], STAMP.replace(minute=p))
             for p in range(3)]  # fmt: skip
    for page in pages:
        read.add(page)
    assert [r.id for r in read.records] == [r.id for page in pages for r in page.records]
    for page in pages:
        taken = read.pop()
        assert taken is not None and list(taken.records) == list(page.records) and taken.cursor == page.cursor
    assert read.pop() is None


def test_records_met_are_kept_by_flag_and_decimal_ids_never_meet_other_ids() -> None:
    met = PassRecords()
    assert met.mark("customer", "crm", "101", HANDLED)
    assert not met.mark("customer", "crm", "101", HANDLED)  # handled once: read again, it is skipped
    met.mark("customer", "crm", "101", READ)
    met.mark("customer", "accounting", "0101", LINKED)
    assert met.has("customer", "crm", "101", READ) and not met.has("customer", "crm", "101", LINKED)
    assert met.has("customer", "accounting", "0101", LINKED)
    assert not met.has("customer", "accounting", "101", LINKED)  # "0101" and "101" are two ids
    assert "101" in met.ids("customer", "crm", READ) and None not in met.ids("customer", "crm", READ)
    assert not met.ids("customer", "accounting", READ)
    assert id_key("101") == 101 and id_key("0101") == "0101" and id_key("003Ab") == "003Ab"
    assert id_key("1" * 40) == "1" * 40


def test_held_names_answer_exactly_what_was_added() -> None:
    held = HeldNames()
    for i in range(3_000):
        held.add(f"ann lee{i}")
    held.add("ann lee1")  # a second create under a name held already changes nothing
    assert len(held) == 3_000
    assert "ann lee1" in held and "ann lee2999" in held
    assert "ann lee3000" not in held and "Ann Lee1" not in held and None not in held  # keys are compared exactly
    held.close()
