"""`syncd deadletters`: what an operator sees of the records syncd could not sync, requeueing them, exit codes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from syncd.store import Database, DeadLetterStore
from tests.store.test_reports import Syncd, write_config

LATER = datetime.now(UTC) + timedelta(hours=1)
REFUSED = "Invalid value passed for first_name"


@pytest.fixture
def syncd(database_url: str, database: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Syncd:
    """`syncd` pointed at the migrated test store."""
    return Syncd(write_config(tmp_path, database_url), capsys)


async def seed(database: Database) -> dict[str, int]:
    """Dead letter ids by record: a contact Zoho refused (parked until it changes), a deal rate-limited
    (backing off), and an invoice of another mapping waiting for its customer."""
    letters = DeadLetterStore(database)
    refused = await letters.park(
        "hubs", "hubspot-zohobooks", "customer", "crm", "1001",
        f"zohobooks refused the update of contacts 4600: {REFUSED} (code 4); parked until the record changes",
        next_attempt_at=None, payload={"object": "contacts"}, error_class="validation", error_code="4",
        error_message=REFUSED, counterpart_id="4600",
    )
    limited = await letters.park(
        "hubs", "hubspot-zohobooks", "invoice", "crm", "D-7", "zohobooks refused ...: too many requests (code 44)",
        next_attempt_at=LATER, payload={"object": "deals"}, error_class="transient", error_code="44",
        error_message="too many requests",
    )
    waiting = await letters.park(
        "sf", "salesforce-zohobooks", "invoice", "crm", "006A", "customer 003A is not linked yet",
        next_attempt_at=LATER, payload={"object": "Opportunity"}, error_class="waiting",
    )
    return {"1001": refused.id, "D-7": limited.id, "006A": waiting.id}


async def test_dead_letters_are_listed_with_the_systems_code_and_message(syncd: Syncd, database: Database) -> None:
    ids = await seed(database)
    code, out, _ = await syncd("deadletters", "list", "--json")
    assert code == 0
    listed = json.loads(out)
    assert [(d["id"], d["status"], d["error_class"]) for d in listed] == [
        (ids["1001"], "parked", "validation"),
        (ids["D-7"], "backing_off", "transient"),
        (ids["006A"], "backing_off", "waiting"),
    ]
    assert (listed[0]["error_code"], listed[0]["error_message"], listed[0]["counterpart_id"]) == ("4", REFUSED, "4600")
    assert listed[0]["next_attempt_at"] is None

    code, out, _ = await syncd("deadletters", "list", "--mapping", "hubspot-zohobooks", "--object", "customer")
    assert code == 0
    assert "hubs contacts 1001" in out and "validation" in out and "when it changes" in out and "D-7" not in out


async def test_retry_requeues_the_named_letters_all_or_none(syncd: Syncd, database: Database) -> None:
    ids = await seed(database)
    letters = DeadLetterStore(database)
    code, _, err = await syncd("deadletters", "retry", str(ids["1001"]), "999")
    assert code == 1 and "dead letter 999 does not exist" in err
    assert await letters.due() == []

    code, out, _ = await syncd("deadletters", "retry", str(ids["1001"]))
    assert code == 0 and f"requeued 1 dead letter ({ids['1001']})" in out
    assert [d.record_id for d in await letters.due()] == ["1001"]

    code, out, _ = await syncd("deadletters", "retry", "--all", "--mapping", "salesforce-zohobooks")
    assert code == 0 and "requeued 1 dead letter;" in out
    assert {d.record_id for d in await letters.due()} == {"1001", "006A"}


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        ((), "name the dead letter IDs"),
        (("1", "--all"), "not both"),
        (("1", "--mapping", "m"), "only go with --all"),
    ],
)
async def test_retry_usage_errors_exit_2(syncd: Syncd, args: tuple[str, ...], complaint: str) -> None:
    code, _, err = await syncd("deadletters", "retry", *args)
    assert code == 2 and complaint in err
