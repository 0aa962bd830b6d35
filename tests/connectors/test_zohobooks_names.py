"""Zoho Books answers a taken customer name and a taken unique field value alike (3062): the connector tells
them apart, so that a name clash is never mistaken for the record already existing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from syncd.connectors.base import Create, Update
from syncd.connectors.zohobooks import ZohoBooksConnector
from syncd.errors import DuplicateError, NameTakenError
from syncd.sandbox.runner import Sandbox
from tests.connectors.zohobooks_fixtures import live, open_zoho


@pytest.fixture
async def zoho(reset_sandbox: Sandbox) -> AsyncIterator[ZohoBooksConnector]:
    """A started connector against a sandbox with no records."""
    async with open_zoho(reset_sandbox) as connector:
        yield connector


async def test_a_taken_customer_name_is_named_as_such_with_its_holder(
    zoho: ZohoBooksConnector, reset_sandbox: Sandbox
) -> None:
    [first] = await zoho.create_many("contacts", [Create("ref-1", {"contact_name": "Jennifer Mitchell"})])
    assert first.ok and first.id is not None
    # Another person, the same display name in other case: Books compares names regardless of case.
    [second] = await zoho.create_many("contacts", [Create("ref-2", {"contact_name": "jennifer MITCHELL"})])
    assert isinstance(second.error, NameTakenError) and second.id is None
    assert (second.error.field, second.error.value, second.error.holder_id) == (
        "contact_name", "jennifer MITCHELL", first.id
    )  # fmt: skip
    assert second.error.vendor_code == "3062" and "already exists" in second.error.vendor_message
    assert len(live(reset_sandbox, "contacts")) == 1

    # Renaming another customer onto a taken name is refused the same way; its own name is not "taken".
    [other] = await zoho.create_many("contacts", [Create("ref-3", {"contact_name": "Wei Zhang"})])
    assert other.id is not None
    [renamed] = await zoho.update_many("contacts", [Update(other.id, {"contact_name": "Jennifer Mitchell"})])
    assert isinstance(renamed.error, NameTakenError) and renamed.error.holder_id == first.id
    [same] = await zoho.update_many("contacts", [Update(other.id, {"contact_name": "WEI ZHANG"})])
    assert same.ok


async def test_a_taken_unique_field_value_stays_a_duplicate_not_a_taken_name(zoho: ZohoBooksConnector) -> None:
    [first] = await zoho.create_many("contacts", [Create("ref-1", {"contact_name": "Ann Lee"})])
    [second] = await zoho.create_many("contacts", [Create("ref-2", {"contact_name": "Bob Stone"})])
    assert first.ok and second.id is not None
    # Another customer's syncd reference is a unique custom field value: 3062 too, but not about the name.
    [clash] = await zoho.update_many(
        "contacts", [Update(second.id, {"contact_name": "Bob Stone", "cf_syncd_ref": "ref-1"})]
    )
    assert isinstance(clash.error, DuplicateError) and not isinstance(clash.error, NameTakenError)
    assert clash.error.vendor_code == "3062"
