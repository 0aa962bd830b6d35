"""HubSpot's steps in `syncd demo`: what a salesperson does in HubSpot between two syncs."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, timedelta

from syncd.connectors.base import Connector, FieldValue, Update


async def win_a_deal(connector: Connector, customers: Collection[str]) -> str | None:
    """Close one open deal of a linked contact as won today (a deal dated before syncd started is history, so
    today); the line saying so, or None when there is no such deal."""
    listed = [d.id async for page in connector.changes("deals", None, timedelta(0)) for d in page.records]
    # A list leaves deals' associations out: read the deals in full (a batch read per 100).
    deals = await connector.get_many("deals", listed)
    for deal in (deals[i] for i in listed if i in deals):
        if deal.fields.get("dealstage") != "closedwon" and deal.fields.get("associations.contacts") in customers:
            won: dict[str, FieldValue] = {"dealstage": "closedwon", "closedate": date.today()}
            await connector.update_many("deals", [Update(deal.id, won)])
            return f"HubSpot: deal {deal.id} ({deal.fields.get('dealname')}) is won, so it gets an invoice"
    return None
