"""What a person must hear about, one log line each: a conflict opened (naming the record and field) and a
connection needing re-authorisation (naming the command that fixes it)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from syncd.logs import get_logger
from syncd.store import Conflict, Link
from syncd.store.review import record_label

log = get_logger("syncd.signals")


def announce_conflicts(mapping: str, obj: str, opened: Sequence[tuple[Link, Conflict]], *, since: datetime) -> None:
    """Log each conflict detected at or after `since` (one committed batch's new ones; a still-open conflict
    whose values were only refreshed keeps its first detection time and is not announced again)."""
    for link, conflict in opened:
        if conflict.detected_at < since:
            continue
        log.warning(
            "conflict opened: a person must choose the value",
            mapping=mapping,
            object=obj,
            record=record_label(link, {conflict.field: conflict.crm_value}),
            field=conflict.field,
            conflict=conflict.id,
            crm_id=link.crm_id,
            acc_id=link.acc_id,
            resolve=f"syncd conflicts resolve {conflict.id}",
        )


def announce_reauthorisation(connection: str, system: str, reason: str | None) -> None:
    """Log that a connection's grant is gone and how to give it a new one."""
    log.error(
        "connection needs re-authorisation: its polling is paused and its webhook events wait",
        connection=connection,
        system=system,
        reason=reason,
        run=f"syncd auth {connection}",
    )
