"""The connection settings of a QuickBooks Online company."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from syncd.settings import ConnectionBase

PRODUCTION_API = "https://quickbooks.api.intuit.com"
PRODUCTION_DISCOVERY = "https://developer.intuit.com/.well-known/openid_configuration/"


class QuickBooksConnection(ConnectionBase):
    """A QuickBooks Online company (realm) reached through an Intuit developer app."""

    system: Literal["quickbooks"]
    # The API host; python-quickbooks hard-codes production and sandbox hosts, the connector points it here
    # (Intuit's development companies: "https://sandbox-quickbooks.api.intuit.com").
    base_url: str = PRODUCTION_API
    # Intuit's OpenID discovery document, which names the token, consent and revoke endpoints; intuit-oauth's
    # AuthClient reads it first (development keys: ".../openid_sandbox_configuration/").
    discovery_url: str = PRODUCTION_DISCOVERY
    realm_id: str = Field(min_length=1)  # the company id
    # The app's webhook verifier token (Developer portal → Webhooks): the key of `intuit-signature`.
    verifier_token: SecretStr | None = None
    minor_version: int = Field(default=75, ge=75)
    scopes: list[str] = Field(default_factory=lambda: ["com.intuit.quickbooks.accounting"])
