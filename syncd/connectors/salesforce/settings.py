"""Salesforce's connection settings: the `[connections.<name>]` table of a `system = "salesforce"` connection."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from syncd.settings import ConnectionBase


class SalesforceConnection(ConnectionBase):
    """A Salesforce org reached through a connected app."""

    system: Literal["salesforce"]
    base_url: str = "https://login.salesforce.com"
    instance_url: str | None = None
    ca_cert: Path | None = None
    api_version: str = "59.0"
    scopes: list[str] = Field(default_factory=lambda: ["api", "refresh_token"])
