"""Xero webhooks: batched events for contacts and invoices (none for payments), signed with `x-xero-signature`
= base64 HMAC-SHA256 of the raw body keyed with the app's webhook key, after an "intent to receive" check.

Body: `{"events": [{resourceUrl, resourceId, eventDateUtc, eventType: CREATE|UPDATE, eventCategory:
CONTACT|INVOICE, tenantId, tenantType: ORGANISATION}], "firstEventSequence", "lastEventSequence", "entropy"}`.
Intent to receive: before a target gets events, Xero posts empty payloads, one signed correctly and one not; the
target must answer 200 with no body to the first and 401 to the second, else the subscription stays unverified
and gets nothing. The check's payloads carry sequence numbers 0 (Xero's documentation shows them so; the webhooks
file's schema says at least 1 for event deliveries)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import string
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout

SIGNATURE_HEADER = "x-xero-signature"


def signature(key: str, body: bytes) -> str:
    """The `x-xero-signature` of a body."""
    return base64.b64encode(hmac.new(key.encode("utf-8"), body, hashlib.sha256).digest()).decode()


def entropy(rng: random.Random) -> str:
    """The payload's random `entropy` string."""
    return "".join(rng.choice(string.ascii_uppercase) for _ in range(20))


def encode_events(events: list[dict[str, Any]], rng: random.Random) -> bytes:
    """One delivery of a batch of events (each carries its sequence number under `_seq`)."""
    sequences = [int(e["_seq"]) for e in events]
    body = {
        "events": [{k: v for k, v in e.items() if k != "_seq"} for e in events],
        "firstEventSequence": min(sequences),
        "lastEventSequence": max(sequences),
        "entropy": entropy(rng),
    }
    return json.dumps(body).encode("utf-8")


def intent_body(rng: random.Random) -> bytes:
    """An intent-to-receive payload: no events."""
    return json.dumps(
        {"events": [], "firstEventSequence": 0, "lastEventSequence": 0, "entropy": entropy(rng)}
    ).encode("utf-8")


async def intent_to_receive(url: str, key: str, rng: random.Random, timeout_s: float = 5.0) -> bool:
    """Whether `url` answers 200 to a correctly signed empty payload and 401 to a wrongly signed one."""
    good = intent_body(rng)
    bad = intent_body(rng)
    wrong = signature(key + "x", bad)
    try:
        async with ClientSession(timeout=ClientTimeout(total=timeout_s)) as session:
            async with session.post(url, data=good, headers={"Content-Type": "application/json",
                                                             SIGNATURE_HEADER: signature(key, good)}) as first:
                answered = await first.read()
            async with session.post(url, data=bad, headers={"Content-Type": "application/json",
                                                            SIGNATURE_HEADER: wrong}) as second:
                await second.read()
    except (ClientError, TimeoutError, OSError):
        return False
    # Xero's rules for the receiver: 200 with no body for a good signature, 401 for a bad one.
    return first.status == 200 and not answered and second.status == 401
