"""One CDC call for every object of a pass: QBO's change data capture takes a list of entities, so the first
object read in a round asks for every entity the connector reads, and the others take their part of that answer
instead of calling again. An idle pass then costs one call in all, not one per object.

A round starts when an object is read whose part was already used (the next pass begins) or when nothing was
used yet; its start drops every answer kept, so no pass reads what an earlier one left. Within a round each
entity's part serves one `changes()` (`deletions()` reads it without using it up), only if the answer was asked
from no later than the entity's own start (rows are filtered to that start) and is under `REUSE_S` old; an
answer that hit CDC's cap of 1,000 objects serves nobody (the objects left out could be anyone's). A write through
the connector drops the answers kept (its effects must be read in the same pass). An entity missing from the
round's answer (first read since start-up, a write since, an expired or capped answer) is asked for alone.
Cursors come from each answer's own time, so a change landing after it is read by the next pass, never lost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from syncd.connectors.quickbooks.values import modified_at

REUSE_S = 30.0
CDC_MAX = 1000


@dataclass(frozen=True)
class Changes:
    """What CDC said of one entity since a start: its rows (deleted ones flagged), the server's time of the
    answer, and whether the answer is whole (under the cap)."""

    rows: list[dict[str, Any]]
    answered: datetime | None
    complete: bool


@dataclass(frozen=True)
class _Answer:
    read_at: float  # the event loop's clock
    since: datetime
    rows: list[dict[str, Any]]
    answered: datetime | None


class ChangeFeed:
    """The CDC answers of the current round by entity, the entities whose part this round used, and the start
    each entity was last read from."""

    def __init__(self, lookback: timedelta) -> None:
        self._lookback = lookback
        self._answers: dict[str, _Answer] = {}
        self._used: set[str] = set()
        self._starts: dict[str, datetime] = {}

    def take(self, entity: str, start: datetime, now: float, *, use_up: bool) -> Changes | None:
        """This entity's part of the round's answer, if one can serve `start`."""
        answer = self._answers.get(entity)
        if answer is None or entity in self._used or now - answer.read_at >= REUSE_S or answer.since > start:
            return None
        if use_up:
            self.used(entity)
        return Changes([r for r in answer.rows if modified_at(r) >= start], answer.answered, True)

    def request(self, entity: str, start: datetime, server_now: datetime) -> tuple[list[str], datetime]:
        """What to ask CDC for `entity`: at a round's start every entity read before (each from the earliest of
        their last starts: each one's next start is no earlier; those last read past CDC's look-back left out),
        within a round this entity alone."""
        self._starts[entity] = start
        if self._used and entity not in self._used:
            return [entity], start
        self._answers.clear()
        self._used.clear()
        others = [(name, since) for name, since in self._starts.items()
                  if name != entity and server_now - since < self._lookback]  # fmt: skip
        return [entity, *(name for name, _ in others)], min([start, *(since for _, since in others)])

    def store(self, entities: Sequence[str], since: datetime, found: Mapping[str, list[dict[str, Any]]],
              answered: datetime | None, now: float) -> bool:
        """Keep a whole answer for the entities it covered; whether it was whole (under CDC's cap)."""
        if sum(len(rows) for rows in found.values()) >= CDC_MAX:
            for entity in entities:
                self._answers.pop(entity, None)
            return False
        for entity in entities:
            self._answers[entity] = _Answer(now, since, list(found.get(entity, [])), answered)
        return True

    def forget(self) -> None:
        """The connector wrote: what the round's answer says may be out of date (a payment moves its invoices'
        balances too), so every entity not yet read this round asks again."""
        self._answers.clear()

    def used(self, entity: str) -> None:
        """The entity's `changes()` read its part of this round."""
        self._answers.pop(entity, None)
        self._used.add(entity)
