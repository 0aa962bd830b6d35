"""Web fixtures: a migrated SQLite store in a temporary folder, and a test-only signed webhook source."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from syncd.connectors.base import ChangeEvent, WebhookRejected, WebhookRequest
from syncd.store import Database, upgrade_database

SECRET = "test-secret"


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    """An open store at the current schema, on a real SQLite file."""
    db = await Database.open(f"sqlite:///{tmp_path / 'syncd.db'}")
    try:
        await upgrade_database(db)
        yield db
    finally:
        await db.close()


def sign(method: str, url: str, body: bytes, secret: str = SECRET) -> str:
    """The test source's signature: HMAC-SHA256 over method, URL and body."""
    return hmac.new(secret.encode(), method.encode() + url.encode() + body, hashlib.sha256).hexdigest()


class SignedSource:
    """A webhook source for tests: signed like HubSpot v2 (method, URL, body), a body of `[{"id", "record"}]`.

    This is the receiver's boundary contract (verify, then parse), so implementing it here is not a mock.
    """

    def __init__(self, secret: str = SECRET) -> None:
        self.secret = secret
        self.urls_seen: list[str] = []

    def verify_webhook(self, request: WebhookRequest) -> None:
        """401 unless `X-Test-Signature` signs the exact method, URL and body."""
        self.urls_seen.append(request.url)
        given = request.headers.get("x-test-signature", "")
        if not hmac.compare_digest(given, sign(request.method, request.url, request.body, self.secret)):
            raise WebhookRejected(401, "bad signature")

    def parse_webhook(self, request: WebhookRequest) -> Sequence[ChangeEvent]:
        """One `updated` contact event per array item; 400 for anything else."""
        try:
            items = json.loads(request.body)
            return [
                ChangeEvent(str(item["id"]), "contacts", str(item["record"]), "updated", datetime.now(UTC))
                for item in items
            ]
        except (ValueError, TypeError, KeyError):
            raise WebhookRejected(400, "malformed body") from None
