"""Shared fixtures and the contract-checking client for the Zoho Books simulator tests (holds no tests)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from syncd.sandbox.zohobooks import ZohoBooksSimulator
from tests.contracts.openapi import assert_valid_response, load_spec
from tests.contracts.zoho_books_rule import CONTRACTS_DIR, fix_zoho_books_spec

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z, the start of a rate-limit window
SPEC_FILES = {
    "contacts": "zoho-books-contacts.yml",
    "invoices": "zoho-books-invoices.yml",
    "customerpayments": "zoho-books-customer-payments.yml",
    "items": "zoho-books-items.yml",
    "itemdetails": "zoho-books-items.yml",
    "organizations": "zoho-books-organizations.yml",
}
# Paths under /contacts that Zoho documents in a file of their own.
CONTACT_PERSONS_FILE = "zoho-books-contact-persons.yml"
# Every (method, route) answered without a schema in the spec is recorded here, for the report and the checks.
UNDOCUMENTED: set[str] = set()


class ManualClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


@cache
def _raw_spec(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((CONTRACTS_DIR / name).read_text(encoding="utf-8")))


def _documented(file: str, method: str, path: str, status: int) -> bool:
    """Whether the spec has a response schema for this method, concrete path and status."""
    for template, operations in _raw_spec(file)["paths"].items():
        pattern = "^" + re.sub(r"\{[^/]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path) and method.lower() in operations:
            return str(status) in operations[method.lower()].get("responses", {})
    return False


def check_contract(method: str, path: str, status: int, headers: Mapping[str, str], raw: bytes, query: str) -> None:
    """Validate a Books answer against its OpenAPI file, or, where the file has none, Zoho's error envelope."""
    api_path = path.removeprefix("/books/v3")
    module = api_path.strip("/").split("/")[0]
    file = CONTACT_PERSONS_FILE if "/contactpersons" in api_path else SPEC_FILES.get(module)
    if file is not None and _documented(file, method, api_path, status):
        spec = load_spec(Path(CONTRACTS_DIR / file), transform=fix_zoho_books_spec)
        assert_valid_response(spec, method=method, path=path, status=status, headers=headers, body=raw, query=query)
        return
    UNDOCUMENTED.add(f"{method} {re.sub(r'/[0-9]{6,}', '/{id}', api_path)} {status}")
    body = json.loads(raw)
    assert isinstance(body.get("code"), int) and isinstance(body.get("message"), str), body
    assert (body["code"] == 0) == (status < 400), body


@dataclass
class Books:
    """A running simulator, its clock and an HTTP session with a valid token."""

    sim: ZohoBooksSimulator
    clock: ManualClock
    server: TestServer
    session: ClientSession
    token: str

    def travel(self, seconds: float) -> None:
        """Move the clock forward and take a fresh access token (the old one may have expired)."""
        self.clock.advance(seconds)
        self.token = self.sim.tokens.issue_access_token().access_token

    @property
    def root(self) -> str:
        """`http://127.0.0.1:port`."""
        return str(self.server.make_url("")).rstrip("/")

    async def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        token: str | None = None,
        organization: str | None = "default",
    ) -> tuple[int, dict[str, Any]]:
        """Call `/books/v3<path>`, check the answer against the contract, return (status, JSON body)."""
        query = dict(params or {})
        if organization == "default":
            query["organization_id"] = self.sim.organization_id
        elif organization is not None:
            query["organization_id"] = organization
        all_headers = {"Authorization": f"Zoho-oauthtoken {token or self.token}", **(headers or {})}
        if json_body is not None:
            all_headers["Content-Type"] = "application/json"
        url = self.root + "/books/v3" + path
        async with self.session.request(
            method, url, params=query, headers=all_headers, data=None if json_body is None else json.dumps(json_body)
        ) as response:
            raw = await response.read()
            check_contract(method, response.url.path, response.status, response.headers, raw, response.url.query_string)
            return response.status, json.loads(raw)


@pytest.fixture
async def books() -> AsyncIterator[Books]:
    """A fresh simulator on 127.0.0.1:0 with a manual clock and a live access token."""
    clock = ManualClock()
    sim = ZohoBooksSimulator(clock=clock, rng_seed=1)
    server = TestServer(sim.build_app(), host="127.0.0.1", port=0)
    await server.start_server()
    session = ClientSession()
    try:
        yield Books(sim, clock, server, session, sim.tokens.issue_access_token().access_token)
    finally:
        await session.close()
        await server.close()


async def new_contact(books: Books, name: str, **extra: Any) -> dict[str, Any]:
    """Create a customer with one primary person; returns the contact."""
    body = {
        "contact_name": name,
        "company_name": f"{name} Ltd",
        "contact_persons": [
            {"first_name": name.split()[0], "last_name": "Doe", "email": f"{name.split()[0].lower()}@example.com"}
        ],
        **extra,
    }
    status, answer = await books.call("POST", "/contacts", json_body=body)
    assert status == 201, answer
    return dict(answer["contact"])


async def new_invoice(
    books: Books, customer_id: str, *lines: tuple[str, int], send: bool = True, **extra: Any
) -> dict[str, Any]:
    """Create an invoice with (name, rate) lines of quantity 1; sent unless told otherwise."""
    body = {
        "customer_id": customer_id,
        "line_items": [{"name": n, "rate": r, "quantity": 1} for n, r in lines],
        **extra,
    }
    status, answer = await books.call("POST", "/invoices", json_body=body, params={"send": "true" if send else "false"})
    assert status == 201, answer
    return dict(answer["invoice"])
