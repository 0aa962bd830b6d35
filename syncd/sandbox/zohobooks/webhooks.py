"""Zoho Books webhooks: one event per POST, the module's "default payload", signed with HMAC-SHA256.

Body (JSON), e.g. for an invoice change::

    {"event_id": "...", "event_type": "invoice_updated", "event_time": "2025-01-06T10:00:00+0000",
     "organization_id": "...", "module": "invoice", "invoice": {... the invoice as GET returns it ...}}

`event_type` is `<module>_<created|updated|deleted>` with module contact, invoice or customerpayment; a deleted
record's payload is its last state (a payment's lists the invoices it was applied to). A payment's change is
followed by `invoice_updated` for each invoice whose balance it changed, unless `PaymentRoutes.invoice_webhooks`
is off: whether live Zoho fires an invoice's workflow rule then is not verified. Header
`X-Zoho-Webhook-Signature` = hex HMAC-SHA256 with the webhook secret as key over the target URL's query
parameters sorted by key and concatenated as key+value, then the raw body. That is the scheme Zoho Billing
documents; the contracts README notes that Books using the same one is not confirmed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from syncd.sandbox.zohobooks.money import dumps

SIGNATURE_HEADER = "X-Zoho-Webhook-Signature"


def signature(secret: str, url: str, body: bytes) -> str:
    """The signature of a delivery of `body` to `url`."""
    pairs = sorted(parse_qsl(urlsplit(url).query, keep_blank_values=True), key=lambda kv: kv[0])
    message = "".join(key + value for key, value in pairs).encode("utf-8") + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def encode_events(events: list[dict[str, Any]]) -> bytes:
    """The body of one delivery: the single event (dispatched with max_batch=1)."""
    if len(events) != 1:
        # Zoho sends one record per request; a batch here would be a wiring error.
        raise ValueError(f"Zoho webhooks carry one event per request, got {len(events)}")
    return dumps(events[0]).encode("utf-8")


def decode_event(body: bytes) -> dict[str, Any]:
    """Parse a delivered body (for tests and the demo receiver)."""
    value = json.loads(body)
    if not isinstance(value, dict):
        raise ValueError("webhook body is not a JSON object")
    return value
