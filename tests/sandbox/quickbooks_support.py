"""Shared fixture and the contract-checking client for the QuickBooks Online simulator tests (holds no tests)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from syncd.sandbox.quickbooks import QuickBooksSimulator
from tests.contracts.quickbooks_xsd import assert_conforms

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z, the start of a rate-limit window


class ManualClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


@dataclass
class Company:
    """A running simulator, its clock, and an HTTP session holding a valid access token."""

    sim: QuickBooksSimulator
    clock: ManualClock
    root: str
    session: ClientSession
    token: str

    @property
    def api(self) -> str:
        """`…/v3/company/{realm}`."""
        return f"{self.root}/v3/company/{self.sim.realm_id}"

    async def call(self, method: str, path: str, *, body: Any = None, params: dict[str, str] | None = None,
                   text: str | None = None, token: str | None = None) -> tuple[int, Any]:
        """One API call; every JSON answer is checked against the XSD before the test sees it."""
        headers = {"Authorization": f"Bearer {token or self.token}", "Accept": "application/json"}
        data: str | None = None
        if text is not None:
            headers["Content-Type"] = "application/text"
            data = text
        elif body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body)
        query = {"minorversion": "75", **(params or {})}
        async with self.session.request(method, self.api + path, params=query, data=data,
                                        headers=headers) as response:  # fmt: skip
            raw = await response.read()
            status = response.status
        answer = json.loads(raw)
        assert_conforms(answer)
        return status, answer

    async def query(self, text: str) -> list[dict[str, Any]]:
        """The records a query selects (the entity's list in QueryResponse)."""
        status, answer = await self.call("POST", "/query", text=text)
        assert status == 200, answer
        found = answer["QueryResponse"]
        lists = [v for v in found.values() if isinstance(v, list)]
        return lists[0] if lists else []

    async def create(self, entity: str, body: dict[str, Any], **params: str) -> dict[str, Any]:
        """Create a record; fails the test on a Fault."""
        status, answer = await self.call("POST", f"/{entity.lower()}", body=body, params=params)
        assert status == 200, answer
        record: dict[str, Any] = answer[entity]
        return record


@pytest.fixture
async def company() -> AsyncIterator[Company]:
    """A fresh simulator on a loopback port with a manual clock, and a token from the token store."""
    clock = ManualClock()
    sim = QuickBooksSimulator(clock=clock)
    server = TestServer(sim.build_app(), host="127.0.0.1", port=0)
    await server.start_server()
    async with ClientSession() as session:
        root = f"http://127.0.0.1:{server.port}"
        yield Company(sim, clock, root, session, sim.tokens.issue_access_token().access_token)
    await server.close()


def customer(name: str, email: str | None = None, **extra: Any) -> dict[str, Any]:
    """A Customer create body."""
    body: dict[str, Any] = {"DisplayName": name, **extra}
    if email is not None:
        body["PrimaryEmailAddr"] = {"Address": email}
    return body


def invoice(customer_id: str, *lines: tuple[str, float, float], **extra: Any) -> dict[str, Any]:
    """An Invoice create body with one SalesItemLineDetail line per (description, unit price, quantity)."""
    return {
        "CustomerRef": {"value": customer_id},
        "Line": [
            {"DetailType": "SalesItemLineDetail", "Amount": round(price * qty, 2), "Description": name,
             "SalesItemLineDetail": {"ItemRef": {"value": "1"}, "UnitPrice": price, "Qty": qty}}
            for name, price, qty in lines
        ],
        **extra,
    }  # fmt: skip


def payment(customer_id: str, total: float, *applied: tuple[str, float], **extra: Any) -> dict[str, Any]:
    """A Payment create body applying amounts to invoices."""
    return {
        "CustomerRef": {"value": customer_id},
        "TotalAmt": total,
        "Line": [{"Amount": amount, "LinkedTxn": [{"TxnId": inv, "TxnType": "Invoice"}]} for inv, amount in applied],
        **extra,
    }
