"""QuickBooks Online webhooks: names only, signed with the app's verifier token.

Body: `{"eventNotifications": [{"realmId": "...", "dataChangeEvent": {"entities": [{"name": "Customer",
"id": "42", "operation": "Create|Update|Delete|Void|Merge", "lastUpdated": "2026-01-05T10:00:00.000Z"}]}}]}`;
several changes travel in one POST. Header `intuit-signature` = base64 HMAC-SHA256 of the raw body keyed with
the verifier token (developer.intuit.com, webhooks). The receiver then fetches the records.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

SIGNATURE_HEADER = "intuit-signature"


def signature(verifier_token: str, body: bytes) -> str:
    """The `intuit-signature` of a body."""
    return base64.b64encode(hmac.new(verifier_token.encode("utf-8"), body, hashlib.sha256).digest()).decode()


def encode_events(realm: str, events: list[dict[str, Any]]) -> bytes:
    """One delivery: every queued change of the company in one notification."""
    return json.dumps(
        {"eventNotifications": [{"realmId": realm, "dataChangeEvent": {"entities": events}}]},
        separators=(",", ":"),
    ).encode("utf-8")
