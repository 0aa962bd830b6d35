"""A Xero simulator on loopback whose every Accounting API response is recorded and checked against Xero's spec."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from xero_python.accounting import AccountingApi
from xero_python.api_client.deserializer import deserialize
from xero_python.identity import IdentityApi

from syncd.sandbox.xero import XeroSimulator
from syncd.sandbox.xero.app import API_PREFIX
from syncd.sandbox.xero.books import KINDS
from tests.contracts.openapi import Exchange, assert_valid_response, load_spec
from tests.contracts.xero_rule import fix_xero_spec

HERE = Path(__file__).parent
SPEC = HERE / "xero_accounting.yaml"
# Statuses the spec documents for the operations syncd uses; the others (401/403 from the identity layer, 404 in
# plain text, 429 with an empty body) are outside the file and checked by the simulator's own tests.
DOCUMENTED = (200, 400)


class ContractHarness:
    """The simulator behind a TestServer; `check()` validates every recorded API response, then forgets them."""

    def __init__(self, sim: XeroSimulator) -> None:
        self.sim = sim
        self.exchanges: list[Exchange] = []
        # Writes whose answer is lost after the simulator applied them (the connection drops): a network fault
        # the simulator's own faults (which drop before applying) do not make.
        self.lose_answers = 0
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
        response = await handler(request)
        if self.lose_answers and request.method in ("PUT", "POST") and request.path.startswith(API_PREFIX):
            self.lose_answers -= 1
            if request.transport is not None:
                request.transport.close()
            raise ConnectionResetError("answer lost after the write was applied")
        body = getattr(response, "body", b"")
        self.exchanges.append(Exchange(
            request.method, request.path, request.query_string, response.status, dict(response.headers),
            body if isinstance(body, bytes) else b"",
        ))  # fmt: skip
        return response

    def check(self) -> int:
        """Validate every Accounting API response recorded since the last check against the spec, and parse every
        successful one with xero-python's own deserializer (the SDK round-trips it); returns how many were."""
        checked = 0
        for exchange in self.exchanges:
            sdk_parse(exchange)
            if not exchange.path.startswith(API_PREFIX + "/") or exchange.status not in DOCUMENTED:
                continue
            assert_valid_response(
                load_spec(SPEC, transform=fix_xero_spec), method=exchange.method, path=exchange.path,
                status=exchange.status, headers=exchange.headers, body=exchange.body, query=exchange.query,
            )  # fmt: skip
            checked += 1
        self.exchanges.clear()
        return checked

    def routes_seen(self) -> set[str]:
        """`METHOD path-template` of every recorded exchange (ids replaced by `{id}`)."""
        seen = set()
        for exchange in self.exchanges:
            parts = exchange.path.split("/")
            template = "/".join("{id}" if len(p) == 36 and p.count("-") == 4 else p for p in parts)
            seen.add(f"{exchange.method} {template}")
        return seen


# Lists other than the four collections, by path segment: their SDK model (and list key).
OTHER_LISTS = {"Organisation": "Organisations", "Accounts": "Accounts"}


def sdk_parse(exchange: Exchange) -> None:
    """Parse a successful answer into xero-python's models (what an SDK user gets), checking ids and stamps."""
    if exchange.status != 200 or not exchange.body:
        return
    data = json.loads(exchange.body, parse_float=Decimal)
    if exchange.path.lower() == "/connections":
        parsed = deserialize("list[Connection]", data, IdentityApi().get_model_finder())
        assert [str(c.tenant_id) for c in parsed] == [d["tenantId"] for d in data]
        assert all(c.updated_date_utc is not None for c in parsed)
        return
    if not exchange.path.startswith(API_PREFIX + "/"):
        return
    collection = exchange.path.removeprefix(API_PREFIX + "/").split("/")[0]
    if exchange.path.endswith("/History"):
        history = deserialize("HistoryRecords", data, AccountingApi().get_model_finder()).history_records
        assert len(history) == len(data["HistoryRecords"]) and all(h.date_utc.tzinfo for h in history)
        return
    if collection in OTHER_LISTS:
        listed = deserialize(OTHER_LISTS[collection], data, AccountingApi().get_model_finder())
        assert len(getattr(listed, OTHER_LISTS[collection].lower())) == len(data[OTHER_LISTS[collection]])
        return
    if collection not in KINDS:
        return
    kind = KINDS[collection]
    parsed = deserialize(collection, data, AccountingApi().get_model_finder())
    rows = getattr(parsed, collection.lower())
    assert len(rows) == len(data[collection])
    for row, raw in zip(rows, data[collection], strict=True):
        if kind.id_key in raw:
            assert str(getattr(row, _snake(kind.id_key))) == raw[kind.id_key]
        if "UpdatedDateUTC" in raw:
            assert row.updated_date_utc.tzinfo is not None


def _snake(name: str) -> str:
    """`ContactID` → `contact_id`, as the SDK names model attributes."""
    return name.removesuffix("ID").lower() + "_id"


def all_records(sim: XeroSimulator, obj: str) -> list[dict[str, Any]]:
    """The control plane's view of a collection's records."""
    return sim.records(obj) or []
