"""One writer per target across mappings: matching and creating on a system's object happen one batch at a time.

Two mappings that create on one target (contacts of two CRMs both becoming customers of one accounting system)
would otherwise each look for a person on the target, each find nobody, and each create them. Holding the
target's lock from the batch's matching to its committed links makes the second mapping find (and link) what
the first created.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable

from syncd.engine.context import other, side_object
from syncd.mapping.compiled import CompiledMapping, ObjectMapper
from syncd.mapping.spec import Side

#: A target a batch may create on: (system, system object), e.g. (accounting system, its contact object).
Target = tuple[str, str]


def creation_targets(mapping: CompiledMapping, mapper: ObjectMapper, side: Side) -> frozenset[Target]:
    """What a batch of `mapper` records read from `side` may match and create on: the other side if it creates
    there, and wherever the objects it depends on create, since a missing dependency is synced within the batch
    (an invoice's new customer is created on demand)."""
    targets: set[Target] = set()

    def system(s: Side) -> str:
        return mapping.crm_system if s == "crm" else mapping.acc_system

    if mapper.create.may_create_on(other(side)):
        targets.add((system(other(side)), side_object(mapper, other(side))))
    seen: set[str] = set()
    pending = list(mapper.depends_on)
    while pending:
        name = pending.pop()
        if name in seen or name not in mapping.objects:
            continue
        seen.add(name)
        dependency = mapping.objects[name]
        pending.extend(dependency.depends_on)
        for target in ("crm", "accounting"):
            if dependency.create.may_create_on(target):
                targets.add((system(target), side_object(dependency, target)))
    return frozenset(targets)


class TargetLocks:
    """One asyncio lock per target, shared by every mapping of one reconciler (one process).

    Locks are always taken in sorted order and all at once per batch, so two batches wanting overlapping
    targets wait for each other instead of deadlocking.
    """

    def __init__(self) -> None:
        self._locks: dict[Target, asyncio.Lock] = {}
        self._holders: dict[Target, set[str]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, targets: Iterable[Target], holder: str = "") -> AsyncIterator[None]:
        """Hold the locks of every target in `targets` for the duration of the block, for mapping `holder`."""
        async with contextlib.AsyncExitStack() as stack:
            for target in sorted(set(targets)):
                await stack.enter_async_context(self._locks.setdefault(target, asyncio.Lock()))
                self._holders.setdefault(target, set()).add(holder)
            yield

    def written_by_others(self, target: Target, mapping: str) -> bool:
        """Whether a mapping other than `mapping` may have matched or created on `target` in this process: a
        snapshot of it read earlier (a first sync's match index) may then lack what that mapping made."""
        return any(holder != mapping for holder in self._holders.get(target, ()))
