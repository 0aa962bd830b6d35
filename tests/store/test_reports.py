"""`syncd links` and `syncd conflicts`: what an operator sees, and the exit codes scripts rely on."""

from __future__ import annotations

import asyncio
import csv
import getpass
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest

from syncd.cli import main
from syncd.store import AuditLog, ConflictStore, Database, JournalEntry, LinkStore, WriteJournal, upgrade_database
from syncd.store.columns import utcnow


class Syncd:
    """Runs the real `syncd` entry point (exit codes included) against one config file."""

    def __init__(self, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.config = config
        self.capsys = capsys

    async def __call__(self, *args: str, config: bool = True) -> tuple[int, str, str]:
        """Exit code, stdout and stderr of `syncd ARGS --config FILE`."""
        argv = [*args, "--config", str(self.config)] if config else list(args)
        self.capsys.readouterr()

        def run() -> int:
            try:
                main(argv)
            except SystemExit as exc:
                return int(exc.code or 0)
            return 0

        # The command runs its own event loop, as it does from a shell: keep it off the test's loop.
        code = await asyncio.to_thread(run)
        out, err = self.capsys.readouterr()
        return code, out, err


def write_config(folder: Path, url: str) -> Path:
    """A minimal config naming the store."""
    path = folder / "syncd.toml"
    path.write_text(f'[store]\nurl = "{url}"\n')
    return path


@pytest.fixture
def syncd(database_url: str, database: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Syncd:
    """`syncd` pointed at the migrated test store."""
    return Syncd(write_config(tmp_path, database_url), capsys)


async def seed(database: Database) -> tuple[list[int], int, int]:
    """Two linked contacts, one pending, one open and one resolved conflict."""
    links = LinkStore(database)
    linked = []
    for crm_id in ("101", "102"):
        pending = await links.intend(
            "contacts", "contact", "hubspot", crm_id, "zohobooks", f"Z-{crm_id}", crm_id
        )
        linked.append((await links.bind(pending.id, base={"phone": "1"})).id)
    waiting = await links.intend("deals", "deal", "hubspot", "D-1", "zohobooks", None, "D-1")
    conflicts = ConflictStore(database)
    open_one = await conflicts.open_conflict(linked[0], "phone", "1", "+1 555 0100", "+1 555 0199")
    settled = await conflicts.open_conflict(linked[1], "phone", "1", "2", "3")
    await conflicts.resolve(settled.id, "accounting", by="carol")
    return [*linked, waiting.id], open_one.id, settled.id


async def test_links_as_json_and_filtered(syncd: Syncd, database: Database) -> None:
    ids, _, _ = await seed(database)
    code, out, _ = await syncd("links", "--json")
    assert code == 0
    assert [(link["id"], link["state"]) for link in json.loads(out)] == [
        (ids[0], "linked"),
        (ids[1], "linked"),
        (ids[2], "pending"),
    ]
    code, out, _ = await syncd("links", "--json", "--state", "pending", "--mapping", "deals")
    assert [(link["crm_id"], link["acc_id"]) for link in json.loads(out)] == [("D-1", None)]
    code, out, _ = await syncd("links", "--json", "--limit", "1", "--offset", "1")
    assert [link["id"] for link in json.loads(out)] == [ids[1]]


async def test_links_as_a_table(syncd: Syncd, database: Database) -> None:
    await seed(database)
    code, out, _ = await syncd("links", "--object", "contact")
    assert code == 0
    assert "hubspot:101" in out and "zohobooks:Z-102" in out and "D-1" not in out
    code, out, _ = await syncd("links", "--mapping", "nothing-here")
    assert (code, out.strip()) == (0, "no links match")


async def test_conflicts_listed_by_status(syncd: Syncd, database: Database) -> None:
    _, open_id, settled_id = await seed(database)
    code, out, _ = await syncd("conflicts", "list", "--json")
    assert code == 0 and [c["id"] for c in json.loads(out)] == [open_id]
    code, out, _ = await syncd("conflicts", "list", "--status", "resolved", "--json")
    assert [(c["id"], c["resolved_value"]) for c in json.loads(out)] == [(settled_id, "3")]
    code, out, _ = await syncd("conflicts", "list", "--status", "all", "--json")
    assert len(json.loads(out)) == 2
    code, out, _ = await syncd("conflicts", "list")
    assert code == 0 and "+1 555 0100" in out and "+1 555 0199" in out


async def test_show_gives_both_values_and_the_link(syncd: Syncd, database: Database) -> None:
    ids, open_id, _ = await seed(database)
    code, out, _ = await syncd("conflicts", "show", str(open_id))
    assert code == 0
    assert f"link {ids[0]}" in out and "hubspot:101" in out
    assert '"+1 555 0100"' in out and '"+1 555 0199"' in out
    code, _, err = await syncd("conflicts", "show", "999")
    assert code == 1 and "conflict 999 does not exist" in err


async def test_resolve_says_what_the_next_pass_applies_and_decides_once(
    syncd: Syncd, database: Database
) -> None:
    _, open_id, _ = await seed(database)
    code, out, _ = await syncd("conflicts", "resolve", str(open_id), "--use", "crm", "--by", "alice")
    assert code == 0
    assert "next sync pass" in out and '"+1 555 0100"' in out and "'phone'" in out
    stored = await ConflictStore(database).get(open_id)
    assert (stored.status, stored.resolved_value, stored.resolved_by) == ("resolved", "+1 555 0100", "alice")
    code, _, err = await syncd("conflicts", "resolve", str(open_id), "--use", "accounting", "--by", "bob")
    assert code == 1 and "already resolved" in err
    assert (await ConflictStore(database).get(open_id)).resolved_by == "alice"


async def test_resolve_with_a_given_value(syncd: Syncd, database: Database) -> None:
    _, open_id, _ = await seed(database)
    code, _, _ = await syncd(
        "conflicts", "resolve", str(open_id), "--use", "value", "--value-json", "42", "--by", "dave"
    )
    assert code == 0
    assert (await ConflictStore(database).get(open_id)).resolved_value == 42


@pytest.mark.parametrize(
    "args",
    [
        ("--use", "value"),
        ("--use", "crm", "--value", "x"),
        ("--use", "value", "--value", "a", "--value-json", "1"),
        ("--use", "mine"),
        ("--use", "value", "--value-json", "{not json"),
    ],
)
async def test_resolve_usage_errors_exit_2_and_change_nothing(
    syncd: Syncd, database: Database, args: tuple[str, ...]
) -> None:
    _, open_id, _ = await seed(database)
    code, _, _ = await syncd("conflicts", "resolve", str(open_id), *args, "--by", "erin")
    assert code == 2
    assert (await ConflictStore(database).get(open_id)).status == "open"


async def test_an_outdated_store_is_a_clear_error_exit_1(
    empty_database: Database, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await upgrade_database(empty_database, "0001")  # what an older syncd left
    syncd = Syncd(write_config(tmp_path, database_url), capsys)
    for args in (("links",), ("conflicts", "list")):
        code, out, err = await syncd(*args)
        assert code == 1 and out == ""
        assert "syncd db upgrade" in err


async def test_a_broken_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "syncd.toml"
    config.write_text('[store]\nurl = "sqlite:///syncd.db"\nsurprise = 1\n')
    code, _, err = await Syncd(config, capsys)("links")
    assert code == 2 and "surprise" in err


# --- terminal parity with the review page -------------------------------------------------------------------

LONG_EMAIL = "annabelle.lee-worthington.accounts-payable@example-holdings-international.com"


async def seed_people(database: Database) -> dict[str, int]:
    """Two customers called Ann Lee (one with a very long e-mail), an invoice, and conflicts on each; one of them
    detected three days ago."""
    links, conflicts = LinkStore(database), ConflictStore(database)

    async def link(obj: str, crm_id: str, acc_id: str, base: dict[str, object]) -> int:
        pending = await links.intend("hubspot-zohobooks", obj, "hubspot", crm_id, "zohobooks", acc_id, f"r{crm_id}")
        return (await links.bind(pending.id, base=base)).id

    ann = await link("customer", "1001", "460000000010002", {"first_name": "Ann", "last_name": "Lee",
                                                             "email": LONG_EMAIL, "phone": "+15125550100"})
    other = await link("customer", "1002", "460000000010004", {"first_name": "Ann", "last_name": "Lee",
                                                               "email": "ann.lee@example.com"})
    bill = await link("invoice", "9001", "460000000020001", {"invoice_number": "INV-000012"})
    old = await conflicts.open_conflict(other, "phone", None, "+15125550201", "+15125550202",
                                        detected_at=utcnow() - timedelta(days=3))
    phone = await conflicts.open_conflict(ann, "phone", "+15125550100", "+15125550101", "+15125550199")
    due = await conflicts.open_conflict(bill, "due_date", {"$date": "2024-06-30"}, {"$date": "2024-07-15"},
                                        {"$date": "2024-07-31"})
    return {"old": old.id, "phone": phone.id, "due": due.id}


async def test_conflicts_list_names_mapping_object_record_field_and_the_three_values(
    syncd: Syncd, database: Database
) -> None:
    ids = await seed_people(database)
    code, out, _ = await syncd("conflicts", "list")
    assert code == 0
    lines = out.splitlines()
    # Off a terminal nothing is wrapped: each conflict is one line, the long e-mail and the ids whole on it.
    [phone] = [line for line in lines if LONG_EMAIL in line]
    for part in (str(ids["phone"]), "hubspot-zohobooks", "customer", f"Ann Lee <{LONG_EMAIL}>", "phone",
                 "+15125550100 → +15125550101 / +15125550199"):
        assert part in phone
    [due] = [line for line in lines if "INV-000012" in line]
    assert "invoice INV-000012" in due and "2024-06-30 → 2024-07-15 / 2024-07-31" in due
    assert any("(empty) → +15125550201 / +15125550202" in line for line in lines)
    code, out, _ = await syncd("conflicts", "list", "--json")
    listed = {c["id"]: c for c in json.loads(out)}
    assert listed[ids["phone"]]["record"] == f"Ann Lee <{LONG_EMAIL}>"
    assert (listed[ids["due"]]["mapping"], listed[ids["due"]]["object"], listed[ids["due"]]["acc_id"]) == (
        "hubspot-zohobooks", "invoice", "460000000020001")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--field", "phone"), ["old", "phone"]),
        (("--object", "invoice"), ["due"]),
        (("--mapping", "hubspot-zohobooks", "--object", "customer", "--field", "phone"), ["old", "phone"]),
        (("--older-than", "2d"), ["old"]),
        (("--mapping", "salesforce-zohobooks"), []),
    ],
)
async def test_conflicts_list_filters(
    syncd: Syncd, database: Database, args: tuple[str, ...], expected: list[str]
) -> None:
    ids = await seed_people(database)
    code, out, _ = await syncd("conflicts", "list", *args, "--json")
    assert code == 0 and [c["id"] for c in json.loads(out)] == [ids[name] for name in expected]


async def test_a_bad_age_is_a_usage_error(syncd: Syncd, database: Database) -> None:
    await seed_people(database)
    code, _, err = await syncd("conflicts", "list", "--older-than", "soon")
    assert code == 2 and "--older-than" in err and "90m, 12h, 7d" in err


async def test_show_names_the_record(syncd: Syncd, database: Database) -> None:
    ids = await seed_people(database)
    code, out, _ = await syncd("conflicts", "show", str(ids["due"]))
    assert code == 0 and "field 'due_date' of invoice INV-000012 (open)" in out
    assert f"syncd conflicts resolve {ids['due']}" in out


async def test_resolve_with_just_a_value_and_the_login_name_as_who(syncd: Syncd, database: Database) -> None:
    ids = await seed_people(database)
    code, out, _ = await syncd("conflicts", "resolve", str(ids["phone"]), "--value", "+1 512 555 0177")
    assert code == 0 and f"of Ann Lee <{LONG_EMAIL}>" in out
    stored = await ConflictStore(database).get(ids["phone"])
    assert (stored.resolution, stored.resolved_value, stored.resolved_by) == (
        "value", "+1 512 555 0177", getpass.getuser())
    code, _, err = await syncd("conflicts", "resolve", str(ids["due"]))
    assert code == 2 and "--use crm" in err


async def test_export_as_csv_and_json(syncd: Syncd, database: Database, tmp_path: Path) -> None:
    ids = await seed_people(database)
    await ConflictStore(database).resolve(ids["old"], "accounting", by="carol")
    code, out, _ = await syncd("conflicts", "export", "--status", "all")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [int(r["id"]) for r in rows] == [ids["old"], ids["phone"], ids["due"]]
    old = rows[0]
    assert (old["status"], old["record"], old["base_value"], old["resolved_value"], old["resolved_by"]) == (
        "resolved", "Ann Lee <ann.lee@example.com>", "", "+15125550202", "carol")
    assert rows[2]["crm_value"] == '{"$date": "2024-07-15"}' and rows[2]["acc_id"] == "460000000020001"
    target = tmp_path / "open.json"
    code, out, err = await syncd("conflicts", "export", "--format", "json", "--field", "phone", "-o", str(target))
    assert code == 0 and out == "" and "1 conflict written to" in err
    [exported] = json.loads(target.read_text())
    assert (exported["id"], exported["record"], exported["crm_value"]) == (
        ids["phone"], f"Ann Lee <{LONG_EMAIL}>", "+15125550101")


async def seed_audit(database: Database) -> None:
    """Writes by two mappings over a week, as the engine records them."""
    audit = AuditLog(database)
    now = utcnow()
    await audit.record("zohobooks", "contacts", "460000000010002", {"phone": "+15125550100"},
                       {"phone": "+15125550101"}, "hubspot-zohobooks:customer: from hubspot contacts 1001",
                       at=now - timedelta(days=6))
    await audit.record("hubspot", "contacts", "1001", {}, {"email": "ann@example.com"},
                       "hubspot-zohobooks:customer: created from zohobooks contacts 460000000010002",
                       at=now - timedelta(hours=2))
    await audit.record("salesforce", "Contact", "003A", {"Phone": None}, {"Phone": "+15125550101"},
                       "salesforce-zohobooks:customer: from zohobooks contacts 460000000010002",
                       at=now - timedelta(minutes=5))


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), ["003A", "1001", "460000000010002"]),
        (("--record", "460000000010002"), ["460000000010002"]),
        (("--mapping", "hubspot-zohobooks"), ["1001", "460000000010002"]),
        (("--mapping", "salesforce-zohobooks", "--system", "salesforce"), ["003A"]),
        (("--since", "1d"), ["003A", "1001"]),
        (("--since", "3h", "--until", "1h"), ["1001"]),
        (("--object", "contacts", "--until", "1d"), ["460000000010002"]),
    ],
)
async def test_audit_filters_by_record_mapping_and_time(
    syncd: Syncd, database: Database, args: tuple[str, ...], expected: list[str]
) -> None:
    await seed_audit(database)
    code, out, _ = await syncd("audit", *args, "--json")
    assert code == 0 and [e["record_id"] for e in json.loads(out)] == expected


