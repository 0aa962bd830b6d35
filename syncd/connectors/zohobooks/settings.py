"""Zoho Books' connection settings: the `[connections.<name>]` table of a `system = "zohobooks"` connection."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from syncd.settings import ConnectionBase


class ZohoBooksConnection(ConnectionBase):
    """A Zoho Books organisation reached through a Zoho API console client."""

    system: Literal["zohobooks"]
    base_url: str = "https://www.zohoapis.com/books/v3"
    accounts_url: str = "https://accounts.zoho.com"
    organization_id: str
    webhook_secret: SecretStr | None = None
    scopes: list[str] = Field(default_factory=lambda: ["ZohoBooks.fullaccess.all"])
