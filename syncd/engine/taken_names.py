"""Names the target keeps unique (two customers called Jennifer Mitchell): on a first sync, whose read of the
target knows every name held, a create picks the first free one of the mapping's alternatives up front; a create
refused all the same (a later pass, a name held in a way the read could not see) is created again under the
alternatives, in turn, until one is free or none is left."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

from syncd.connectors.base import WriteOutcome
from syncd.engine.context import describe, other, side_object
from syncd.engine.match_index import MatchIndex
from syncd.engine.object_run import ObjectRun
from syncd.engine.pairs import CreateWork
from syncd.errors import NameTakenError
from syncd.logs import get_logger
from syncd.mapping.compiled import UniqueName
from syncd.mapping.spec import Side
from syncd.textkeys import text_key

log = get_logger(__name__)

Created = tuple[CreateWork, WriteOutcome]
#: Creates a batch on the target side through its connector, one outcome per work in order.
SendCreates = Callable[[Sequence[CreateWork]], Awaitable[Sequence[WriteOutcome]]]


def choose_free_names(scope: ObjectRun, side: Side, works: Sequence[CreateWork]) -> list[CreateWork]:
    """`works` each under a name free on `side` as far as this pass's whole read of it knows: a name held
    there is replaced by the first alternative that is not (as a refusal would have it replaced, without
    the refused create and the lookup of its holder). Each name given is held from then on, so two new
    people sharing a name get two names. Without a whole read, or with no alternative free, the name stays
    and a refusal is handled by `rename_taken`."""
    rule = scope.mapper.create.unique_name(side)
    index = _first_read(scope, side) if rule is not None else None
    held = index.held_names if index is not None else None
    if rule is None or index is None or held is None:
        return list(works)
    chosen: list[CreateWork] = []
    for work in works:
        name = str(work.fields.get(rule.field) or "")
        if text_key(name) in held:
            canonical = scope.mapper.to_canonical(other(side), work.source)
            free = next((n for n in rule.candidates(name, canonical) if text_key(n) not in held), None)
            if free is not None:
                log.info("created under another name", mapping=scope.run.name, object=scope.obj,
                         source=describe(work.source), taken=name, name=free)  # fmt: skip
                work = replace(work, fields={**work.fields, rule.field: free})
                index.passed_over[free] = name
                name = free
        if text_key(name):
            held.add(text_key(name))
        chosen.append(work)
    return chosen


def _first_read(scope: ObjectRun, side: Side) -> MatchIndex | None:
    """This pass's index of the target's whole read, if it has one (a first sync) that still holds."""
    return scope.run.match_index(scope.obj, side, side_object(scope.mapper, side))


def _untried(scope: ObjectRun, side: Side, rule: UniqueName, refused: str, work: CreateWork) -> tuple[list[str], str]:
    """The names still to try after `refused`, and the first name the person was meant to have: where a first
    sync chose `refused` for a name it saw taken, the alternatives after it of that name, less those held."""
    canonical = scope.mapper.to_canonical(other(side), work.source)
    index = _first_read(scope, side)
    if index is not None and index.held_names is not None:
        index.held_names.add(text_key(refused))  # held after all: no later create of this pass picks it
    original = index.passed_over.get(refused) if index is not None else None
    if index is None or original is None:
        return rule.candidates(refused, canonical), refused
    names = rule.candidates(original, canonical)
    later = names[names.index(refused) + 1:] if refused in names else names
    held = index.held_names
    return [n for n in later if held is None or text_key(n) not in held], original


def _taken(outcome: WriteOutcome, rule: UniqueName) -> NameTakenError | None:
    error = outcome.error
    return error if isinstance(error, NameTakenError) and error.field == rule.field else None


async def rename_taken(scope: ObjectRun, side: Side, created: Sequence[Created], send: SendCreates) -> list[Created]:
    """`created` with every create refused for a taken name tried again under the next free alternative.

    The work keeps the name that was accepted, so the audit row and the target show the chosen name; it is
    written only on create (the mapping's rule demands it), so later passes never "fix" it back. A create
    refused under every alternative keeps its refusal, naming every name tried, as its outcome.
    """
    rule = scope.mapper.create.unique_name(side)
    result = list(created)
    if rule is None:
        return result
    untried: dict[int, list[str]] = {}
    tried: dict[int, list[str]] = {}
    for index, (work, outcome) in enumerate(result):
        if _taken(outcome, rule) is not None:
            refused = str(work.fields.get(rule.field) or "")
            untried[index], first = _untried(scope, side, rule, refused, work)
            tried[index] = [first, refused] if first != refused else [refused]
    while retry := [(i, names.pop(0)) for i, names in untried.items() if names and _taken(result[i][1], rule)]:
        works = [replace(result[i][0], fields={**result[i][0].fields, rule.field: name}) for i, name in retry]
        for (index, name), work, outcome in zip(retry, works, await send(works), strict=True):
            result[index] = (work, outcome)
            tried[index].append(name)
            if outcome.ok:
                log.info("created under another name", mapping=scope.run.name, object=scope.obj,
                         source=describe(work.source), taken=tried[index][0], name=name)  # fmt: skip
    for index in tried:
        work, outcome = result[index]
        error = _taken(outcome, rule)
        if error is not None:
            result[index] = (work, WriteOutcome(None, _every_name_taken(error, tried[index])))
            # The pass reports the person as an error: parked alone, the refusal would read as a create.
            scope.run.errors.append(f"{describe(work.source)}: {result[index][1].error}")
    return result


def _every_name_taken(error: NameTakenError, names: Sequence[str]) -> NameTakenError:
    """The refusal of the last name tried, naming every name tried, with the system's code and message."""
    shown = ", ".join(repr(n) for n in names)
    return NameTakenError(
        f"{error.field} taken under every name tried ({shown}): {error.vendor_message}",
        field=error.field,
        value=error.value,
        holder_id=error.holder_id,
        connection=error.connection,
        status=error.status,
        vendor_code=error.vendor_code,
        record=error.record,
    )
