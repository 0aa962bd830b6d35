"""Xero webhooks: `x-xero-signature` = base64 HMAC-SHA256 of the raw body keyed with the webhook key; a body of
`events` (CONTACT / INVOICE, CREATE / UPDATE) with sequence numbers; empty `events` for intent-to-receive."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from syncd.connectors.base import ChangeEvent, ChangeKind, WebhookRejected, WebhookRequest

SIGNATURE_HEADER = "x-xero-signature"
CATEGORIES = {"CONTACT": "Contacts", "INVOICE": "Invoices"}
KINDS: dict[str, ChangeKind] = {"CREATE": "created", "UPDATE": "updated"}


def signature(key: str, body: bytes) -> str:
    """The signature Xero sends with `body`."""
    return base64.b64encode(hmac.new(key.encode("utf-8"), body, hashlib.sha256).digest()).decode()


def verify(request: WebhookRequest, key: str | None) -> None:
    """401 unless the delivery carries the signature of its raw body."""
    if not key:
        raise WebhookRejected(401, "no webhook_key is configured for this Xero connection")
    given = next((v for k, v in request.headers.items() if k.lower() == SIGNATURE_HEADER), None)
    if not given:
        raise WebhookRejected(401, f"missing {SIGNATURE_HEADER} header")
    if not hmac.compare_digest(given.strip(), signature(key, request.body)):
        raise WebhookRejected(401, "webhook signature does not match")


def _occurred(raw: Any) -> datetime:
    if not isinstance(raw, str):
        raise WebhookRejected(400, "event has no eventDateUtc")
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise WebhookRejected(400, f"eventDateUtc is not a timestamp: {raw!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse(body: bytes, tenant_id: str | None) -> Sequence[ChangeEvent]:
    """The change events of a verified delivery (other tenants' events and other categories are left out)."""
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise WebhookRejected(400, "webhook body is not JSON") from exc
    if not isinstance(payload, Mapping) or not isinstance(payload.get("events"), list):
        raise WebhookRejected(400, "webhook body has no events list")
    found = []
    for event in payload["events"]:
        if not isinstance(event, Mapping):
            raise WebhookRejected(400, "a webhook event is not an object")
        obj = CATEGORIES.get(str(event.get("eventCategory")))
        kind = KINDS.get(str(event.get("eventType")))
        if obj is None or kind is None:
            continue
        if tenant_id is not None and str(event.get("tenantId", "")).lower() != tenant_id.lower():
            continue
        record_id = str(event.get("resourceId") or "")
        if not record_id:
            raise WebhookRejected(400, "a webhook event has no resourceId")
        occurred = _occurred(event.get("eventDateUtc"))
        # Xero may deliver an event again; the same resource, kind and time make the same id.
        event_id = hashlib.sha256(f"{obj}|{record_id}|{kind}|{event.get('eventDateUtc')}".encode()).hexdigest()
        found.append(ChangeEvent(event_id=event_id, object=obj, record_id=record_id, kind=kind, occurred_at=occurred))
    return found
