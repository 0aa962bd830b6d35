"""A HubSpot simulator on loopback whose every API response is recorded and checked against HubSpot's specs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from syncd.sandbox.hubspot import HubSpotSimulator
from tests.contracts.hubspot_rule import fix_hubspot_spec
from tests.contracts.openapi import Exchange, assert_valid_response, load_spec

HERE = Path(__file__).parent
_OBJECT_SPECS = {
    "contacts": "CRM_Contacts-v3_contacts.json",
    "companies": "CRM_Companies-v3_companies.json",
    "line_items": "CRM_Line_Items-v3_lineItems.json",
    "0-3": "CRM_Deals-v3_deals.json",
}


def spec_file_for(path: str) -> str | None:
    """The OpenAPI file that documents a HubSpot path; None for paths no spec covers (control plane)."""
    if path.startswith("/oauth/v1/"):
        return "Auth_Oauth-v1_oauth.json"
    if path.startswith("/oauth/v3/"):
        return "Auth_Oauth-v3_oauth.json"
    if path.startswith("/crm/v3/pipelines/"):
        return "CRM_Pipelines-v3_pipelines.json"
    if path.startswith("/crm/v4/"):
        return "CRM_Associations-v4_associations.json"
    if path.startswith("/crm/v3/properties/"):
        return "CRM_Properties-v3_properties.json"
    if path.startswith("/webhooks/v3/"):
        return "Webhooks_Webhooks-v3_webhooks.json"
    if path.startswith("/crm/v3/objects/"):
        object_type = path.split("/")[4]
        # Deals (by name), and object types whose own file lacks the path, use the generic objects spec.
        specific = _OBJECT_SPECS.get(object_type)
        if specific is not None:
            return specific
        return "CRM_Objects-v3_objects.json"
    return None


class ContractHarness:
    """The simulator behind a TestServer; `check()` validates every recorded response, then forgets them."""

    def __init__(self, sim: HubSpotSimulator) -> None:
        self.sim = sim
        self.exchanges: list[Exchange] = []
        app = sim.build_app()
        app.middlewares.insert(0, self._record)
        self.server = TestServer(app, host="127.0.0.1", port=0)

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:PORT"""
        return str(self.server.make_url("")).rstrip("/")

    @web.middleware
    async def _record(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # an HTTPException is the response (e.g. the 302 of authorize)
            self._keep(request, exc)
            raise
        self._keep(request, response)
        return response

    def _keep(self, request: web.Request, response: web.StreamResponse) -> None:
        body = getattr(response, "body", b"")
        self.exchanges.append(Exchange(
            request.method, request.path, request.query_string, response.status, dict(response.headers),
            body if isinstance(body, bytes) else b"",
        ))

    def check(self) -> int:
        """Validate every response recorded since the last check against HubSpot's OpenAPI files."""
        checked = 0
        for exchange in self.exchanges:
            name = spec_file_for(exchange.path)
            if name is None:
                continue
            assert_valid_response(
                load_spec(HERE / name, transform=fix_hubspot_spec), method=exchange.method, path=exchange.path,
                status=exchange.status, headers=exchange.headers, body=exchange.body, query=exchange.query,
            )
            checked += 1
        self.exchanges.clear()
        return checked

    def headers(self) -> dict[str, str]:
        """A live bearer token header, minted without the OAuth call."""
        return {"Authorization": f"Bearer {self.sim.tokens.issue_access_token().access_token}"}


def all_records(sim: HubSpotSimulator, obj: str) -> list[dict[str, Any]]:
    """The control plane's view of an object's records (archived included)."""
    return sim.records(obj) or []
