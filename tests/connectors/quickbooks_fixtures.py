"""A QuickBooksConnector against a QuickBooks Online simulator on a loopback port (holds no tests)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from syncd.connectors.quickbooks import QuickBooksConnector
from syncd.connectors.quickbooks.settings import QuickBooksConnection
from syncd.connectors.retry import RetryPolicy
from syncd.sandbox.control_plane import Handler
from syncd.sandbox.quickbooks import QuickBooksSimulator
from syncd.settings import RateLimitSettings
from tests.contracts.quickbooks_xsd import problems as xsd_problems

FAST_RETRIES = RetryPolicy(attempts=5, initial_s=0.01, max_s=0.3, jitter_s=0.01)
FAST_BUDGET = RateLimitSettings(window_s=0.2, window_max=400)
API = "/v3/company/{realm}"


def qbo_settings(sim: QuickBooksSimulator, root: str, **overrides: Any) -> QuickBooksConnection:
    """Settings pointing at the simulator, as `syncd sandbox --write-config` writes them."""
    creds = sim.credentials(root)
    values: dict[str, Any] = {
        "system": "quickbooks", "base_url": creds["base_url"], "discovery_url": creds["discovery_url"],
        "client_id": creds["client_id"], "client_secret": creds["client_secret"],
        "refresh_token": creds["refresh_token"], "realm_id": creds["realm_id"],
        "verifier_token": creds["verifier_token"], "timeout_s": 5.0, "rate_limit": FAST_BUDGET,
    }  # fmt: skip
    values.update(overrides)
    return QuickBooksConnection.model_validate(values)


@dataclass
class Qbo:
    """The simulator, its root URL and a started connector."""

    sim: QuickBooksSimulator
    root: str
    connector: QuickBooksConnector

    def calls(self) -> dict[str, int]:
        """API calls served since the last `forget_calls()`, by route (OAuth endpoints left out)."""
        return {k.replace(API, ""): v for k, v in self.sim.stats.requests.items() if API in k}

    def forget_calls(self) -> None:
        """Start counting afresh."""
        self.sim.stats.requests.clear()


@web.middleware
async def conforming(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every API answer the connector gets is checked against the QBO XSD (a failure is a 500 the test sees)."""
    response = await handler(request)
    if request.path.startswith("/v3/") and isinstance(response, web.Response) and response.text:
        problems = xsd_problems(json.loads(response.text))
        if problems:
            return web.Response(status=500, text="answer does not conform to the XSD: " + "; ".join(problems))
    return response


@pytest.fixture
async def qbo() -> AsyncIterator[Qbo]:
    """A fresh simulator (real clock: the connector works out CDC's look-back by it) and a started connector
    with throttles raised so that only what a test sets refuses calls."""
    sim = QuickBooksSimulator()
    sim.apply_limits({"window_s": 1, "window_max": 100_000})
    app = sim.build_app()
    app.middlewares.insert(0, conforming)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    root = f"http://127.0.0.1:{server.port}"
    connector = QuickBooksConnector("qbo", qbo_settings(sim, root), policy=FAST_RETRIES)
    await connector.start()
    try:
        yield Qbo(sim, root, connector)
    finally:
        await connector.close()
        await server.close()
