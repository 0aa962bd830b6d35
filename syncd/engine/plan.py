"""The plan of a pass (or what a pass did): actions per record, rendered as a rich table or as JSON."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from itertools import repeat
from typing import Any, Literal

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from syncd.engine.snapshot import encode_value
from syncd.mapping.values import CanonicalValue

ActionKind = Literal["create", "update", "link", "delete", "void", "move", "conflict", "skip", "error"]
#: Kinds that change something on a system; a pass whose plan has none of them has settled.
WRITE_KINDS: frozenset[str] = frozenset({"create", "update", "delete", "void"})
#: The kind a planned write becomes when the system refused it (with the system's reason).
ERROR_KIND: ActionKind = "error"


@dataclass(frozen=True)
class FieldChange:
    """One field's canonical value before and after (for conflicts: the CRM and accounting values)."""

    field: str
    old: CanonicalValue
    new: CanonicalValue


@dataclass(frozen=True)
class PlannedAction:
    """One thing a pass does (or would do) to one record."""

    kind: ActionKind
    mapping: str
    object: str
    source: str  # "system object id" of the record that caused it
    target: str  # "system object id" written to ("…:new" for creates)
    changes: tuple[FieldChange, ...] = ()
    reason: str = ""

    @property
    def writes(self) -> bool:
        """Whether this action changes something on a system."""
        return self.kind in WRITE_KINDS


#: Where the actions a report leaves out can still be found (writes, and refused writes or parked records).
OMITTED_WHERE = "the writes are in `syncd audit`, refused writes and parked records in `syncd deadletters`"


@dataclass(frozen=True)
class SyncReport:
    """What one pass did: every action counted by object and kind, the first ones (and failures) in full."""

    actions: tuple[PlannedAction, ...]
    dry_run: bool = False
    errors: tuple[str, ...] = field(default=())
    # Actions by (object, kind), the ones `actions` leaves out included (a long pass keeps only the first in
    # full: see `ActionLog`); None when `actions` holds them all.
    tallies: Mapping[tuple[str, str], int] | None = None

    def by_object(self) -> dict[tuple[str, str], int]:
        """How many actions of each (object, kind), those left out of `actions` included."""
        if self.tallies is None:
            return dict(Counter((a.object, a.kind) for a in self.actions))
        return {key: n for key, n in self.tallies.items() if n}

    def tallied(self) -> Iterator[tuple[str, str]]:
        """Each action's (object, kind), those left out of `actions` included."""
        for key, n in self.by_object().items():
            yield from repeat(key, n)

    @property
    def omitted(self) -> int:
        """How many actions the report counts but does not hold in full."""
        return sum(self.by_object().values()) - len(self.actions)

    @property
    def settled(self) -> bool:
        """True when the pass wrote (or would write) nothing."""
        return not any(n for kind, n in self.counts().items() if kind in WRITE_KINDS)

    def counts(self) -> dict[str, int]:
        """How many actions of each kind."""
        counts: Counter[str] = Counter()
        for (_, kind), n in self.by_object().items():
            counts[kind] += n
        return dict(counts)

    def of_kind(self, kind: ActionKind) -> list[PlannedAction]:
        """The actions of one kind the report holds in full."""
        return [a for a in self.actions if a.kind == kind]

    @property
    def failures(self) -> list[PlannedAction]:
        """The writes a system refused that the report holds in full, each with the system's reason."""
        return self.of_kind(ERROR_KIND)

    @property
    def error_count(self) -> int:
        """Everything that went wrong: refused writes and the pass's own errors (an object that failed)."""
        return len(self.errors) + self.counts().get(ERROR_KIND, 0)

    def error_lines(self) -> list[str]:
        """Every error as one line: each refused write (record and reason), then the pass's own errors."""
        shown = self.failures
        lines = [f"{a.source}: {a.reason}" for a in shown]
        unlisted = self.counts().get(ERROR_KIND, 0) - len(shown)
        if unlisted:
            lines.append(f"{unlisted} more refused write{'s' if unlisted != 1 else ''}: see `syncd deadletters`")
        return lines + list(self.errors)

    def omitted_line(self) -> str:
        """What a reader is told about the actions left out, or "" when there are none."""
        if not self.omitted:
            return ""
        where = "a dry run writes nothing" if self.dry_run else OMITTED_WHERE
        return f"{self.omitted:,} more action{'s' if self.omitted != 1 else ''} not listed ({where})"


def _shown(value: CanonicalValue) -> str:
    if value is None:
        return "∅"
    if isinstance(value, tuple):
        return f"[{len(value)} line{'s' if len(value) != 1 else ''}]"
    if isinstance(value, Decimal | date | datetime):
        return str(value)
    return repr(value) if isinstance(value, str) else str(value)


def render_table(report: SyncReport, console: Console) -> None:
    """Print the report as a table: one row per action, field changes as `field: old → new`."""
    title = "Planned (dry run, nothing written)" if report.dry_run else "Sync pass"
    table = Table(title=title, show_lines=False)
    for column in ("action", "object", "source", "target", "details"):
        table.add_column(column, overflow="fold")
    for action in report.actions:
        arrow = " ≠ " if action.kind == "conflict" else " → "
        lines = [f"{c.field}: {_shown(c.old)}{arrow}{_shown(c.new)}" for c in action.changes]
        if action.reason:
            lines.append(action.reason)
        where = f"{action.mapping}:{action.object}"
        table.add_row(action.kind, where, action.source, action.target, "\n".join(lines))
    console.print(table)
    if report.omitted:
        console.print(report.omitted_line())
    summary = ", ".join(f"{n} {k}" for k, n in sorted(report.counts().items())) or "nothing to do"
    console.print(("Would do: " if report.dry_run else "Done: ") + summary)
    if report.error_count:
        console.print(f"[red]{report.error_count} error{'s' if report.error_count != 1 else ''}:[/red]")
    for error in report.error_lines():
        # Escaped: a system's message may hold brackets that rich would read as markup.
        console.print(f"[red]error:[/red] {escape(error)}", highlight=False)


def _change_data(change: FieldChange) -> dict[str, Any]:
    return {"field": change.field, "old": encode_value(change.old), "new": encode_value(change.new)}


def report_data(report: SyncReport) -> dict[str, Any]:
    """The report as plain JSON data."""
    return {
        "dry_run": report.dry_run,
        "settled": report.settled,
        "counts": report.counts(),
        "error_count": report.error_count,
        "errors": report.error_lines(),
        "omitted": report.omitted,
        "omitted_note": report.omitted_line(),
        "actions": [
            {
                "kind": a.kind,
                "mapping": a.mapping,
                "object": a.object,
                "source": a.source,
                "target": a.target,
                "reason": a.reason,
                "changes": [_change_data(c) for c in a.changes],
            }
            for a in report.actions
        ],
    }


def report_json(report: SyncReport) -> str:
    """The report as one JSON document."""
    return json.dumps(report_data(report), indent=2, sort_keys=False)


def merge_reports(reports: Sequence[SyncReport], *, dry_run: bool) -> SyncReport:
    """One report out of several (e.g. one per mapping file)."""
    actions = tuple(a for r in reports for a in r.actions)
    tallies: Counter[tuple[str, str]] = Counter()
    for report in reports:
        tallies.update(report.by_object())
    return SyncReport(actions, dry_run=dry_run, errors=tuple(e for r in reports for e in r.errors),
                      tallies=dict(tallies))
