"""python-quickbooks' own objects and helpers round-trip against the simulator (SDK objects send every property
they have, blank or zero, as the real API accepts), and the simulator's list of XSD properties still holds."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from quickbooks.exceptions import QuickbooksException
from quickbooks.objects.base import EmailAddress, LinkedTxn, Ref
from quickbooks.objects.customer import Customer
from quickbooks.objects.detailline import SalesItemLine, SalesItemLineDetail
from quickbooks.objects.invoice import Invoice
from quickbooks.objects.item import Item
from quickbooks.objects.payment import Payment, PaymentLine

from syncd.connectors.quickbooks.client import CURRENT, Call, pointed_client
from syncd.sandbox.quickbooks.properties import XSD_PROPERTIES
from tests.contracts.quickbooks_xsd import schema
from tests.sandbox.quickbooks_support import Company, company

__all__ = ["company"]
T = TypeVar("T")


async def _sdk(company: Company, work: Callable[[Any], T]) -> T:
    company.sim.apply_limits({"per_second": 1_000})  # the test's clock stands still
    client = pointed_client(company.root, company.sim.realm_id, 75)

    def run() -> T:
        CURRENT.set(Call(company.token, 5.0))
        return work(client)

    return await asyncio.to_thread(run)


def _ref(value: str) -> Ref:
    ref = Ref()
    ref.value = value
    return ref


async def test_sdk_objects_are_saved_read_queried_updated_and_voided(company: Company) -> None:
    def flow(qb: Any) -> dict[str, Any]:
        person = Customer()
        person.DisplayName = "Sdk Person"
        person.PrimaryEmailAddr = EmailAddress()
        person.PrimaryEmailAddr.Address = "sdk@example.com"
        person.save(qb=qb, request_id="sdk-customer-1")
        read = Customer.get(person.Id, qb=qb)
        read.CompanyName = "Sdk Co"
        read.save(qb=qb)  # a full update with the SyncToken it read
        found = Customer.filter(DisplayName="Sdk Person", qb=qb)
        every = Customer.all(qb=qb)
        items = Item.all(qb=qb)  # "SELECT *, Sku FROM Item ... MAXRESULTS 100"
        bill = Invoice()
        bill.CustomerRef = _ref(person.Id)
        line = SalesItemLine()
        line.Amount = 30
        line.SalesItemLineDetail = SalesItemLineDetail()
        line.SalesItemLineDetail.UnitPrice = 15
        line.SalesItemLineDetail.Qty = 2
        line.SalesItemLineDetail.ItemRef = _ref(items[0].Id)
        bill.Line.append(line)
        bill.save(qb=qb)
        paid = Payment()
        paid.CustomerRef = _ref(person.Id)
        paid.TotalAmt = 10
        applied = PaymentLine()
        applied.Amount = 10
        link = LinkedTxn()
        link.TxnId = bill.Id
        link.TxnType = "Invoice"
        applied.LinkedTxn.append(link)
        paid.Line.append(applied)
        paid.save(qb=qb)
        other = Invoice()
        other.CustomerRef = _ref(person.Id)
        other.Line.append(line)
        other.save(qb=qb)
        other.void(qb=qb)
        return {"read": Customer.get(person.Id, qb=qb), "found": found, "every": every,
                "bill": Invoice.get(bill.Id, qb=qb), "voided": Invoice.get(other.Id, qb=qb),
                "count": Customer.count(qb=qb)}  # fmt: skip

    out = await _sdk(company, flow)
    assert out["read"].SyncToken == "1" and out["read"].CompanyName == "Sdk Co"
    assert [c.DisplayName for c in out["found"]] == ["Sdk Person"] and len(out["every"]) == 1
    assert out["bill"].TotalAmt == 30 and out["bill"].Balance == 20
    assert out["voided"].TotalAmt == 0 and out["voided"].PrivateNote.startswith("Voided")
    assert out["count"] == 1


async def test_sdk_errors_carry_the_fault_code(company: Company) -> None:
    def flow(qb: Any) -> list[Any]:
        codes = []
        for _ in range(2):
            person = Customer()
            person.DisplayName = "Twice"
            try:
                person.save(qb=qb)
            except QuickbooksException as exc:
                codes.append(exc.error_code)
        try:
            Customer.get("999", qb=qb)
        except QuickbooksException as exc:
            codes.append(exc.error_code)
        return codes

    assert await _sdk(company, flow) == [6240, 610]


def test_the_simulators_property_list_is_the_xsds() -> None:
    for entity, names in XSD_PROPERTIES.items():
        xsd_type = schema().types[entity]
        assert names == {e.local_name for e in xsd_type.content.iter_elements()} | set(xsd_type.attributes)


async def test_company_info_is_served_to_tools_that_ask_whom_they_talk_to(company: Company) -> None:
    from quickbooks.objects.company_info import CompanyInfo

    info = await _sdk(company, lambda qb: CompanyInfo.get(company.sim.realm_id, qb=qb))
    assert info.CompanyName == "Sandbox Company"
    status, answer = await company.call("GET", f"/companyinfo/{company.sim.realm_id}")
    assert status == 200 and answer["CompanyInfo"]["Country"] == "US"
    assert [c["CompanyName"] for c in await company.query("select * from CompanyInfo")] == ["Sandbox Company"]


async def test_a_payment_voided_through_the_sdk_is_owed_again_on_its_invoice(company: Company) -> None:
    buyer = await company.create("Customer", {"DisplayName": "Void Payer"})
    bill = await company.create("Invoice", {"CustomerRef": {"value": buyer["Id"]}, "Line": [
        {"DetailType": "SalesItemLineDetail", "Amount": 90.0, "SalesItemLineDetail": {"UnitPrice": 90.0, "Qty": 1}}]})
    paid = await company.create("Payment", {"CustomerRef": {"value": buyer["Id"]}, "TotalAmt": 90.0, "Line": [
        {"Amount": 90.0, "LinkedTxn": [{"TxnId": bill["Id"], "TxnType": "Invoice"}]}]})

    def void(qb: Any) -> Any:
        payment = Payment.get(paid["Id"], qb=qb)
        payment.void(qb=qb)
        return Payment.get(paid["Id"], qb=qb)

    voided = await _sdk(company, void)
    assert voided.TotalAmt == 0 and voided.PrivateNote.startswith("Voided")
    status, answer = await company.call("GET", f"/invoice/{bill['Id']}")
    assert status == 200 and answer["Invoice"]["Balance"] == 90.0 and answer["Invoice"]["LinkedTxn"] == []
