"""First-time linking: the other side's record with the same match keys, refused when the match is ambiguous."""

from __future__ import annotations

from collections.abc import Sequence

from syncd.connectors.base import Record
from syncd.engine.context import other, side_object
from syncd.engine.object_run import ObjectRun
from syncd.engine.pairs import WaitingError
from syncd.mapping.spec import Side
from syncd.mapping.values import CanonicalScalar


class AmbiguousMatchError(WaitingError):
    """More than one record on the other side has the same match keys; a person must decide."""


async def find_match(scope: ObjectRun, side: Side, record: Record) -> Record | None:
    """The other side's record with the same match keys, or None; an ambiguous match stops the record."""
    mapper = scope.mapper
    key = mapper.match_key(side, record)
    if key is None or len(mapper.match_keys) != 1:
        return None
    raw = record.fields.get(mapper.fields[mapper.match_keys[0]].scalar.side_name(side))
    values = sorted({str(key[0]), *([raw.strip()] if isinstance(raw, str) and raw.strip() else [])})
    target = other(side)
    free = [
        c
        for c in (await _unlinked_matches(scope, target, key, values)).values()
        if not scope.run.link_planned(scope.obj, target, c.id)
    ]
    if len(free) > 1:
        ids = ", ".join(sorted(c.id for c in free))
        raise AmbiguousMatchError(f"ambiguous match on {', '.join(mapper.match_keys)}: {ids}")
    if not free:
        return None
    # One match seen from here can still be one of several seen from there (two customers keyed in twice
    # for one contact): pairing it with either would be a guess.
    rivals = set(await _unlinked_matches(scope, side, key, values))
    if len(rivals - {record.id}) > 0:
        ids = ", ".join(sorted(rivals | {record.id}))
        raise AmbiguousMatchError(
            f"ambiguous match on {', '.join(mapper.match_keys)}: {ids} all match {free[0].id}"
        )
    return free[0]


async def _unlinked_matches(
    scope: ObjectRun, side: Side, key: tuple[CanonicalScalar, ...], values: Sequence[str]
) -> dict[str, Record]:
    """The records of `side` with match key `key` that no link holds yet, by id."""
    mapper, run = scope.mapper, scope.run
    candidates: dict[str, Record] = {}
    index = run.match_index(scope.obj, side, side_object(mapper, side))
    indexed = index.find(key) if index is not None else None
    if indexed is not None:
        # A full read of that side this pass: no lookup per record.
        candidates = {c.id: c for c in indexed}
    else:
        field_name = mapper.fields[mapper.match_keys[0]].scalar.side_name(side)
        found = await run.connector(side).find_by_field(side_object(mapper, side), field_name, values)
        for records in found.values():
            for candidate in records:
                if not candidate.deleted and mapper.match_key(side, candidate) == key:
                    candidates[candidate.id] = candidate
    return {i: c for i, c in candidates.items() if await run.lookup(scope.obj, side, c.id) is None}
