"""HubSpot's error bodies (the `Error` and `StandardError` shapes) and the exception that carries them."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class HubSpotError(Exception):
    """An API error answered in HubSpot's `Error` shape; raised anywhere below a handler."""

    status: int
    message: str
    category: str
    sub_category: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    context: dict[str, list[str]] | None = None

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        """The JSON body HubSpot sends for this error."""
        out: dict[str, Any] = {
            "status": "error",
            "message": self.message,
            "correlationId": str(uuid.uuid4()),
            "category": self.category,
        }
        if self.sub_category is not None:
            out["subCategory"] = self.sub_category
        if self.errors:
            out["errors"] = self.errors
        if self.context is not None:
            out["context"] = self.context
        return out

    def response(self) -> web.Response:
        """The aiohttp response for this error."""
        return json_response(self.body(), status=self.status)

    def response_with_status(self, status_field: str) -> web.Response:
        """The response with `status` set to an error code, as HubSpot's OAuth endpoints send it."""
        return json_response(self.body() | {"status": status_field}, status=self.status)


def json_response(body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response with HubSpot's content type (charset included, as the real API sends it)."""
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(),
        status=status,
        headers=headers,
        content_type="application/json",
        charset="utf-8",
    )


def not_found(message: str = "resource not found") -> HubSpotError:
    """404 OBJECT_NOT_FOUND, as for a missing record or an unknown path object."""
    return HubSpotError(404, message, "OBJECT_NOT_FOUND")


def validation_error(message: str, errors: list[dict[str, Any]] | None = None) -> HubSpotError:
    """400 VALIDATION_ERROR with optional per-field details."""
    return HubSpotError(400, message, "VALIDATION_ERROR", errors=errors or [])


def standard_error(category: str, message: str, context: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """One `StandardError` entry of a 207 batch response (every required key present)."""
    return {
        "status": "error",
        "category": category,
        "message": message,
        "context": context or {},
        "errors": [],
        "links": {},
        "id": str(uuid.uuid4()),
    }
