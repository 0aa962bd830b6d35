"""One mapped object within a mapping run: what its pipeline steps share, and how they report and park records."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from syncd.connectors.base import Record
from syncd.engine import lifecycle
from syncd.engine.context import MappingRun, describe, side_id, side_object
from syncd.engine.failures import Refusal, engine_class, mapping_fingerprint
from syncd.engine.plan import ActionKind, FieldChange, PlannedAction
from syncd.mapping.compiled import ObjectMapper
from syncd.mapping.spec import Side
from syncd.store import Link
from syncd.store.columns import utcnow

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True)
class ObjectRun:
    """A mapping run and the mapper of the object being synced, as every pipeline step needs them."""

    run: MappingRun
    mapper: ObjectMapper

    @property
    def obj(self) -> str:
        """The mapped object's name (as links, dead letters and reports record it)."""
        return self.mapper.name

    async def counterpart(self, link: Link, side: Side) -> Record | None:
        """The record `link` holds on `side`, read fresh (a CRM deal with its amount line), or None if gone."""
        record_id = side_id(link, side)
        if record_id is None:
            return None
        found = await self.run.connector(side).get_many(side_object(self.mapper, side), [record_id])
        record = found.get(record_id)
        if record is not None and side == "crm":
            record = lifecycle.with_amount_line(self.mapper, record)
        return record

    # --- reporting and parking -----------------------------------------------------------------------
    def action(
        self,
        kind: ActionKind,
        source: str,
        target: str,
        *,
        changes: Sequence[FieldChange] = (),
        reason: str = "",
    ) -> PlannedAction:
        """Add one action on one record to the run's report; returned so a write's outcome can settle it."""
        planned = PlannedAction(kind, self.run.name, self.obj, source, target, tuple(changes), reason)
        self.run.actions.append(planned)
        return planned

    def skip(self, record: Record, reason: str) -> None:
        """Report that `record` is left as it is, and why."""
        self.action("skip", describe(record), "", reason=reason)

    def cause(self, what: str) -> str:
        """An audit row's cause: what happened, prefixed with the mapping and the object."""
        return f"{self.run.name}:{self.obj}: {what}"

    async def park(self, side: Side, record: Record, reason: str, *, retry: bool) -> None:
        """Report `record` as skipped and hold it as a dead letter (retried later, or until it changes)."""
        self.skip(record, reason)
        if self.run.dry_run:
            return
        async with self.run.stores.db.transaction() as session:
            await self.park_in(session, side, record, reason, retry=retry)

    @cached_property
    def fingerprint(self) -> str:
        """The digest of this object's mapping rules that dead letters keep (see `failures.holding`)."""
        return mapping_fingerprint(self.run.mapping, self.obj)

    async def park_in(
        self,
        session: AsyncSession,
        side: Side,
        record: Record,
        reason: str,
        *,
        retry: bool | Refusal,
        counterpart: Record | None = None,
        earlier_attempts: int = 0,
    ) -> None:
        """Hold `record` (and, re-read unchanged, its `counterpart` in a refused pair) as a dead letter in the
        caller's transaction: for the engine's own reasons retried later (`retry`) or held until it changes,
        or for a system's refusal as its class decides."""
        run = self.run
        now = utcnow()
        if isinstance(retry, Refusal):
            next_attempt_at = retry.next_attempt(now, run.retry_after)
            error_class, code, message = retry.error_class, retry.code, retry.message
        else:
            next_attempt_at = now + run.retry_after if retry else None
            error_class, code, message = engine_class(retry), None, None
        await run.stores.dead_letters.park(
            run.connector(side).name,
            run.name,
            self.obj,
            side,
            record.id,
            reason,
            next_attempt_at=next_attempt_at,
            payload={"object": record.object},
            error_class=error_class,
            error_code=code,
            error_message=message,
            mapping_fingerprint=self.fingerprint,
            counterpart_id=counterpart.id if counterpart is not None else None,
            earlier_attempts=earlier_attempts,
            session=session,
        )
