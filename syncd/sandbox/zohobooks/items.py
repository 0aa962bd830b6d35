"""`/items`: the minimal product catalogue that invoice lines may refer to."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from aiohttp import web

from syncd.sandbox.zohobooks import payloads
from syncd.sandbox.zohobooks.context import BooksContext, answer
from syncd.sandbox.zohobooks.entities import Item
from syncd.sandbox.zohobooks.errors import DUPLICATE_VALUE, ZohoError, bad_state, invalid
from syncd.sandbox.zohobooks.listing import list_request, page_of
from syncd.sandbox.zohobooks.money import ZERO

SORT_COLUMNS = ("name", "rate", "created_time", "last_modified_time")


def item_json(ctx: BooksContext, item: Item) -> dict[str, Any]:
    """An item as GET returns it."""
    return {
        "item_id": item.item_id,
        "name": item.name,
        "status": item.status,
        "description": item.description,
        "rate": item.rate,
        "unit": item.unit,
        "sku": item.sku,
        "product_type": item.product_type,
        "created_time": ctx.stamp(item.created_time),
        "last_modified_time": ctx.stamp(item.last_modified_time),
    }


def _apply_input(ctx: BooksContext, item: Item, body: Mapping[str, Any], *, creating: bool) -> None:
    name = payloads.text(body, "name", required=creating, max_length=100)
    if name is not None:
        name = name.strip()
        others = [i for i in ctx.ledger.items.values() if not i.deleted and i.item_id != item.item_id]
        if any(i.name.lower() == name.lower() for i in others):
            raise ZohoError(400, DUPLICATE_VALUE, "The item name already exists.")
    rate = payloads.amount(body, "rate", required=creating, minimum=ZERO)
    product_type = payloads.text(body, "product_type")
    if product_type is not None and product_type not in ("goods", "service"):
        raise invalid("product_type")
    texts = {key: payloads.text(body, key, max_length=2000) for key in ("description", "sku", "unit")}
    if name is not None:
        item.name = name
    if rate is not None:
        item.rate = rate
    if product_type is not None:
        item.product_type = product_type  # type: ignore[assignment]
    for key, value in texts.items():
        if value is not None:
            setattr(item, key, value)
    item.last_modified_time = ctx.now()


class ItemRoutes:
    """Handlers of the items module."""

    def __init__(self, ctx: BooksContext) -> None:
        self.ctx = ctx

    def add_to(self, app: web.Application, prefix: str) -> None:
        """Register the routes under the Books prefix."""
        p = f"{prefix}/items"
        app.add_routes(
            [
                web.post(p, self.create),
                web.get(p, self.list),
                web.get(p + "/{item_id}", self.get),
                web.put(p + "/{item_id}", self.update),
                web.delete(p + "/{item_id}", self.delete),
                web.get(f"{prefix}/itemdetails", self.details),
                web.post(p + "/{item_id}/active", self.mark_active),
                web.post(p + "/{item_id}/inactive", self.mark_inactive),
            ]
        )

    def create_item(self, body: Mapping[str, Any]) -> Item:
        """Validate and add an item (also used by seeding)."""
        now = self.ctx.now()
        item = Item(item_id="", name="", rate=ZERO, created_time=now, last_modified_time=now)
        _apply_input(self.ctx, item, body, creating=True)
        item.item_id = self.ctx.ledger.new_id()
        self.ctx.ledger.items[item.item_id] = item
        return item

    async def create(self, request: web.Request) -> web.Response:
        """POST /items → 201."""
        item = self.create_item(await payloads.read_body(request))
        return answer({"code": 0, "message": "The item has been added.", "item": item_json(self.ctx, item)}, 201)

    async def get(self, request: web.Request) -> web.Response:
        """GET /items/{item_id}."""
        item = self.ctx.ledger.item(request.match_info["item_id"])
        return answer({"code": 0, "message": "success", "item": item_json(self.ctx, item)})

    async def update(self, request: web.Request) -> web.Response:
        """PUT /items/{item_id}."""
        item = self.ctx.ledger.item(request.match_info["item_id"])
        _apply_input(self.ctx, item, await payloads.read_body(request), creating=False)
        return answer({"code": 0, "message": "The item details have been updated.", "item": item_json(self.ctx, item)})

    async def delete(self, request: web.Request) -> web.Response:
        """DELETE /items/{item_id}; refused while a live invoice uses it."""
        item = self.ctx.ledger.item(request.match_info["item_id"])
        if any(line.item_id == item.item_id for i in self.ctx.ledger.live_invoices() for line in i.line_items):
            raise bad_state("The item cannot be deleted as it is used in transactions.")
        item.deleted = True
        item.last_modified_time = self.ctx.now()
        return answer({"code": 0, "message": "The item has been deleted."})

    async def details(self, request: web.Request) -> web.Response:
        """GET /itemdetails?item_ids=a,b: several items in one call, in the order asked (404 if one is missing)."""
        raw = request.query.get("item_ids", "")
        ids = [i for i in raw.split(",") if i]
        if not ids:
            raise invalid("item_ids")
        items = [item_json(self.ctx, self.ctx.ledger.item(i)) for i in ids]
        return answer({"code": 0, "message": "success", "items": items})

    async def _mark(self, request: web.Request, status: Literal["active", "inactive"]) -> web.Response:
        item = self.ctx.ledger.item(request.match_info["item_id"])
        item.status = status
        item.last_modified_time = self.ctx.now()
        return answer({"code": 0, "message": f"The item has been marked as {status}."})

    async def mark_active(self, request: web.Request) -> web.Response:
        """POST /items/{item_id}/active."""
        return await self._mark(request, "active")

    async def mark_inactive(self, request: web.Request) -> web.Response:
        """POST /items/{item_id}/inactive."""
        return await self._mark(request, "inactive")

    async def list(self, request: web.Request) -> web.Response:
        """GET /items with paging and the Status.All/Active/Inactive filter."""
        listing = list_request(request, sort_columns=SORT_COLUMNS, default_sort="name")
        status_filter = request.query.get("filter_by", "Status.All")
        wanted = {"Status.All": None, "Status.Active": "active", "Status.Inactive": "inactive"}
        if status_filter not in wanted:
            raise invalid("filter_by")
        rows = [item_json(self.ctx, i) for i in self.ctx.ledger.items.values()
                if not i.deleted and wanted[status_filter] in (None, i.status)]
        page, context = page_of(
            rows, listing,
            key=lambda v: v["name"].lower() if listing.sort_column == "name" else v[listing.sort_column],
            render=lambda v: v,  # few items: rows are rendered before sorting
            report_name="Items", applied_filter=status_filter,
        )  # fmt: skip
        return answer({"code": 0, "message": "success", "items": page, "page_context": context})
