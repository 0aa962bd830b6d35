"""Records that vanished without a deletion event: some systems list no deletions, so a linked record whose
delete policy acts is checked when a record it refers to changed (deleting a payment changes its invoices)."""

from __future__ import annotations

from collections.abc import Mapping

from syncd.connectors.base import Record
from syncd.engine.context import MappingRun, side_id, side_object
from syncd.engine.pass_records import READ
from syncd.mapping.compiled import ObjectMapper
from syncd.mapping.spec import Side
from syncd.store.columns import utcnow

# Base snapshots keep, besides the fields, the id each side's record referred to when it was last synced,
# under `@<side>:<reference>`; nothing else reads these keys.
MARK_PREFIX = "@"


def reference_mark(side: Side, reference: str) -> str:
    """The base key holding the id `side`'s record referred to through `reference`."""
    return f"{MARK_PREFIX}{side}:{reference}"


def reference_marks(mapper: ObjectMapper, side: Side, fields: Mapping[str, object]) -> dict[str, str]:
    """The base keys and ids of every reference a record of `side` holds (attached sides refer to nothing)."""
    marks: dict[str, str] = {}
    for name, ref in mapper.references.items():
        field_name = ref.side_field(side)
        value = fields.get(field_name) if field_name is not None else None
        if value is not None and value != "":
            marks[reference_mark(side, name)] = str(value)
    return marks


async def find_vanished(run: MappingRun, mapper: ObjectMapper, side: Side) -> list[Record]:
    """Linked records of `side` not read in this pass, referring to a record that was, and no longer found:
    returned as deletions so that the object's delete policy applies to them."""
    if mapper.delete_policy == "ignore":
        return []
    changed = {
        reference_mark(side, name): ids
        for name, ref in mapper.references.items()
        if (ids := run.records.ids(ref.target, side, READ))
    }
    if not changed:
        return []
    read_here = run.records.ids(mapper.name, side, READ)
    candidates: list[str] = []
    for link in await run.stores.links.list(run.name, mapper.name, "linked", limit=None):
        record_id = side_id(link, side)
        if record_id is None or record_id in read_here:
            continue
        if any(link.base.get(mark) in ids for mark, ids in changed.items()):
            candidates.append(record_id)
    if not candidates:
        return []
    connector = run.connector(side)
    obj = side_object(mapper, side)
    found = await connector.get_many(obj, candidates)
    now = utcnow()
    return [Record(connector.system, obj, i, {}, now, deleted=True) for i in candidates if i not in found]
