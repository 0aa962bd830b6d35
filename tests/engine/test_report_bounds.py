"""A long pass's report in bounded memory: every action counted, only the first ones (and refused writes after
them) listed in full, the rest pointed to in the audit log and the dead letters; the observer still sees every
batch's actions."""

from __future__ import annotations

import io
from collections import Counter

from rich.console import Console

from syncd.connectors.base import FieldValue
from syncd.engine.action_log import ActionLog
from syncd.engine.command import PassTally
from syncd.engine.plan import PlannedAction, render_table, report_data
from tests.engine.conftest import World

MAPPING = "hubspot-zohobooks"
#: Zoho Books keeps a person's first name to 100 characters; HubSpot takes longer ones.
TOO_LONG = "Maximiliana" * 10
PEOPLE: list[dict[str, FieldValue]] = [
    {"email": "Maria.Garcia@Example.com", "firstname": "Maria", "lastname": "Garcia", "phone": "+1 415 555 0101"},
    {"email": "maria.garcia@acme.test", "firstname": "María", "lastname": "García", "phone": "+1 415 555 0102"},
    {"email": "JOHN.OKAFOR@example.com", "firstname": "John", "lastname": "Okafor"},
    {"email": "wei.zhang@example.org", "firstname": "Wei", "lastname": "Zhang", "city": "Boston"},
    {"email": "Priya.Nair@Example.in", "firstname": "Priya", "lastname": "Nair", "company": "Acme"},
    {"email": "l.dubois@example.fr", "firstname": "Léa", "lastname": "Dubois"},
    {"email": "sam.o'brien@example.ie", "firstname": "Sam", "lastname": "O'Brien"},
]


async def test_a_report_lists_the_first_actions_and_every_refusal_and_counts_the_rest(world: World) -> None:
    for person in PEOPLE:
        await world.hubspot.put("contacts", person)
    refused = await world.hubspot.put("contacts", {"email": "m.mitchell@example.com", "firstname": TOO_LONG,
                                                   "lastname": "Mitchell"})
    observer = PassTally()
    report = await world.reconciler(kept_actions=3, observer=observer).run_pass()

    # Every action is counted; three are listed in full, and the refused create after them too.
    assert report.counts() == {"create": 7, "error": 1}
    assert [a.kind for a in report.actions] == ["create", "create", "create", "error"]
    assert [a.source for a in report.failures] == [f"hubspot contacts {refused}"]
    assert report.omitted == 4 and report.error_count == 1 and not report.settled
    # The observer saw each batch's actions, not only those kept.
    assert observer.objects[(MAPPING, "customer")].actions == Counter({"create": 7, "error": 1})
    # Each create listed or not is in the audit log, where the report sends the reader.
    assert len(await world.stores.audit.list(system="zohobooks", object="contacts")) == 7
    data = report_data(report)
    assert data["counts"] == {"create": 7, "error": 1} and data["omitted"] == 4 and len(data["actions"]) == 4
    assert "4 more actions not listed" in data["omitted_note"] and "syncd audit" in data["omitted_note"]
    screen = io.StringIO()
    render_table(report, Console(file=screen, width=200, color_system=None))
    assert "4 more actions not listed" in screen.getvalue() and "Done: 7 create, 1 error" in screen.getvalue()
    # Eight creates sent to Zoho Books (one refused), the HubSpot side read in one page.
    requests = (await world.zoho.stats())["requests"]
    assert requests.get("PUT /books/v3/contacts", 0) == 8


def planned(kind: str, n: int) -> PlannedAction:
    return PlannedAction(kind, MAPPING, "customer", f"hubspot contacts {n}", "zohobooks contacts (new)")  # type: ignore[arg-type]


def test_a_settled_action_beyond_those_kept_still_moves_the_counts_and_a_refusal_is_kept() -> None:
    log = ActionLog(kept=2)
    first, second, third, fourth = (planned("create", n) for n in range(4))
    for action in (first, second, third, fourth):
        log.append(action)
    log.settle(first, None)  # a create that did not happen after all: no longer listed nor counted
    refusal = PlannedAction("error", MAPPING, "customer", third.source, third.target, reason="refused")
    log.settle(third, refusal)  # beyond those kept, but a refusal is kept
    report = log.report([], dry_run=False)
    assert report.counts() == {"create": 2, "error": 1}
    assert report.actions == (second, refusal) and report.omitted == 1
    assert report.error_lines() == [f"{third.source}: refused"]


def test_refusals_beyond_those_kept_are_counted_in_the_error_lines() -> None:
    log = ActionLog(kept=1)
    for n in range(4):
        log.append(PlannedAction("error", MAPPING, "customer", f"hubspot contacts {n}", "", reason="refused"))
    report = log.report(["hubspot-zohobooks:invoice: outage"], dry_run=True)
    assert report.error_count == 5 and len(report.failures) == 2
    assert report.error_lines()[2:] == ["2 more refused writes: see `syncd deadletters`",
                                        "hubspot-zohobooks:invoice: outage"]
    assert "a dry run writes nothing" in report.omitted_line()
