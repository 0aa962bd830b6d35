"""What a reconcile pass tells an observer as it goes, so a command can show progress without the engine knowing
how it is shown (the engine never imports a display library)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from syncd.engine.plan import PlannedAction


class PassObserver(Protocol):
    """Told about each mapped object of a pass in turn: when it starts, how many records were read (page by page,
    so the total grows as pages arrive; a first sync reads each side whole, so its total is known at once), each
    batch once committed with the actions it planned, and when the object is done (or failed)."""

    def object_started(self, mapping: str, object: str) -> None:
        """The pass starts on `object` of `mapping`."""

    def records_read(self, mapping: str, object: str, count: int) -> None:
        """A page of `count` changed records was read; they are synced batch by batch next."""

    def batch_synced(self, mapping: str, object: str, records: int, actions: Sequence[PlannedAction]) -> None:
        """A batch of `records` went through (committed, unless a dry run), planning `actions`."""

    def object_finished(self, mapping: str, object: str) -> None:
        """The pass is done with `object` of `mapping` (its errors are in the pass's report)."""


class SilentObserver:
    """The observer of passes nobody watches (the daemon's): it does nothing."""

    def object_started(self, mapping: str, object: str) -> None:
        """Nothing to show."""

    def records_read(self, mapping: str, object: str, count: int) -> None:
        """Nothing to show."""

    def batch_synced(self, mapping: str, object: str, records: int, actions: Sequence[PlannedAction]) -> None:
        """Nothing to show."""

    def object_finished(self, mapping: str, object: str) -> None:
        """Nothing to show."""
