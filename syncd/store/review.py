"""What a person reviewing conflicts needs from the store: each conflict with its link and the record's name as
people know it, values shown in words, bulk resolution of one field, and the dead-letter counts and retry."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import func, select, update

from syncd.store.columns import utcnow
from syncd.store.conflicts import Conflict, ConflictOrder, ConflictStatus, ConflictStore, Resolution
from syncd.store.database import Database
from syncd.store.deadletters import DeadLetter, _letter
from syncd.store.errors import StoreNotFoundError
from syncd.store.links import Link, LinkStore
from syncd.store.tables import CONFLICT, DEAD_LETTER

Side = Literal["crm", "accounting"]

# Base-snapshot fields that name a record as people know it, in the order they are tried.
_NAME_FIELDS = ("name", "full_name", "display_name", "company", "company_name")
_EMAIL_FIELDS = ("email", "email_address")


def shown(raw: Any) -> str:
    """A stored (base-snapshot or conflict) value in words: tagged decimals and dates as plain text, line lists
    counted, nothing as `(empty)`."""
    if raw is None or raw == "":
        return "(empty)"
    if isinstance(raw, dict) and len(raw) == 1:
        [(tag, value)] = raw.items()
        if tag in ("$dec", "$dt", "$date"):
            return str(value)
    if isinstance(raw, list):
        return f"{len(raw)} line{'' if len(raw) == 1 else 's'}: " + json.dumps(raw, ensure_ascii=False)
    if isinstance(raw, bool):
        return "yes" if raw else "no"
    if isinstance(raw, str):
        return raw
    return json.dumps(raw, ensure_ascii=False)


def record_label(link: Link, values: Mapping[str, Any] | None = None) -> str:
    """The record as a person knows it, from the link's base snapshot (and `values`, e.g. a conflict's CRM
    side, for fields the base lacks): `Ann Lee <ann@example.com>`, `invoice INV-000012`, else the object and
    its ids."""
    known: dict[str, Any] = {**(values or {}), **{k: v for k, v in link.base.items() if v not in (None, "")}}

    def text(name: str) -> str:
        value = known.get(name)
        return "" if value in (None, "") or isinstance(value, list | dict) else str(value).strip()

    person = " ".join(part for part in (text("first_name"), text("last_name")) if part)
    name = person or next((text(f) for f in _NAME_FIELDS if text(f)), "")
    email = next((text(f) for f in _EMAIL_FIELDS if text(f)), "")
    number = next((text(f) for f in sorted(known) if f.endswith("number") and f != "phone_number" and text(f)), "")
    parts = [name, f"<{email}>" if email else "", f"{link.object} {number}" if number else ""]
    label = " ".join(part for part in parts if part)
    if label:
        return label
    ids = " / ".join(i for i in (link.crm_id, link.acc_id) if i)
    return f"{link.object} {ids}".strip()


@dataclass(frozen=True)
class ConflictCase:
    """One conflict with the link it is on: what a reviewer sees in a row of the list."""

    conflict: Conflict
    link: Link

    @property
    def record(self) -> str:
        """The record's name as people know it."""
        return record_label(self.link, {self.conflict.field: self.conflict.crm_value})

    @property
    def key(self) -> tuple[str, str, str]:
        """(mapping, object, field): what a bulk resolution settles at once."""
        return self.link.mapping, self.link.object, self.conflict.field


@dataclass(frozen=True)
class ConflictQuery:
    """Which conflicts to list: status, mapping, object, field, and detected before when."""

    status: ConflictStatus | None = "open"
    mapping: str | None = None
    object: str | None = None
    field: str | None = None
    detected_before: datetime | None = None
    order: ConflictOrder = "detected"


