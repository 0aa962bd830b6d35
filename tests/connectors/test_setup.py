"""`syncd setup` against the sandbox as a new account: HubSpot's syncd_* properties and their group are created
through the Properties API once (a second run creates nothing), and what no API can make is a precise checklist."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import aiohttp
import tomli_w

from syncd.mapping.loader import SHIPPED_MAPPINGS_DIR
from syncd.sandbox.runner import Sandbox
from syncd.store.schema import upgrade
from tests.engine.test_daemon import (  # noqa: F401  (fixtures: clean, http, sandbox)
    DEADLINE_S,
    clean,
    config_dict,
    http,
    hubspot_token,
    sandbox,
)

HUBSPOT_SCOPES = ["crm.objects.contacts.read", "crm.objects.contacts.write", "crm.objects.deals.read",
                  "crm.objects.deals.write", "crm.objects.line_items.read", "crm.schemas.contacts.write",
                  "crm.schemas.deals.write"]
# Every syncd_* property the shipped HubSpot mapping uses, with the type `syncd setup` gives it.
OWN_PROPERTIES = {
    ("contacts", "syncd_ref"): "string",
    ("deals", "syncd_ref"): "string",
    ("deals", "syncd_invoice_number"): "string",
    ("deals", "syncd_invoice_status"): "string",
    ("deals", "syncd_invoice_total"): "number",
    ("deals", "syncd_invoice_balance"): "number",
    ("deals", "syncd_amount_paid"): "number",
    ("deals", "syncd_invoice_due_date"): "date",
    ("deals", "syncd_last_payment_amount"): "number",
    ("deals", "syncd_last_payment_date"): "date",
    ("deals", "syncd_last_payment_mode"): "string",
    ("deals", "syncd_last_payment_reference"): "string",
    ("deals", "syncd_last_payment_refunded"): "number",
}


async def syncd(*args: str) -> tuple[int, str, str]:
    """Run the `syncd` command; its exit status, stdout and stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "syncd", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ},
    )
    out, err = await asyncio.wait_for(proc.communicate(), DEADLINE_S)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def write_config(tmp_path: Path, sandbox: Sandbox, mapping_files: list[Path] | None = None,  # noqa: F811
                       hubspot_scopes: list[str] | None = None) -> Path:
    """A config on the sandbox with all three connections, its store migrated."""
    config: dict[str, Any] = config_dict(tmp_path, sandbox, interval_s=3600, webhooks=False, salesforce=True)
    if mapping_files is not None:
        config["mappings"] = {"active": [str(p) for p in mapping_files]}
    if hubspot_scopes is not None:
        config["connections"]["hub"]["scopes"] = hubspot_scopes
    path = tmp_path / "syncd.toml"
    path.write_bytes(tomli_w.dumps(config).encode())
    await upgrade(config["store"]["url"])
    return path


async def post_requests(http: aiohttp.ClientSession, sandbox: Sandbox, route: str) -> int:  # noqa: F811
    """POST requests the HubSpot simulator served on `route`."""
    async with http.get(f"{sandbox.control_url('hubspot')}/_sandbox/stats") as response:
        return int((await response.json())["requests"].get(f"POST {route}", 0))


async def hubspot_property(http: aiohttp.ClientSession, sandbox: Sandbox, obj: str, name: str  # noqa: F811
                           ) -> dict[str, Any]:
    """A property's definition as HubSpot's Properties API gives it to anyone."""
    headers = {"Authorization": f"Bearer {await hubspot_token(http, sandbox)}"}
    url = f"{sandbox.descriptor['hubspot']['base_url']}/crm/v3/properties/{obj}/{name}"
    async with http.get(url, headers=headers) as response:
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        return body


