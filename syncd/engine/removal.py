"""Records leaving the sync on one side: merged away (the link follows the survivor), deleted (the object's
delete policy applies on the other side), or a won deal lost again (its invoice voided)."""

from __future__ import annotations

from syncd.connectors.base import Record
from syncd.engine import lifecycle
from syncd.engine.context import describe, other, side_id, side_object
from syncd.engine.failures import Refusal, as_error
from syncd.engine.journal import DELETED, journalled
from syncd.engine.object_run import ObjectRun
from syncd.engine.plan import PlannedAction
from syncd.errors import SkippableError
from syncd.mapping.spec import Side
from syncd.store import JournalEntry, Link


async def plan_removal(scope: ObjectRun, side: Side, record: Record) -> None:
    """A record deleted or merged away on `side`: move the link to the survivor, or apply the policy."""
    run = scope.run
    link = await run.lookup(scope.obj, side, record.id)
    if link is None or link.state == "deleted":
        return
    if record.merged_into is not None:
        scope.action(
            "move",
            describe(record),
            f"{record.system} {record.object} {record.merged_into}",
            reason="merged; the link follows the surviving record",
        )
        if not run.dry_run:
            await run.stores.links.move(link.id, side, record.merged_into)
        return
    planned = _report_deletion(scope, side, record, link)
    if run.dry_run:
        return
    try:
        await _apply_delete_policy(scope, side, record, link)
    except SkippableError as exc:
        # Refused as it is: reported as the error it is, and the link stays open. (A transient failure
        # propagates: the object stops, its cursor stays, and the next pass lists the deletion again.)
        refusal = Refusal.of(exc, run.connector(other(side)))
        run.settle(planned, as_error(planned, refusal.reason(f"removing {planned.target}")))
        return
    await run.stores.links.mark_deleted(link.id)


def _report_deletion(scope: ObjectRun, side: Side, record: Record, link: Link) -> PlannedAction:
    """What the delete policy does (or would do) to the counterpart of a record deleted on `side`."""
    mapper, run = scope.mapper, scope.run
    target = other(side)
    target_id = side_id(link, target)
    policy = mapper.delete_policy
    target_object = side_object(mapper, target)
    if target_id is None or policy == "ignore" or (mapper.attach is not None):
        return scope.action("skip", describe(record), "", reason=f"deleted; delete policy {policy}: link closed")
    if policy == "delete":
        return scope.action(
            "delete",
            describe(record),
            f"{run.system(target)} {target_object} {target_id}",
            reason="deleted; delete policy: delete",
        )
    if target == "accounting":
        return scope.action(
            "void" if lifecycle.is_invoice(mapper) else "update",
            describe(record),
            f"{run.system(target)} {target_object} {target_id}",
            reason="deleted; delete policy: deactivate",
        )
    return scope.action("skip", describe(record), "", reason="deleted; the CRM side cannot be deactivated")


async def _apply_delete_policy(scope: ObjectRun, side: Side, record: Record, link: Link) -> None:
    """Delete the counterpart, or deactivate it (accounting only), as the object's delete policy says."""
    mapper = scope.mapper
    target = other(side)
    target_id = side_id(link, target)
    policy = mapper.delete_policy
    if target_id is None or mapper.attach is not None:
        return
    target_object = side_object(mapper, target)
    connector = scope.run.connector(target)
    cause = scope.cause(f"{describe(record)} was deleted")
    if policy == "delete":
        async with journalled(scope, JournalEntry(connector.system, target_object, target_id, {}, DELETED, cause,
                                                  link.id)):
            outcome = (await connector.delete_many(target_object, [target_id]))[0]
            if outcome.error is not None:
                raise outcome.error
    elif policy == "deactivate" and target == "accounting":
        # `inactive` is the protocol's verb for deactivating a record; an invoice is voided in its system's words.
        action = mapper.invoice.void_action if mapper.invoice is not None else "inactive"
        # What the action leaves the record showing, in its system's words (what a recovery compares); a system
        # that declares nothing leaves a recovery unable to confirm it.
        after: dict[str, object] = (
            {mapper.invoice.status_field: mapper.invoice.void_status} if mapper.invoice is not None
            else dict([mapper.deactivated]) if mapper.deactivated is not None else {"deactivated": action}
        )
        async with journalled(scope, JournalEntry(connector.system, target_object, target_id, {}, after, cause,
                                                  link.id)):
            await connector.act(target_object, target_id, action)


async def plan_void(scope: ObjectRun, record: Record, link: Link) -> None:
    """A linked deal that left its won stage: void its invoice, if the lifecycle policy says so."""
    run = scope.run
    if not run.policy.void_lost_invoices or link.acc_id is None:
        return
    words = scope.mapper.invoice
    invoice = await scope.counterpart(link, "accounting")
    if words is None or invoice is None or lifecycle.is_void(scope.mapper, invoice):
        return
    planned = scope.action("void", describe(record), describe(invoice), reason="deal left its won stage")
    if run.dry_run:
        return
    status = words.status_field
    entry = JournalEntry(
        run.acc.system, scope.mapper.acc_object, invoice.id, {status: invoice.fields.get(status)},
        {status: words.void_status}, scope.cause(f"{describe(record)} left its won stage"), link.id,
    )  # fmt: skip
    try:
        async with journalled(scope, entry):
            await run.acc.act(scope.mapper.acc_object, invoice.id, words.void_action)
    except SkippableError as exc:
        # The system refuses to void it as it is (e.g. payments applied): an error with its reason, never
        # reported as voided; the deal's next change tries again.
        run.settle(planned, as_error(planned, Refusal.of(exc, run.acc).reason(f"voiding {describe(invoice)}")))
