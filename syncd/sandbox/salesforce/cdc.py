"""The sandbox's stand-in for Salesforce Change Data Capture: a signed JSON feed POSTed to webhook targets.

Real CDC is delivered over CometD or the Pub/Sub gRPC API, and Salesforce has no JSON webhooks. The sandbox
instead POSTs each batch of change events as a JSON array to every target URL, each event shaped like a CDC
event: ``{"ChangeEventHeader": {entityName, recordIds, changeType, changedFields, nulledFields, diffFields,
commitTimestamp, commitNumber, changeOrigin, transactionKey, sequenceNumber, commitUser}, <changed fields>}``.
The body is signed with HMAC-SHA256 keyed with the connected app's client secret, hex-encoded in the
``X-Sandbox-Signature`` header. ``changeOrigin`` carries ``client=<name>`` from the writer's
``Sforce-Call-Options`` header, which is how a sync daemon recognises its own writes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import uuid
from collections.abc import Callable
from typing import Any

from syncd.sandbox.faults import Faults
from syncd.sandbox.salesforce.records import Change
from syncd.sandbox.salesforce.schema import INTEGRATION_USER_ID
from syncd.sandbox.stats import Stats
from syncd.sandbox.webhook_dispatcher import WebhookDispatcher

SIGNATURE_HEADER = "X-Sandbox-Signature"
_NOT_IN_BODY = frozenset({"Id", "IsDeleted", "SystemModstamp"})


def sign_body(secret: str, body: bytes) -> str:
    """The hex HMAC-SHA256 of a feed body, as sent in X-Sandbox-Signature."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _encode(events: list[dict[str, Any]]) -> bytes:
    return json.dumps(events, separators=(",", ":")).encode()


class ChangeFeed:
    """Turns committed store changes into CDC-shaped events and hands them to a WebhookDispatcher."""

    def __init__(
        self,
        *,
        stats: Stats,
        faults: Faults,
        secret: Callable[[], str],
        clock: Callable[[], float],
        rng: random.Random,
    ) -> None:
        self.secret = secret
        self.clock = clock
        self.rng = rng
        self.commit_number = 0
        self.dispatcher = WebhookDispatcher(
            stats=stats, faults=faults, encode=_encode, sign=self._sign, rng=rng, max_batch=100
        )

    def on_changes(self, changes: list[Change], origin: str) -> None:
        """Emit one event per change of a committed transaction (a store listener)."""
        if not self.dispatcher.targets:
            return
        self.commit_number += 1
        transaction_key = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        commit_ms = int(self.clock() * 1000)
        for sequence, change in enumerate(changes, start=1):
            self.dispatcher.emit(self._event(change, origin, transaction_key, sequence, commit_ms))

    def _event(
        self, change: Change, origin: str, transaction_key: str, sequence: int, commit_ms: int
    ) -> dict[str, Any]:
        fields = {k: v for k, v in change.fields.items() if k not in _NOT_IN_BODY}
        header = {
            "entityName": change.entity,
            "recordIds": [change.record_id],
            "changeType": change.change_type,
            "changeOrigin": origin,
            "transactionKey": transaction_key,
            "sequenceNumber": sequence,
            "commitTimestamp": commit_ms,
            "commitNumber": self.commit_number,
            "commitUser": INTEGRATION_USER_ID,
            "changedFields": sorted(fields) if change.change_type == "UPDATE" else [],
            "nulledFields": sorted(k for k, v in fields.items() if v is None) if change.change_type == "UPDATE" else [],
            "diffFields": [],
        }
        # As in CDC, fields set to null appear only in nulledFields.
        body = {k: v for k, v in fields.items() if v is not None}
        return {"ChangeEventHeader": header, **body}

    def _sign(self, method: str, url: str, body: bytes) -> dict[str, str]:
        return {SIGNATURE_HEADER: sign_body(self.secret(), body)}
