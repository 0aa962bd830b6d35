"""A won Salesforce opportunity with products becomes a Zoho Books invoice whose lines carry the products' names."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from syncd.connectors.salesforce import SalesforceConnector
from syncd.sandbox.salesforce.schema import STANDARD_PRICEBOOK_ID
from tests.engine.conftest import World
from tests.engine.test_customers import settle
from tests.engine.test_payments import SALESFORCE, won_opportunities


async def salesforce_api(world: World, sobject: str, body: dict[str, Any]) -> str:
    """Create a record through Salesforce's REST API as an admin's other tool would (the connector serves no
    product catalogue); returns its id."""
    sf = world.salesforce.connector
    assert isinstance(sf, SalesforceConnector)
    created = await sf.transport.call(f"create {sobject}", lambda client: getattr(client, sobject).create(body))
    return str(created["id"])


async def product(world: World, name: str, price: str) -> str:
    """An active product with a standard price; its Product2 id."""
    product_id = await salesforce_api(world, "Product2", {"Name": name, "IsActive": True})
    await salesforce_api(
        world,
        "PricebookEntry",
        {"Pricebook2Id": STANDARD_PRICEBOOK_ID, "Product2Id": product_id, "UnitPrice": price, "IsActive": True},
    )
    return product_id


async def test_invoice_lines_are_named_after_the_opportunitys_products(world: World) -> None:
    generator = await product(world, "GenWatt Diesel 200kW", "25000")
    install = await product(world, "Installation: Industrial - High", "85000")
    _, (opportunity,) = await won_opportunities(world, "1")
    for product_id, quantity, price, description in (
        (generator, 2, "24000", "Backup power"),
        (install, 1, "80000", None),
    ):
        await world.salesforce.put(
            "OpportunityLineItem",
            {"OpportunityId": opportunity, "Product2Id": product_id, "Quantity": Decimal(quantity),
             "UnitPrice": Decimal(price), "Description": description},
        )  # fmt: skip
    lines = (await world.salesforce.get("Opportunity", opportunity))["line_items"]
    assert isinstance(lines, list)
    # What the mapping must not use: Salesforce names each line "<Opportunity name> <Product name>".
    assert sorted(str(line["Name"]) for line in lines) == [
        "Deal 1 GenWatt Diesel 200kW",
        "Deal 1 Installation: Industrial - High",
    ]
    assert await settle(world, SALESFORCE) <= 3
    [invoice] = await world.zoho.all("invoices")
    assert sorted((li["name"], li.get("description"), li["quantity"], li["rate"]) for li in invoice["line_items"]) == [
        ("GenWatt Diesel 200kW", "Backup power", Decimal(2), Decimal("24000.00")),
        ("Installation: Industrial - High", None, Decimal(1), Decimal("80000.00")),
    ]
    assert invoice["total"] == Decimal("128000.00")


async def test_an_opportunity_without_products_gets_one_line_named_after_it(world: World) -> None:
    await won_opportunities(world, "1200")
    assert await settle(world, SALESFORCE) <= 3
    [invoice] = await world.zoho.all("invoices")
    assert [(li["name"], li["quantity"], li["rate"]) for li in invoice["line_items"]] == [
        ("Deal 1", Decimal(1), Decimal("1200.00"))
    ]
