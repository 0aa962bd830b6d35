"""QuickBooks Online webhooks: verify `intuit-signature` and turn a notification into change events.

Signature: base64 HMAC-SHA256 of the raw body keyed with the app's verifier token (developer.intuit.com,
webhooks). Body: `{"eventNotifications": [{"realmId", "dataChangeEvent": {"entities": [{"name", "id",
"operation", "lastUpdated"}]}}]}`: names and ids only, so the engine fetches the records (one query per entity
for a whole notification). The notification has no timestamp of its own and Intuit retries it: a replay only
makes the records be read again, which is harmless.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Sequence
from datetime import UTC, datetime

from syncd.connectors.base import ChangeEvent, ChangeKind, WebhookRejected, WebhookRequest

SIGNATURE_HEADER = "intuit-signature"
ENTITIES = ("Customer", "Invoice", "Payment", "Item")
KINDS: dict[str, ChangeKind] = {"create": "created", "update": "updated", "delete": "deleted", "void": "updated",
                                "merge": "merged", "emailed": "updated"}  # fmt: skip


def verify(request: WebhookRequest, verifier_token: str | None) -> None:
    """401 unless `intuit-signature` is the body's HMAC under the verifier token."""
    if not verifier_token:
        raise WebhookRejected(401, "no verifier token is configured for this connection")
    sent = next((v for k, v in request.headers.items() if k.lower() == SIGNATURE_HEADER), "")
    try:
        given = base64.b64decode(sent, validate=True)
    except (binascii.Error, ValueError):
        raise WebhookRejected(401, "intuit-signature is not base64") from None
    wanted = hmac.new(verifier_token.encode("utf-8"), request.body, hashlib.sha256).digest()
    if not given or not hmac.compare_digest(given, wanted):
        raise WebhookRejected(401, "intuit-signature does not match the body")


def parse(body: bytes, realm_id: str) -> Sequence[ChangeEvent]:
    """One event per entity change of this company (other companies' notifications are ignored)."""
    try:
        payload = json.loads(body)
        notifications = payload["eventNotifications"]
        if not isinstance(notifications, list):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise WebhookRejected(400, "not a QuickBooks eventNotifications body") from None
    events: list[ChangeEvent] = []
    for notification in notifications:
        if not isinstance(notification, dict) or str(notification.get("realmId")) != realm_id:
            continue
        change = notification.get("dataChangeEvent")
        for entity in change.get("entities", []) if isinstance(change, dict) else []:
            if not isinstance(entity, dict) or entity.get("name") not in ENTITIES or not entity.get("id"):
                continue
            operation = str(entity.get("operation", "Update"))
            stamp = str(entity.get("lastUpdated", ""))
            try:
                occurred = datetime.fromisoformat(stamp) if stamp else datetime.now(UTC)
            except ValueError:
                raise WebhookRejected(400, f"lastUpdated is not a time: {stamp!r}") from None
            if occurred.tzinfo is None:
                occurred = occurred.replace(tzinfo=UTC)  # Intuit sends UTC ("...Z") or an offset
            events.append(ChangeEvent(
                event_id=f"{realm_id}:{entity['name']}:{entity['id']}:{operation}:{stamp}",
                object=str(entity["name"]), record_id=str(entity["id"]),
                kind=KINDS.get(operation.lower(), "updated"), occurred_at=occurred,
            ))  # fmt: skip
    return events
