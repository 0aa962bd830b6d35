"""Property: edits on both sides interleaved with passes, some landing mid-pass between syncd's read and its
write, never lose an edit unless a rule says so; every loss by rule is audited with the lost value as `before`;
a `manual` field edited differently on both sides ends as an open conflict with both values (sandbox)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from syncd.engine.context import PipelineHooks
from syncd.store import AuditEntry
from tests.engine.conftest import World
from tests.engine.test_customers import next_second, settle

Who = Literal["hubspot", "zohobooks"]
# The shipped mapping's customer fields, each with another rule: phone `manual`, city `accounting`, the names
# the object's default `latest`; as each side names them.
FIELDS: dict[str, dict[Who, str]] = {
    "phone": {"hubspot": "phone", "zohobooks": "primary_contact.phone"},
    "city": {"hubspot": "city", "zohobooks": "billing_address.city"},
    "last_name": {"hubspot": "lastname", "zohobooks": "primary_contact.last_name"},
    "first_name": {"hubspot": "firstname", "zohobooks": "primary_contact.first_name"},
}
# Values that are already canonical (E.164 phones, trimmed names), so a value reads the same on both sides.
VALUES = {
    "phone": ["+14155550101", "+14155550102", "+14155550103"],
    "city": ["Austin", "Boston", "Chicago"],
    "last_name": ["Lee", "Lee", "Park", "Quinn"],  # duplicates: two people may pick the same value
    "first_name": ["Ann", "Bo", "Cy"],
}
START = {"phone": "+14155550100", "city": "Denver", "last_name": "Lee", "first_name": "Ann"}


@dataclass(frozen=True)
class Edit:
    """A person changing one field on one side."""

    side: Who
    name: str
    value: str


@dataclass(frozen=True)
class Pass:
    """A sync pass; `mid` are edits landing after it read and before it wrote its first batch."""

    mid: tuple[Edit, ...] = ()


edits = st.sampled_from(sorted(FIELDS)).flatmap(
    lambda name: st.builds(Edit, st.sampled_from(["hubspot", "zohobooks"]), st.just(name),
                           st.sampled_from(VALUES[name]))
)  # fmt: skip
steps = st.lists(st.one_of(edits, st.builds(Pass, st.lists(edits, max_size=2).map(tuple))), min_size=1, max_size=6)


@dataclass
class Seen:
    """A person's edit as the oracle keeps it: with the newest audit row id at the moment it landed."""

    edit: Edit
    watermark: int


@dataclass
class Story:
    """One person in both systems and every edit made to them, in order."""

    world: World
    ids: dict[Who, str]
    edits: list[Seen] = field(default_factory=list)

    async def apply(self, edit: Edit) -> None:
        """Make `edit` as a person would (an edit to the value already there changes nothing and is not one)."""
        system = self.world.hubspot if edit.side == "hubspot" else self.world.zoho
        side_field = FIELDS[edit.name][edit.side]
        if (await system.get("contacts", self.ids[edit.side])).get(side_field) == edit.value:
            return
        await system.update("contacts", self.ids[edit.side], {side_field: edit.value})
        newest = await self.world.stores.audit.list(limit=1)
        self.edits.append(Seen(edit, newest[0].id if newest else 0))


async def person(world: World) -> Story:
    """A new HubSpot contact, created in Zoho Books and linked; its starting values are everyone's edits."""
    email = f"p{uuid4().hex[:10]}@example.com"
    fields = {FIELDS[n]["hubspot"]: v for n, v in START.items()}
    hub_id = await world.hubspot.put("contacts", {"email": email, "company": "Acme", **fields})
    await settle(world)
    # People edit a customer a second after syncd created it at the soonest: an edit in the create's own
    # second would read as its echo (README, "Calls near the minimum", weighs that risk).
    await next_second(datetime.now(UTC))
    link = await world.stores.links.lookup_crm("hubspot-zohobooks", "customer", "hubspot", hub_id)
    assert link is not None and link.acc_id is not None
    story = Story(world, {"hubspot": hub_id, "zohobooks": link.acc_id})
    story.edits = [Seen(Edit(side, n, v), 0) for side in ("hubspot", "zohobooks") for n, v in START.items()]
    return story


async def play(story: Story, script: Sequence[Edit | Pass]) -> None:
    """Run the script: edits as they come, passes with their mid-pass edits landing in the first batch."""
    for step in script:
        if isinstance(step, Edit):
            await story.apply(step)
            continue
        landing = MidPass(story, list(step.mid))
        # Every target is checked before its write, as when the planning read is older than the default bound.
        hooks = PipelineHooks(before_write=landing)
        report = await story.world.reconciler(hooks=hooks, recheck_after=timedelta(0)).run_pass()
        assert not report.errors
        await landing({})  # the pass had no batch to land them in