async def test_audit_as_a_table_and_its_usage_errors(syncd: Syncd, database: Database) -> None:
    await seed_audit(database)
    code, out, _ = await syncd("audit", "--record", "460000000010002")
    assert code == 0
    [row] = [line for line in out.splitlines() if "460000000010002" in line]
    assert "phone: +15125550100 → +15125550101" in row and "hubspot-zohobooks:customer: from hubspot" in row
    for args in (("--since", "yesterday"), ("--since", "1h", "--until", "2h")):
        code, _, _ = await syncd("audit", *args)
        assert code == 2, args
    code, out, _ = await syncd("audit", "--record", "nothing")
    assert (code, out.strip()) == (0, "no writes match")


async def test_audit_shows_a_write_recovered_after_a_crash(syncd: Syncd, database: Database) -> None:
    # A write journalled before it was sent, by a process that died before its commit, resolved by the next.
    await seed_audit(database)
    journal = WriteJournal(database)
    async with journal.owning() as owner:
        [row] = await journal.open_many([JournalEntry(
            "zohobooks", "contacts", "460000000010003", {"phone": None}, {"phone": "+15125550199"},
            "hubspot-zohobooks:customer: from hubspot contacts 1002", link_id=1, base_change={})], owner=owner)
    await journal.resolve(row, "recovered", "written by a process that stopped before recording it")
    code, out, _ = await syncd("audit", "--status", "recovered", "--json")
    assert code == 0
    [entry] = json.loads(out)
    assert (entry["record_id"], entry["status"]) == ("460000000010003", "recovered")
    assert entry["cause"].endswith("(written by a process that stopped before recording it)")
    code, out, _ = await syncd("audit", "--mapping", "hubspot-zohobooks")
    assert code == 0
    [line] = [line for line in out.splitlines() if "460000000010003" in line]
    assert "recovered" in line
    code, out, _ = await syncd("audit", "--status", "done", "--json")
    assert len(json.loads(out)) == 3
