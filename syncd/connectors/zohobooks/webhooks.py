"""Zoho Books webhooks: verify `X-Zoho-Webhook-Signature` and turn a delivery into change events.

Signature (the scheme Zoho Billing documents and the sandbox uses; the contracts README notes Books is not
confirmed to match): hex HMAC-SHA256 keyed with the webhook secret over the target URL's query parameters
sorted by key and concatenated as key+value, followed by the raw body. The body carries one event:
`{"event_id", "event_type": "<module>_<created|updated|deleted>", "event_time", "organization_id", "module",
"<module>": {...the record...}}`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

from syncd.connectors.base import ChangeEvent, ChangeKind, WebhookRejected, WebhookRequest
from syncd.connectors.zohobooks.values import parse_timestamp

SIGNATURE_HEADER = "X-Zoho-Webhook-Signature"
# module in the payload -> (object this connector serves, the record's id key)
WEBHOOK_MODULES: dict[str, tuple[str, str]] = {
    "contact": ("contacts", "contact_id"),
    "invoice": ("invoices", "invoice_id"),
    "customerpayment": ("customerpayments", "payment_id"),
}
KINDS: dict[str, ChangeKind] = {"created": "created", "updated": "updated", "deleted": "deleted"}
# A signed delivery older than this is refused: the sender's retries stay well inside it, replays do not.
MAX_AGE = timedelta(hours=1)


def signature(secret: str, url: str, body: bytes, query: Mapping[str, str] | None = None) -> str:
    """The expected signature of `body` delivered to `url`."""
    pairs = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    if not pairs and query:
        pairs = list(query.items())
    message = "".join(k + v for k, v in sorted(pairs, key=lambda kv: kv[0])).encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


def verify(request: WebhookRequest, secret: str | None, *, now: datetime | None = None) -> None:
    """Refuse (401) a delivery without a valid signature or with a stale event time."""
    if not secret:
        raise WebhookRejected(401, "no webhook_secret is configured for this Zoho Books connection")
    given = _header(request.headers, SIGNATURE_HEADER)
    if not given:
        raise WebhookRejected(401, f"missing {SIGNATURE_HEADER} header")
    expected = signature(secret, request.url, request.body, request.query)
    if not hmac.compare_digest(given.strip().lower(), expected):
        raise WebhookRejected(401, "webhook signature does not match")
    event = _event(request.body)
    occurred = _occurred(event)
    if (now or datetime.now(UTC)) - occurred > MAX_AGE:
        raise WebhookRejected(401, f"webhook event is stale (event_time {event.get('event_time')})")


def _event(body: bytes) -> dict[str, Any]:
    try:
        event = json.loads(body)
    except ValueError as exc:
        raise WebhookRejected(400, "webhook body is not JSON") from exc
    if not isinstance(event, dict):
        raise WebhookRejected(400, "webhook body is not a JSON object")
    return cast(dict[str, Any], event)


def _occurred(event: Mapping[str, Any]) -> datetime:
    raw = event.get("event_time")
    if not isinstance(raw, str):
        raise WebhookRejected(400, "webhook event has no event_time")
    try:
        return parse_timestamp(raw)
    except ValueError as exc:
        raise WebhookRejected(400, f"webhook event_time is not a Zoho timestamp: {raw!r}") from exc


def parse(body: bytes, organization_id: str) -> Sequence[ChangeEvent]:
    """The change events of a verified delivery; 400 for a body that is not a Books event of this org."""
    event = _event(body)
    org = str(event.get("organization_id", organization_id))
    if org != organization_id:
        raise WebhookRejected(
            400, f"webhook is for organisation {org}, this connection serves {organization_id}"
        )
    module = str(event.get("module", ""))
    event_type = str(event.get("event_type", ""))
    if module not in WEBHOOK_MODULES:
        raise WebhookRejected(400, f"unknown webhook module {module!r}")
    action = event_type.removeprefix(module + "_")
    if action not in KINDS:
        raise WebhookRejected(400, f"unknown webhook event_type {event_type!r}")
    obj, id_key = WEBHOOK_MODULES[module]
    record = event.get(module)
    if not isinstance(record, dict) or not record.get(id_key):
        raise WebhookRejected(400, f"webhook event has no {module}.{id_key}")
    record_id = str(record[id_key])
    occurred = _occurred(event)
    # Zoho may send one event twice; a stable id lets the inbox drop the copy.
    event_id = str(event.get("event_id") or hashlib.sha256(body).hexdigest())
    return [
        ChangeEvent(
            event_id=event_id,
            object=obj,
            record_id=record_id,
            kind=KINDS[action],
            occurred_at=occurred,
            extra={"event_type": event_type},
        )
    ]
