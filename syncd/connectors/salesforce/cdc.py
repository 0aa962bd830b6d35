"""The sandbox's CDC-style change feed: verify its HMAC signature and turn its events into ChangeEvents.

Real Change Data Capture arrives over CometD or Pub/Sub gRPC; the sandbox POSTs the same event shape as a
JSON array signed with `X-Sandbox-Signature` = hex HMAC-SHA256(client secret, raw body)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from syncd.connectors.base import ChangeEvent, ChangeKind, WebhookRejected, WebhookRequest
from syncd.connectors.freshness import check_fresh

SIGNATURE_HEADER = "X-Sandbox-Signature"
# The signature covers only the body, so a captured delivery verifies for ever: its events' commit times bound
# it. Salesforce keeps change events for 72 hours, so no genuine (re)delivery is older than that.
MAX_EVENT_AGE = timedelta(hours=72)
_KINDS: Mapping[str, ChangeKind] = {
    "CREATE": "created",
    "UPDATE": "updated",
    "DELETE": "deleted",
    "UNDELETE": "restored",
}


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


def verify_feed(request: WebhookRequest, secret: str) -> None:
    """Refuse (401) a feed delivery whose signature is missing or does not match the body."""
    given = _header(request.headers, SIGNATURE_HEADER)
    if not given:
        raise WebhookRejected(401, f"missing {SIGNATURE_HEADER} header")
    expected = hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(given.strip().lower(), expected):
        raise WebhookRejected(401, "signature does not match the body")


def parse_feed(body: bytes, objects: Collection[str], *, now: datetime | None = None) -> list[ChangeEvent]:
    """One ChangeEvent per record id of each event about an object in `objects`; 400 for a malformed body,
    401 for a delivery with any event committed more than `MAX_EVENT_AGE` ago or ahead of now."""
    try:
        events = json.loads(body)
    except ValueError as exc:
        raise WebhookRejected(400, f"body is not JSON: {exc}") from exc
    if not isinstance(events, list):
        raise WebhookRejected(400, "body must be a JSON array of change events")
    out: list[ChangeEvent] = []
    for position, event in enumerate(events):
        out.extend(_parse_event(event, position, objects, now or datetime.now(UTC)))
    return out


def _parse_event(event: Any, position: int, objects: Collection[str], now: datetime) -> Sequence[ChangeEvent]:
    header = event.get("ChangeEventHeader") if isinstance(event, dict) else None
    if not isinstance(header, dict):
        raise WebhookRejected(400, f"event {position} has no ChangeEventHeader")
    entity = header.get("entityName")
    record_ids = header.get("recordIds")
    change_type = header.get("changeType")
    commit_ms = header.get("commitTimestamp")
    if not (isinstance(entity, str) and isinstance(record_ids, list) and isinstance(change_type, str)
            and isinstance(commit_ms, int) and not isinstance(commit_ms, bool)
            and all(isinstance(i, str) for i in record_ids)):
        raise WebhookRejected(400, f"event {position} has a malformed ChangeEventHeader")
    try:
        occurred = datetime.fromtimestamp(commit_ms / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        raise WebhookRejected(400, f"event {position}: commitTimestamp is not a time") from None
    check_fresh(occurred, MAX_EVENT_AGE, what=f"event {position} commitTimestamp", now=now)
    if entity not in objects:
        return ()
    # GAP_* and overflow events say "something changed, details lost": re-read the records.
    kind = _KINDS.get(change_type, "updated")
    key = f"{header.get('transactionKey', '')}:{header.get('sequenceNumber', position)}"
    changed = header.get("changedFields")
    extra = {
        "change_type": change_type,
        "change_origin": str(header.get("changeOrigin", "")),
        "changed_fields": ",".join(str(f) for f in changed) if isinstance(changed, list) else "",
    }
    return [
        ChangeEvent(event_id=f"{key}:{record_id}", object=entity, record_id=record_id, kind=kind,
                    occurred_at=occurred, extra=extra)
        for record_id in record_ids
    ]
