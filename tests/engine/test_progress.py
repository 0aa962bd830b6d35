"""Progress of a pass as a person sees it: the reconciler tells its observer each object in turn, a terminal shows
a bar per mapping and object with counts, and off a terminal there is one plain line per object that had work."""

from __future__ import annotations

import io
from collections import Counter

from rich.console import Console

from syncd.connectors.base import FieldValue
from syncd.engine.command import ObjectTally, PassTally, pass_progress
from tests.engine.conftest import World

MAPPING = "hubspot-zohobooks"
# Two people of one name, e-mails in mixed case, one without a phone: as a CRM holds them.
PEOPLE: list[dict[str, FieldValue]] = [
    {"email": "Maria.Garcia@Example.com", "firstname": "Maria", "lastname": "Garcia", "phone": "+1 415 555 0101"},
    {"email": "maria.garcia@acme.test", "firstname": "Maria", "lastname": "Garcia", "phone": "+1 415 555 0102"},
    {"email": "JOHN.OKAFOR@example.com", "firstname": "John", "lastname": "Okafor"},
]


class FinishedInOrder(PassTally):
    """A tally that also keeps the order objects were finished in."""

    def __init__(self) -> None:
        super().__init__()
        self.finished: list[str] = []

    def _finished(self, tally: ObjectTally) -> None:
        self.finished.append(tally.label)


async def seed_people(world: World) -> None:
    for person in PEOPLE:
        await world.hubspot.put("contacts", person)


async def zoho_customer_creates(world: World) -> int:
    """Customer creates sent to Zoho Books (an upsert on the create reference: PUT)."""
    requests: dict[str, int] = (await world.zoho.stats())["requests"]
    return requests.get("PUT /books/v3/contacts", 0)


async def test_a_pass_tells_its_observer_each_object_with_what_was_read_and_done(world: World) -> None:
    await seed_people(world)
    observer = FinishedInOrder()
    report = await world.reconciler(observer=observer).run_pass()

    # Every object of the mapping, in dependency order, started and finished once.
    labels = [f"{MAPPING}:{name}" for name in ("customer", "invoice", "payment")]
    assert [tally.label for tally in observer.objects.values()] == labels
    assert observer.finished == labels
    customer = observer.objects[(MAPPING, "customer")]
    assert (customer.read, customer.synced) == (3, 3)
    # The counts shown are the report's, object by object.
    for (_, name), tally in observer.objects.items():
        assert tally.actions == Counter(a.kind for a in report.actions if a.object == name)
    assert customer.actions == Counter({"create": 3})
    # Three creates, the second Maria Garcia's under another name from the start (Zoho keeps names unique,
    # and the first sync's read of Zoho Books knows the names in use).
    assert await zoho_customer_creates(world) == 3 and await world.zoho.writes() == 3


async def test_on_a_terminal_each_mapping_and_object_has_a_bar_with_counts(world: World) -> None:
    await seed_people(world)
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=160, color_system=None)
    said: list[ObjectTally] = []
    with pass_progress(terminal, said.append) as observer:
        await world.reconciler(observer=observer).run_pass()
    shown = screen.getvalue()
    assert f"{MAPPING}:customer" in shown and "3/3" in shown and "3 create" in shown
    assert f"{MAPPING}:payment" in shown and "nothing to do" in shown
    assert "left" in shown  # the estimate's column
    assert said == []  # bars, not lines


async def test_off_a_terminal_one_plain_line_per_object_that_had_records(world: World) -> None:
    await seed_people(world)
    piped = io.StringIO()
    said: list[ObjectTally] = []
    with pass_progress(Console(file=piped), said.append) as observer:
        await world.reconciler(observer=observer).run_pass()
    assert piped.getvalue() == ""  # no bar drawn into a pipe or a file
    assert [tally.label for tally in said] == [f"{MAPPING}:customer"]
    assert said[0].line().startswith(f"{MAPPING}:customer: 3 records, 3 create (")
    assert "\x1b" not in said[0].line()
