"""The actions one pass reports, in bounded memory: every action counted, only the first ones kept in full."""

from __future__ import annotations

from collections import Counter

from syncd.engine.plan import ERROR_KIND, PlannedAction, SyncReport

#: How many actions a pass's report holds in full by default (and, beyond them, how many more refused writes):
#: a first sync of 50,000 records would otherwise keep every action and its field changes until it ends.
DEFAULT_KEPT = 200


class ActionLog:
    """What a run reports as it goes: each action counted by (object, kind); the first `kept` of them, and up
    to `kept` refused writes after those, held in full. The rest are in the audit log (writes) and the dead
    letters (refusals, parked records), which the report points to."""

    def __init__(self, kept: int = DEFAULT_KEPT) -> None:
        self.kept = kept
        self._held: list[PlannedAction | None] = []  # None: an action settled as not having happened
        self._positions: dict[int, int] = {}  # id() of a held action → its place in `_held`
        self._tallies: Counter[tuple[str, str]] = Counter()
        # The actions since the last `mark` (one batch), whatever their number, for the pass's observer.
        self._recent: list[PlannedAction] = []

    def __len__(self) -> int:
        return sum(self._tallies.values())

    def append(self, action: PlannedAction) -> None:
        """Count one action, and hold it in full while there is room."""
        self._tallies[(action.object, action.kind)] += 1
        self._recent.append(action)
        self._hold(action)

    def _hold(self, action: PlannedAction) -> None:
        # Past the first `kept`, only refused writes are held, as many again.
        room = 2 * self.kept if action.kind == ERROR_KIND else self.kept
        if len(self._positions) >= room:
            return
        self._positions[id(action)] = len(self._held)
        self._held.append(action)

    def settle(self, planned: PlannedAction, outcome: PlannedAction | None) -> None:
        """Replace an action reported when it was planned by what came of it (a refused write becomes an
        error), or drop it (None) when it did not happen; the report then says what was done."""
        self._tallies[(planned.object, planned.kind)] -= 1
        if outcome is not None:
            self._tallies[(outcome.object, outcome.kind)] += 1
        # Searched from the end: the writer settles the batch it just planned.
        for index in range(len(self._recent) - 1, -1, -1):
            if self._recent[index] is planned:
                if outcome is None:
                    del self._recent[index]
                else:
                    self._recent[index] = outcome
                break
        position = self._positions.pop(id(planned), None)
        if position is None:
            if outcome is not None:
                self._hold(outcome)
            return
        self._held[position] = outcome
        if outcome is not None:
            self._positions[id(outcome)] = position

    def mark(self) -> None:
        """Start a new batch: `recent` holds only what is reported from now on."""
        self._recent = []

    @property
    def recent(self) -> list[PlannedAction]:
        """The actions reported since the last `mark`, as settled."""
        return list(self._recent)

    @property
    def held(self) -> tuple[PlannedAction, ...]:
        """The actions held in full, in the order they were reported."""
        return tuple(a for a in self._held if a is not None)

    def report(self, errors: list[str], *, dry_run: bool) -> SyncReport:
        """The run's report: the actions held in full and the counts of all."""
        tallies = {key: n for key, n in self._tallies.items() if n}
        return SyncReport(self.held, dry_run=dry_run, errors=tuple(errors), tallies=tallies)