@dataclass
class MidPass:
    """The hook landing a pass's mid-pass edits in its first batch, after the read and before the write."""

    story: Story
    pending: list[Edit]

    async def __call__(self, targets: Mapping[str, Sequence[str]]) -> None:
        """Make the edits still pending."""
        while self.pending:
            await self.story.apply(self.pending.pop(0))


def known_to(audits: Sequence[AuditEntry], story: Story, side: Who, name: str, value: str, before: int) -> bool:
    """Whether `side` held `value` for `name` before audit row `before`: a person put it there, or syncd did."""
    side_field = FIELDS[name][side]
    return any(
        s.edit.side == side and s.edit.name == name and s.edit.value == value and s.watermark < before
        for s in story.edits
    ) or any(
        r.system == side and r.id < before and r.fields_after.get(side_field) == value for r in audits
    )  # fmt: skip


async def check(story: Story) -> None:
    """The oracle, once the systems settled."""
    world = story.world
    audits = sorted(
        [
            row
            for side, record_id in story.ids.items()
            for row in await world.stores.audit.list(system=side, record_id=record_id, limit=1000)
            if row.fields_before  # the create has no `before`
        ],
        key=lambda r: r.id,
    )
    final: dict[Who, dict[str, object]] = {
        "hubspot": await world.hubspot.get("contacts", story.ids["hubspot"]),
        "zohobooks": await world.zoho.get("contacts", story.ids["zohobooks"]),
    }
    for index, seen in enumerate(story.edits):
        edit = seen.edit
        there: Who = "zohobooks" if edit.side == "hubspot" else "hubspot"
        side_field = FIELDS[edit.name][edit.side]
        later = [s.watermark for s in story.edits[index + 1 :] if (s.edit.side, s.edit.name) == (edit.side, edit.name)]
        until = later[0] if later else None
        overwrites = [
            r for r in audits
            if r.system == edit.side and side_field in r.fields_after and r.id > seen.watermark
            and (until is None or r.id <= until)
        ]  # fmt: skip
        if not overwrites:
            # Nothing of syncd's touched the field after this edit: it is still there, or a person changed it.
            if until is None:
                assert final[edit.side][side_field] == edit.value, (edit, final)
            continue
        row = overwrites[0]
        # Overwritten by syncd: the audit row shows the value the side really held, and the winner came over.
        assert row.fields_before[side_field] == edit.value, (edit, row)
        assert known_to(audits, story, there, edit.name, row.fields_after[side_field], row.id + 1), (edit, row)
        if edit.name == "phone":
            # A `manual` field is overwritten only with a value that replaced one both sides had agreed on.
            assert known_to(audits, story, there, "phone", edit.value, row.id), (edit, row)
    link = await world.stores.links.lookup_crm("hubspot-zohobooks", "customer", "hubspot", story.ids["hubspot"])
    assert link is not None
    open_conflicts = {c.field: c for c in await world.stores.conflicts.list("open", link.id)}
    for name, sides in FIELDS.items():
        hub, zoho = final["hubspot"][sides["hubspot"]], final["zohobooks"][sides["zohobooks"]]
        if name == "phone" and hub != zoho:
            conflict = open_conflicts.get("phone")
            assert conflict is not None and (conflict.crm_value, conflict.acc_value) == (hub, zoho), final
        elif name != "phone":
            assert hub == zoho, (name, final)


async def run_story(world: World, script: Sequence[Edit | Pass]) -> None:
    """One example: a new person, the script, passes until settled, the oracle."""
    story = await person(world)
    await play(story, script)
    await settle(world)
    await check(story)


# Shrinking replays whole sync scenarios (seconds each): the failing script is reported as generated instead.
FAST = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
)


# The long test's one failing example, as found: a pair writing both sides, both edited mid-pass to the same
# last name. Checked first on the CRM side, the pair was planned again from the fresh contact but with the
# customer as first read, so the customer's own fresh read was dropped and its audit row's `before` was the
# planning read's "Lee", not the "Quinn" it held (syncd/engine/pipeline.py, `_recheck`, now plans a pair again
# from the latest read of both its records).
BOTH_SIDES_TO_ONE_VALUE_MID_PASS = [
    Edit("hubspot", "last_name", "Park"),
    Edit("zohobooks", "first_name", "Bo"),
    Pass((Edit("hubspot", "last_name", "Quinn"), Edit("zohobooks", "last_name", "Quinn"))),
]


@settings(FAST, max_examples=6)
@given(script=steps)
@example(script=BOTH_SIDES_TO_ONE_VALUE_MID_PASS)
async def test_interleaved_edits_are_never_lost_unless_a_rule_says_so(world: World, script: list[Edit | Pass]) -> None:
    await run_story(world, script)


# Its one failing example (a stale `before`, see BOTH_SIDES_TO_ONE_VALUE_MID_PASS) is fixed; slow, so CI's
# `-m slow` runs it.
@pytest.mark.slow
@settings(FAST, max_examples=60)
@given(script=steps)
async def test_interleaved_edits_many_examples(world: World, script: list[Edit | Pass]) -> None:
    await run_story(world, script)
