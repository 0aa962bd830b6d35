"""`syncd links` and `syncd conflicts`: what an operator sees, and the exit codes scripts rely on."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from syncd.cli import main
from syncd.store import ConflictStore, Database, LinkStore


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
