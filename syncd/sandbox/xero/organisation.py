"""The organisation's settings a third-party client reads first: `GET /Organisation` and the chart of accounts
(`GET /Accounts`: the bank accounts payments go into, the sales accounts invoice lines post to), and `DELETE
/Items/{ItemID}`, so tools other than syncd can be pointed at the simulator too."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from syncd.sandbox.xero.books import BANK_ACCOUNTS, ITEMS, XeroBooks
from syncd.sandbox.xero.wire import json_response, ms_date, not_found

# The demo company's chart, as far as the simulator's rules use it: code → (name, type, class).
CHART: dict[str, tuple[str, str, str]] = {
    "090": ("Business Bank Account", "BANK", "ASSET"),
    "091": ("Business Savings Account", "BANK", "ASSET"),
    "200": ("Sales", "REVENUE", "REVENUE"),
    "260": ("Other Revenue", "OTHERINCOME", "REVENUE"),
    "400": ("Advertising", "EXPENSE", "EXPENSE"),
}


def _account_id(code: str) -> str:
    return BANK_ACCOUNTS.get(code) or str(uuid.uuid5(uuid.NAMESPACE_URL, f"xero-sandbox-account-{code}"))


@dataclass
class OrganisationRoutes:
    """The organisation and its accounts (read-only), and item deletion."""

    tenant: Callable[[], Mapping[str, str]]
    books: Callable[[], XeroBooks]
    now_ms: Callable[[], int]
    after_write: Callable[[], None]

    def add_to(self, app: web.Application, prefix: str) -> None:
        """Register the routes."""
        app.router.add_get(f"{prefix}/Organisation", self.organisation)
        app.router.add_get(f"{prefix}/Accounts", self.accounts)
        app.router.add_delete(f"{prefix}/Items/{{id}}", self.delete_item)

    def _envelope(self, key: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {"Id": str(uuid.uuid4()), "Status": "OK", "ProviderName": "syncd sandbox",
                "DateTimeUTC": ms_date(self.now_ms()), key: rows}  # fmt: skip

    async def organisation(self, request: web.Request) -> web.Response:
        """The one organisation."""
        tenant = self.tenant()
        return json_response(self._envelope("Organisations", [{
            "OrganisationID": tenant["tenant_id"], "Name": tenant["name"], "LegalName": tenant["name"],
            "PaysTax": False, "Version": "US", "OrganisationType": "COMPANY", "BaseCurrency": "USD",
            "CountryCode": "US", "IsDemoCompany": False, "OrganisationStatus": "ACTIVE",
            "FinancialYearEndDay": 31, "FinancialYearEndMonth": 12, "Timezone": "EASTERNSTANDARDTIME",
            "CreatedDateUTC": ms_date(1_735_689_600_000),
        }]))  # fmt: skip

    async def accounts(self, request: web.Request) -> web.Response:
        """The chart of accounts."""
        rows = []
        for code, (name, kind, klass) in CHART.items():
            row: dict[str, Any] = {
                "AccountID": _account_id(code), "Code": code, "Name": name, "Type": kind, "Class": klass,
                "Status": "ACTIVE", "TaxType": "NONE", "EnablePaymentsToAccount": kind == "BANK",
                "ShowInExpenseClaims": False, "HasAttachments": False, "UpdatedDateUTC": ms_date(1_735_689_600_000),
            }  # fmt: skip
            if kind == "BANK":
                row.update({"BankAccountNumber": f"12-3456-789{code}", "BankAccountType": "BANK",
                            "CurrencyCode": "USD"})  # fmt: skip
            rows.append(row)
        return json_response(self._envelope("Accounts", rows))

    async def delete_item(self, request: web.Request) -> web.Response:
        """Delete an item (204), 404 when there is none."""
        books = self.books()
        item = books.get(ITEMS, request.match_info["id"])
        if item is None:
            return not_found()
        books.delete_item(item)
        self.after_write()
        return web.Response(status=204)