class ReviewStore:
    """Conflicts with their links, bulk resolution, and the dead-letter reads and retry the review page needs."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.conflicts = ConflictStore(db)
        self.links = LinkStore(db)

    async def cases(self, query: ConflictQuery = ConflictQuery(), limit: int | None = 100, offset: int = 0
                    ) -> list[ConflictCase]:
        """The conflicts `query` selects, each with its link (a conflict's link is never deleted before it:
        the foreign key cascades)."""
        found = await self.conflicts.list(
            status=query.status, limit=limit, offset=offset, mapping=query.mapping, object=query.object,
            field=query.field, detected_before=query.detected_before, order=query.order,
        )
        return await self._with_links(found)

    async def case(self, conflict_id: int) -> ConflictCase:
        """One conflict with its link; `StoreNotFoundError` if there is no such conflict."""
        [found] = await self._with_links([await self.conflicts.get(conflict_id)])
        return found

    async def resolve_field(
        self, mapping: str, object: str, field: str, resolution: Resolution, value: Any = None, *, by: str
    ) -> list[Conflict]:
        """Resolve every open conflict of one field of one mapped object the same way (each keeps its own CRM
        or accounting value, or all take `value`), in one transaction; returns them."""
        async with self._db.transaction() as session:
            open_ones = await self.conflicts.list(
                status="open", limit=None, mapping=mapping, object=object, field=field, session=session
            )
            return [
                await self.conflicts.resolve(c.id, resolution, value, by=by, session=session) for c in open_ones
            ]

    async def dead_letter_counts(self) -> dict[tuple[str, str], int]:
        """How many records are parked as dead letters, by (mapping, object)."""
        stmt = select(DEAD_LETTER.c.mapping, DEAD_LETTER.c.object, func.count()).group_by(
            DEAD_LETTER.c.mapping, DEAD_LETTER.c.object
        )
        async with self._db.scope(None) as s:
            return {(m, o): int(n) for m, o, n in (await s.execute(stmt)).all()}

    async def retry_dead_letter(self, letter_id: int) -> DeadLetter:
        """Make a parked record due at once (also one waiting for a change or a person): the next pass over its
        object tries it again. `StoreNotFoundError` if there is no such dead letter."""
        stmt = (
            update(DEAD_LETTER)
            .where(DEAD_LETTER.c.id == letter_id)
            .values(next_attempt_at=utcnow())
            .returning(*DEAD_LETTER.c)
        )
        async with self._db.scope(None) as s:
            row = (await s.execute(stmt)).one_or_none()
        if row is None:
            raise StoreNotFoundError(f"dead letter {letter_id} does not exist")
        return _letter(row)

    async def high_water_marks(self) -> tuple[int, int]:
        """The highest conflict id and dead-letter id so far (0 for none): what a watcher has seen at start."""
        async with self._db.scope(None) as s:
            conflict = (await s.execute(select(func.max(CONFLICT.c.id)))).scalar_one()
            letter = (await s.execute(select(func.max(DEAD_LETTER.c.id)))).scalar_one()
        return int(conflict or 0), int(letter or 0)

    async def cases_after(self, conflict_id: int, limit: int = 500) -> list[ConflictCase]:
        """Open conflicts with an id above `conflict_id` (opened since), oldest first."""
        stmt = (
            select(CONFLICT.c.id)
            .where(CONFLICT.c.id > conflict_id, CONFLICT.c.status == "open")
            .order_by(CONFLICT.c.id)
            .limit(limit)
        )
        async with self._db.scope(None) as s:
            ids = list((await s.execute(stmt)).scalars())
        return [await self.case(i) for i in ids]

    async def dead_letters_after(self, letter_id: int, limit: int = 500) -> list[DeadLetter]:
        """Dead letters with an id above `letter_id` (records parked for the first time since), oldest first;
        parking a record again keeps its row, so each record is here once per spell of failing."""
        stmt = select(DEAD_LETTER).where(DEAD_LETTER.c.id > letter_id).order_by(DEAD_LETTER.c.id).limit(limit)
        async with self._db.scope(None) as s:
            return [_letter(r) for r in (await s.execute(stmt)).all()]

    async def _with_links(self, conflicts: Sequence[Conflict]) -> list[ConflictCase]:
        links = await self.links.get_many(c.link_id for c in conflicts)
        return [ConflictCase(c, links[c.link_id]) for c in conflicts if c.link_id in links]


def side_value(conflict: Conflict, side: Side) -> Any:
    """The value a conflict holds on one side."""
    return conflict.crm_value if side == "crm" else conflict.acc_value


def resolution_label(conflict: Conflict) -> str:
    """How a resolved conflict was settled, in words: `kept the CRM value`, `typed a value`."""
    return {
        "crm": "kept the CRM value",
        "accounting": "kept the accounting value",
        "value": "typed a value",
    }.get(cast(str, conflict.resolution), "open")
