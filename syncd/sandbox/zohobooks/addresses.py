"""`/contacts/{contact_id}/address`: a contact's further addresses (list, add, update, delete)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from syncd.sandbox.zohobooks import payloads
from syncd.sandbox.zohobooks.contacts import ADDRESS_PARTS, contact_json
from syncd.sandbox.zohobooks.context import BooksContext, answer
from syncd.sandbox.zohobooks.entities import Contact, OtherAddress
from syncd.sandbox.zohobooks.errors import not_found


class AddressRoutes:
    """Handlers of a contact's further addresses."""

    def __init__(self, ctx: BooksContext) -> None:
        self.ctx = ctx

    def add_to(self, app: web.Application, prefix: str) -> None:
        """Register the routes under the Books prefix."""
        one = f"{prefix}/contacts/{{contact_id}}/address"
        app.add_routes([
            web.get(one, self.list),
            web.post(one, self.create),
            web.put(one + "/{address_id}", self.update),
            web.delete(one + "/{address_id}", self.delete),
        ])

    def _changed(self, contact: Contact) -> None:
        contact.last_modified_time = self.ctx.now()
        self.ctx.notify("contact", "updated", contact_json(self.ctx, contact))

    def _address(self, contact: Contact, address_id: str) -> OtherAddress:
        for address in contact.other_addresses:
            if address.address_id == address_id:
                return address
        raise not_found("Address")

    @staticmethod
    def _parts(body: Mapping[str, Any], current: dict[str, Any]) -> dict[str, Any]:
        """`current` with every address part the body gives (checked: text up to 500 characters)."""
        values = dict(current)
        for part in ADDRESS_PARTS:
            value = payloads.text(body, part, max_length=500)
            if value is not None:
                values[part] = value
        return values

    async def list(self, request: web.Request) -> web.Response:
        """GET /contacts/{contact_id}/address."""
        contact = self.ctx.ledger.contact(request.match_info["contact_id"])
        return answer({"code": 0, "message": "success",
                       "addresses": [a.model_dump() for a in contact.other_addresses]})

    async def create(self, request: web.Request) -> web.Response:
        """POST /contacts/{contact_id}/address (200, as Zoho documents it)."""
        contact = self.ctx.ledger.contact(request.match_info["contact_id"])
        values = self._parts(await payloads.read_body(request), {"address_id": self.ctx.ledger.new_id()})
        address = OtherAddress(**values)
        contact.other_addresses = [*contact.other_addresses, address]
        self._changed(contact)
        return answer({"code": 0, "message": "The address has been created.", "address_info": address.model_dump()})

    async def update(self, request: web.Request) -> web.Response:
        """PUT /contacts/{contact_id}/address/{address_id}."""
        contact = self.ctx.ledger.contact(request.match_info["contact_id"])
        current = self._address(contact, request.match_info["address_id"])
        updated = OtherAddress(**self._parts(await payloads.read_body(request), current.model_dump()))
        contact.other_addresses = [updated if a is current else a for a in contact.other_addresses]
        self._changed(contact)
        return answer({"code": 0, "message": "The address has been updated.", "address_info": updated.model_dump()})

    async def delete(self, request: web.Request) -> web.Response:
        """DELETE /contacts/{contact_id}/address/{address_id}."""
        contact = self.ctx.ledger.contact(request.match_info["contact_id"])
        gone = self._address(contact, request.match_info["address_id"])
        contact.other_addresses = [a for a in contact.other_addresses if a is not gone]
        self._changed(contact)
        return answer({"code": 0, "message": "The address has been deleted."})
