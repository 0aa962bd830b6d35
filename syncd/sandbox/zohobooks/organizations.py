"""`/organizations`: the one organisation the sandbox user belongs to, which readers list first to learn its id."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from syncd.sandbox.zohobooks.contacts import CURRENCY_ID
from syncd.sandbox.zohobooks.context import answer
from syncd.sandbox.zohobooks.errors import not_found

ORGANIZATION_NAME = "Sandbox Books Org"
CONTACT_NAME = "Sandbox Owner"
EMAIL = "owner@sandbox-books.example"
CREATED = "2024-01-02"


def organization_summary(organization_id: str) -> dict[str, Any]:
    """A row of GET /organizations."""
    return {
        "organization_id": organization_id, "name": ORGANIZATION_NAME, "contact_name": CONTACT_NAME,
        "email": EMAIL, "is_default_org": True, "plan_type": 0, "tax_group_enabled": False,
        "zi_migration_status": 0, "plan_name": "STANDARD", "plan_period": "Yearly", "language_code": "en",
        "fiscal_year_start_month": 0, "account_created_date": CREATED, "account_created_date_formatted": "02 Jan 2024",
        "time_zone": "UTC", "is_org_active": True, "currency_id": CURRENCY_ID, "currency_code": "USD",
        "currency_symbol": "$", "currency_format": "###,##0.00", "price_precision": 2,
    }


def organization_detail(organization_id: str) -> dict[str, Any]:
    """GET /organizations/{organization_id}'s `organization`."""
    summary = organization_summary(organization_id)
    keep = ("organization_id", "name", "is_default_org", "account_created_date", "time_zone", "language_code",
            "fiscal_year_start_month", "contact_name", "currency_id", "currency_code", "currency_symbol",
            "currency_format", "price_precision", "email", "is_org_active")
    return {
        **{key: summary[key] for key in keep},
        "date_format": "yyyy-MM-dd", "field_separator": "-", "industry_type": "", "industry_size": "",
        "company_id_label": "Company ID", "company_id_value": "", "tax_id_label": "Tax ID", "tax_id_value": "",
        "org_address": "", "remit_to_address": "", "phone": "", "fax": "", "website": "",
        "address": {"street_address1": "", "street_address2": "", "city": "", "state": "", "country": "U.S.A",
                    "zip": ""},
        "custom_fields": [],
    }


class OrganizationRoutes:
    """Handlers of the organisations module (reads only: the sandbox has its one organisation)."""

    def __init__(self, organization_id: Callable[[], str]) -> None:
        self.organization_id = organization_id

    def add_to(self, app: web.Application, prefix: str) -> None:
        """Register the routes under the Books prefix."""
        app.add_routes([
            web.get(f"{prefix}/organizations", self.list),
            web.get(f"{prefix}/organizations/{{organization_id}}", self.get),
        ])

    async def list(self, request: web.Request) -> web.Response:
        """GET /organizations: every organisation the user is in (needs no organization_id)."""
        rows = [organization_summary(self.organization_id())]
        return answer({"code": 0, "message": "success", "organizations": rows})

    async def get(self, request: web.Request) -> web.Response:
        """GET /organizations/{organization_id}."""
        if request.match_info["organization_id"] != self.organization_id():
            raise not_found("Organization")
        return answer({"code": 0, "message": "success", "organization": organization_detail(self.organization_id())})