async def test_setup_creates_hubspots_syncd_properties_once_and_lists_what_it_cannot_make(
    tmp_path: Path, clean: Sandbox, http: aiohttp.ClientSession  # noqa: F811
) -> None:
    async with http.post(f"{clean.control_url('hubspot')}/_sandbox/fresh-portal") as response:
        assert response.status == 200
    config = await write_config(tmp_path, clean, hubspot_scopes=HUBSPOT_SCOPES)
    code, before, _ = await syncd("mappings", "validate", "--live", "--config", str(config))
    assert code == 2 and "syncd_invoice_total" in before, "a new portal lacks syncd's properties"

    code, out, err = await syncd("setup", "--config", str(config))
    # Zoho Books' custom field cannot be made or seen through its API: to check, which is no failure.
    assert code == 0, out + err
    for (obj, name), kind in OWN_PROPERTIES.items():
        assert f"created        property {obj}.{name}: {kind}" in out, (obj, name, out)
        prop = await hubspot_property(http, clean, obj, name)
        assert (prop["type"], prop["groupName"], prop["hubspotDefined"]) == (kind, "syncd", False)
        assert prop["hasUniqueValue"] is (name == "syncd_ref")
    assert "created        property group contacts.syncd" in out and "property group deals.syncd" in out
    assert "check          custom field contacts.cf_syncd_ref" in out
    assert "Field Customization" in out and "Prevent duplicate values" in out
    assert "already there  field Payment__c.Syncd_Ref__c" in out
    assert "already there  OAuth scopes: crm.objects.contacts.read" in out
    assert f"{len(OWN_PROPERTIES) + 2} created, 0 to do by hand, 1 to check by hand" in out
    assert await post_requests(http, clean, "/crm/v3/properties/{object_type}") == len(OWN_PROPERTIES)
    assert await post_requests(http, clean, "/crm/v3/properties/{object_type}/groups") == 2

    # Again: everything is already there, and nothing is sent to be created.
    code, again, err = await syncd("setup", "hub", "--config", str(config))
    assert code == 0, again + err
    assert "created " not in again and "0 created, 0 to do by hand, 0 to check by hand" in again
    assert "already there  property deals.syncd_invoice_total" in again
    assert await post_requests(http, clean, "/crm/v3/properties/{object_type}") == len(OWN_PROPERTIES)
    assert await post_requests(http, clean, "/crm/v3/properties/{object_type}/groups") == 2

    code, after, err = await syncd("mappings", "validate", "--live", "--config", str(config))
    assert code == 0, after + err


async def test_setup_lists_salesforce_fields_to_create_and_scopes_to_add(
    tmp_path: Path, clean: Sandbox, http: aiohttp.ClientSession  # noqa: F811
) -> None:
    # An operator's copy of the Salesforce mapping with a field of their own the org does not have yet.
    mapping = tmp_path / "salesforce-zohobooks.toml"
    mapping.write_text((SHIPPED_MAPPINGS_DIR / "salesforce-zohobooks.toml").read_text() + (
        '\n[objects.customer.fields.region]\ncrm = "Sales_Region__c"\nacc = "billing_address.state"\n'
        'transform = "trim"\n'))
    hubspot = SHIPPED_MAPPINGS_DIR / "hubspot-zohobooks.toml"
    # The scopes of an older config, before syncd read line items.
    config = await write_config(tmp_path, clean, [hubspot, mapping],
                                hubspot_scopes=["crm.objects.contacts.read", "crm.objects.contacts.write",
                                                "crm.objects.deals.read", "crm.objects.deals.write"])
    code, out, err = await syncd("setup", "--config", str(config))
    assert code == 1, out + err
    assert "to do          field Contact.Sales_Region__c: Text(255)" in out
    assert "Setup → Object Manager → Contact → Fields & Relationships → New" in out
    assert "to do          OAuth scopes missing: crm.objects.line_items.read (read line_items)" in out
    assert "then run `syncd auth hub` again" in out
    # The sandbox portal already has syncd's properties: nothing to create there.
    assert "created " not in out
    assert "0 created, 2 to do by hand, 1 to check by hand" in out

    code, out, err = await syncd("setup", "nosuch", "--config", str(config))
    assert code == 2 and "no enabled connection named 'nosuch' (enabled: books, hub, sf)" in err
