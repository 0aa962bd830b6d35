"""A Xero connection's settings: the OAuth app, the organisation (tenant) and the webhook key."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from syncd.settings import ConnectionBase


class XeroConnection(ConnectionBase):
    """A Xero organisation reached through an OAuth 2.0 app (code flow, offline_access)."""

    system: Literal["xero"]
    base_url: str = "https://api.xero.com/api.xro/2.0"
    identity_url: str = "https://identity.xero.com"
    authorize_url: str = "https://login.xero.com/identity/connect/authorize"
    # The organisation (`xero-tenant-id`); when unset, the one organisation `GET /connections` lists.
    tenant_id: str | None = None
    webhook_key: SecretStr | None = None
    # The sales account invoice lines post to when the mapping names none (Xero approves no invoice whose lines
    # lack one; 200 is "Sales" in Xero's default chart of accounts).
    sales_account_code: str | None = "200"
    scopes: list[str] = Field(
        default_factory=lambda: ["offline_access", "accounting.transactions", "accounting.contacts",
                                 "accounting.settings.read"]
    )
    # Xero allows 5 calls in progress at once per organisation.
    max_concurrency: int = Field(default=5, gt=0, le=5)
