"""`/contacts/.../contactpersons`: a contact's persons on their own (list, get, add, update, delete, mark primary),
the same persons the contact's own body carries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from syncd.sandbox.zohobooks import payloads
from syncd.sandbox.zohobooks.contacts import contact_json, person_values
from syncd.sandbox.zohobooks.context import BooksContext, answer
from syncd.sandbox.zohobooks.entities import Contact, ContactPerson
from syncd.sandbox.zohobooks.errors import invalid, not_found


def person_json(contact: Contact, person: ContactPerson) -> dict[str, Any]:
    """A contact person as the contact persons API answers it (with its contact's id)."""
    return {"contact_id": contact.contact_id, **person.model_dump(), "skype": "", "is_added_in_portal": False}


class ContactPersonRoutes:
    """Handlers of the contact persons module."""

    def __init__(self, ctx: BooksContext) -> None:
        self.ctx = ctx

    def add_to(self, app: web.Application, prefix: str) -> None:
        """Register the routes under the Books prefix."""
        app.add_routes([
            web.get(f"{prefix}/contacts/{{contact_id}}/contactpersons", self.list),
            web.get(f"{prefix}/contacts/{{contact_id}}/contactpersons/{{person_id}}", self.get),
            web.post(f"{prefix}/contacts/contactpersons", self.create),
            web.put(f"{prefix}/contacts/contactpersons/{{person_id}}", self.update),
            web.delete(f"{prefix}/contacts/contactpersons/{{person_id}}", self.delete),
            web.post(f"{prefix}/contacts/contactpersons/{{person_id}}/primary", self.mark_primary),
        ])

    def _owner(self, person_id: str) -> tuple[Contact, ContactPerson]:
        """The live contact holding a person, and the person; 404 when no live contact has it."""
        for contact in self.ctx.ledger.live_contacts():
            for person in contact.contact_persons:
                if person.contact_person_id == person_id:
                    return contact, person
        raise not_found("Contact person")

    def _changed(self, contact: Contact) -> None:
        """A person changed: the contact was modified (lists, indexes and webhooks see it)."""
        contact.last_modified_time = self.ctx.now()
        self.ctx.ledger.contact_index.refile(contact.contact_id, contact)
        self.ctx.notify("contact", "updated", contact_json(self.ctx, contact))

    async def list(self, request: web.Request) -> web.Response:
        """GET /contacts/{contact_id}/contactpersons: every person, primary first, on one page."""
        contact = self.ctx.ledger.contact(request.match_info["contact_id"])
        persons = sorted(contact.contact_persons, key=lambda p: not p.is_primary_contact)
        return answer({
            "code": 0, "message": "success",
            "contact_persons": [person_json(contact, p) for p in persons],
            "page_context": {"page": 1, "per_page": 200, "has_more_page": False,
                             "sort_column": "contact_person_id", "sort_order": "A"},
        })

    async def get(self, request: web.Request) -> web.Response:
        """GET /contacts/{contact_id}/contactpersons/{contact_person_id}."""
        contact = self.ctx.ledger.contact(request.match_info["contact_id"])
        for person in contact.contact_persons:
            if person.contact_person_id == request.match_info["person_id"]:
                return answer({"code": 0, "message": "success", "contact_person": person_json(contact, person)})
        raise not_found("Contact person")

    def _fields(self, body: Mapping[str, Any], current: dict[str, Any]) -> dict[str, Any]:
        values = person_values(body, current)
        if not values.get("first_name", "").strip():
            raise invalid("first_name")
        return values

    async def create(self, request: web.Request) -> web.Response:
        """POST /contacts/contactpersons: a new person on `contact_id`; a contact's first person is primary."""
        body = await payloads.read_body(request)
        contact_id = payloads.identifier(body, "contact_id", required=True)
        assert contact_id is not None
        contact = self.ctx.ledger.contact(contact_id)
        values = self._fields(body, {"contact_person_id": self.ctx.ledger.new_id()})
        person = ContactPerson(**values, is_primary_contact=not contact.contact_persons)
        contact.contact_persons = [*contact.contact_persons, person]
        self._changed(contact)
        return answer({"code": 0, "message": "The contactperson has been Created",
                       "contact_person": [person_json(contact, person)]}, 201)

    async def update(self, request: web.Request) -> web.Response:
        """PUT /contacts/contactpersons/{contact_person_id}."""
        body = await payloads.read_body(request)
        contact, person = self._owner(request.match_info["person_id"])
        named = payloads.identifier(body, "contact_id")
        if named is not None and named != contact.contact_id:
            raise invalid("contact_id")
        updated = ContactPerson(**self._fields(body, person.model_dump()))
        contact.contact_persons = [updated if p is person else p for p in contact.contact_persons]
        self._changed(contact)
        return answer({"code": 0, "message": "The contactperson details has been updated.",
                       "contact_person": [person_json(contact, updated)]})

    async def delete(self, request: web.Request) -> web.Response:
        """DELETE /contacts/contactpersons/{contact_person_id}; the next person becomes primary if need be."""
        contact, person = self._owner(request.match_info["person_id"])
        rest = [p for p in contact.contact_persons if p is not person]
        if person.is_primary_contact and rest:
            rest[0].is_primary_contact = True
        contact.contact_persons = rest
        self._changed(contact)
        return answer({"code": 0, "message": "The contact person has been deleted."})

    async def mark_primary(self, request: web.Request) -> web.Response:
        """POST /contacts/contactpersons/{contact_person_id}/primary."""
        contact, person = self._owner(request.match_info["person_id"])
        for other in contact.contact_persons:
            other.is_primary_contact = other is person
        self._changed(contact)
        return answer({"code": 0, "message": "This contact person has been marked as your primary contact person."})
