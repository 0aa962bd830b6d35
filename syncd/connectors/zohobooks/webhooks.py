"""Zoho Books webhooks: verify `X-Zoho-Webhook-Signature` and turn a delivery into change events.

Signature (the scheme Zoho Billing documents and the sandbox uses; the contracts README notes Books is not
confirmed to match): hex HMAC-SHA256 keyed with the webhook secret over the target URL's query parameters
sorted by key and concatenated as key+value, followed by the raw body. The body carries one event:
`{"event_id", "event_type": "<module>_<created|updated|deleted>", "event_time", "organization_id", "module",
"<module>": {...the record...}}`.

A customer payment changes more than itself: each invoice it is (or was) applied to has a new balance, and each
of those applications is an `invoicepayments` record. Whether Zoho also fires the invoices' own webhooks then
is not verified (an invoice's workflow rule reacting to a payment is reported both ways), so a payment's event
announces its applications and their invoices too. An update or deletion lists only what the payment is applied
to now (a deletion's default payload, its last state, may or may not list them), so the invoices a payment was
applied to before are remembered from its earlier events (`AppliedInvoices`). The events it derives carry the
payment's kind (an invoice's is `updated`): the engine reads every record an event names again, and one no
longer found is a deletion whatever its event said.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

from syncd.connectors.base import ChangeEvent, ChangeKind, WebhookRejected, WebhookRequest
from syncd.connectors.freshness import check_fresh
from syncd.connectors.zohobooks.applications import APPLICATIONS, application_id, applied_lines
from syncd.connectors.zohobooks.values import INVOICES, parse_timestamp

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
PAYMENT_MODULE = "customerpayment"
# Payments whose applied invoices are remembered; the least recently announced are forgotten first.
REMEMBERED_PAYMENTS = 10_000


@dataclass(frozen=True)
class _Remembered:
    """What the last event that changed a payment's memory said, and what it was answered."""

    event_id: str
    occurred: datetime
    invoices: tuple[str, ...]  # () after a deletion
    earlier: tuple[str, ...]  # the invoices remembered before that event


class AppliedInvoices:
    """The invoices each payment was last announced as applied to, from the webhooks parsed in this process.

    Only a hint that makes the webhook path quicker: an application found gone, or an invoice whose balance
    went back, is found by polling too (after a restart this starts empty, costing latency, never data).
    """

    def __init__(self, capacity: int = REMEMBERED_PAYMENTS) -> None:
        self._capacity = capacity
        self._seen: OrderedDict[str, _Remembered] = OrderedDict()

    def exchange(
        self,
        payment_id: str,
        event_id: str,
        occurred: datetime,
        invoices: Sequence[str] | None,
        *,
        deleted: bool,
    ) -> tuple[str, ...]:
        """The invoices remembered for the payment before this event; then remember what the event says
        (a deletion forgets the payment's invoices; an event older than the remembered one changes nothing).

        The same event again gets the same answer: parsing happens before the inbox stores the events, so
        a delivery the store refused comes back, and its re-parse must still name the invoices it left."""
        before = self._seen.get(payment_id)
        if before is not None and before.event_id == event_id:
            return before.earlier
        earlier = before.invoices if before is not None else ()
        if deleted:
            self._remember(payment_id, _Remembered(event_id, occurred, (), earlier))
        elif invoices is not None and (before is None or occurred >= before.occurred):
            self._remember(payment_id, _Remembered(event_id, occurred, tuple(invoices), earlier))
        return earlier

    def _remember(self, payment_id: str, remembered: _Remembered) -> None:
        self._seen[payment_id] = remembered
        self._seen.move_to_end(payment_id)
        while len(self._seen) > self._capacity:
            self._seen.popitem(last=False)


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
    """Refuse (401) a delivery without a valid signature, or whose event time is stale or ahead of now."""
    if not secret:
        raise WebhookRejected(401, "no webhook_secret is configured for this Zoho Books connection")
    given = _header(request.headers, SIGNATURE_HEADER)
    if not given:
        raise WebhookRejected(401, f"missing {SIGNATURE_HEADER} header")
    expected = signature(secret, request.url, request.body, request.query)
    if not hmac.compare_digest(given.strip().lower(), expected):
        raise WebhookRejected(401, "webhook signature does not match")
    check_fresh(_occurred(_event(request.body)), MAX_AGE, what="event_time", now=now)


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


def parse(
    body: bytes, organization_id: str, applied: AppliedInvoices | None = None
) -> Sequence[ChangeEvent]:
    """The change events of a verified delivery; 400 for a body that is not a Books event of this org.

    A payment's event also yields one `invoicepayments` event per application it has or had, and one
    `invoices` event per invoice it is or was applied to (`applied` remembers what it had)."""
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
    change = ChangeEvent(
        event_id=event_id,
        object=obj,
        record_id=record_id,
        kind=KINDS[action],
        occurred_at=occurred,
        extra={"event_type": event_type},
    )
    if module != PAYMENT_MODULE:
        return [change]
    memory = applied if applied is not None else AppliedInvoices()
    return [change, *_payment_consequences(change, record, memory)]


def _listed_invoices(payment: Mapping[str, Any]) -> list[str] | None:
    """The invoices a payment payload lists it as applied to; None when the payload does not say."""
    lines = payment.get("invoices")
    return list(applied_lines(lines)) if isinstance(lines, list) else None


def _payment_consequences(
    change: ChangeEvent, payment: Mapping[str, Any], applied: AppliedInvoices
) -> list[ChangeEvent]:
    """The application and invoice events a payment's event implies, each with an id derived from the
    delivery's, so a redelivered event is still dropped as a copy."""
    listed = _listed_invoices(payment)
    deleted = change.kind == "deleted"
    earlier = applied.exchange(change.record_id, change.event_id, change.occurred_at, listed, deleted=deleted)
    now = listed or []
    left = [i for i in earlier if i not in now]
    extra = {**change.extra, "payment_id": change.record_id}

    def derived(obj: str, record_id: str, kind: ChangeKind) -> ChangeEvent:
        return ChangeEvent(
            event_id=f"{change.event_id}:{obj}:{record_id}",
            object=obj,
            record_id=record_id,
            kind=kind,
            occurred_at=change.occurred_at,
            extra=extra,
        )

    # Applications it has or had carry the payment's kind; whether one is gone shows when it is read again.
    events = [derived(APPLICATIONS, application_id(change.record_id, i), change.kind) for i in (*now, *left)]
    # Every invoice the payment was or is applied to has a new balance, payment total and maybe status.
    events += [derived(INVOICES.object, i, "updated") for i in (*now, *left)]
    return events
