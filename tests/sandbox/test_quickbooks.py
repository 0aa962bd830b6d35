"""QuickBooks Online simulator: every answer XSD-checked; names, SyncToken, invoices and payments, void, query,
CDC, batch, requestid replay, throttles, OAuth with rolling refresh tokens, signed webhooks."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json

from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.sandbox.quickbooks_support import Company, company, customer, invoice, payment

__all__ = ["company"]


async def test_a_customer_is_created_read_and_its_display_name_is_unique_regardless_of_case(company: Company) -> None:
    made = await company.create("Customer", customer("Ada Lovelace", "Ada@Example.com", GivenName="Ada"))
    assert made["SyncToken"] == "0" and made["Active"] is True and made["FullyQualifiedName"] == "Ada Lovelace"
    status, answer = await company.call("GET", f"/customer/{made['Id']}")
    assert status == 200 and answer["Customer"]["PrimaryEmailAddr"]["Address"] == "Ada@Example.com"
    status, answer = await company.call("POST", "/customer", body=customer("ada  LOVELACE"))
    assert status == 400
    error = answer["Fault"]["Error"][0]
    assert error["code"] == "6240" and error["Message"] == "Duplicate Name Exists Error"
    assert f"Id={made['Id']}" in error["Detail"]


async def test_a_sparse_update_needs_the_current_sync_token_and_a_stale_one_is_refused_5010(company: Company) -> None:
    made = await company.create("Customer", customer("Grace Hopper", "grace@navy.mil", CompanyName="Navy"))
    company.clock.advance(5)
    status, answer = await company.call(
        "POST", "/customer", body={"Id": made["Id"], "SyncToken": "0", "sparse": True, "CompanyName": "USN"})
    assert status == 200
    updated = answer["Customer"]
    assert updated["SyncToken"] == "1" and updated["CompanyName"] == "USN"
    assert updated["PrimaryEmailAddr"]["Address"] == "grace@navy.mil"  # sparse: the rest stays
    assert updated["MetaData"]["LastUpdatedTime"] > made["MetaData"]["LastUpdatedTime"]
    status, answer = await company.call(
        "POST", "/customer", body={"Id": made["Id"], "SyncToken": "0", "sparse": True, "CompanyName": "Old"})
    assert status == 400 and answer["Fault"]["Error"][0]["code"] == "5010"
    status, answer = await company.call("GET", f"/customer/{made['Id']}")
    assert answer["Customer"]["CompanyName"] == "USN"


async def test_invoice_lines_make_the_total_payments_lower_the_balance_and_link_both_ways(company: Company) -> None:
    buyer = await company.create("Customer", customer("Buyer One"))
    made = await company.create("Invoice", invoice(buyer["Id"], ("Consulting", 150.0, 2), ("Setup", 49.5, 1)))
    assert made["TotalAmt"] == 349.5 and made["Balance"] == 349.5 and made["DocNumber"] == "1001"
    assert [line["DetailType"] for line in made["Line"]] == ["SalesItemLineDetail"] * 2 + ["SubTotalLineDetail"]
    paid = await company.create("Payment", payment(buyer["Id"], 100.0, (made["Id"], 100.0)))
    assert paid["UnappliedAmt"] == 0
    status, answer = await company.call("GET", f"/invoice/{made['Id']}")
    after = answer["Invoice"]
    assert after["Balance"] == 249.5 and after["LinkedTxn"] == [{"TxnId": paid["Id"], "TxnType": "Payment"}]
    assert after["SyncToken"] == "1"  # the payment moved the invoice
    status, answer = await company.call("POST", "/payment", body=payment(buyer["Id"], 300.0, (made["Id"], 300.0)))
    assert status == 400 and answer["Fault"]["Error"][0]["code"] == "6000"  # more than the balance
    status, answer = await company.call("GET", f"/customer/{buyer['Id']}")
    assert answer["Customer"]["Balance"] == 249.5


async def test_void_zeroes_an_unpaid_invoice_and_is_refused_for_one_with_payments(company: Company) -> None:
    buyer = await company.create("Customer", customer("Void Tester"))
    open_one = await company.create("Invoice", invoice(buyer["Id"], ("Work", 80.0, 1)))
    status, answer = await company.call("POST", "/invoice", params={"operation": "void"},
                                        body={"Id": open_one["Id"], "SyncToken": open_one["SyncToken"]})
    assert status == 200
    voided = answer["Invoice"]
    assert voided["TotalAmt"] == 0 and voided["Balance"] == 0 and voided["PrivateNote"].startswith("Voided")
    paid = await company.create("Invoice", invoice(buyer["Id"], ("Work", 50.0, 1)))
    await company.create("Payment", payment(buyer["Id"], 50.0, (paid["Id"], 50.0)))
    status, answer = await company.call("GET", f"/invoice/{paid['Id']}")
    status, answer = await company.call("POST", "/invoice", params={"operation": "void"},
                                        body={"Id": paid["Id"], "SyncToken": answer["Invoice"]["SyncToken"]})
    assert status == 400 and answer["Fault"]["Error"][0]["code"] == "6000"


async def test_queries_page_filter_by_time_and_list_inactive_names_only_when_asked(company: Company) -> None:
    for n in range(5):
        await company.create("Customer", customer(f"Person {n}", f"p{n}@example.com"))
        company.clock.advance(10)
    first = await company.query("select * from Customer ORDERBY MetaData.LastUpdatedTime STARTPOSITION 1 MAXRESULTS 2")
    second = await company.query("SELECT * FROM Customer ORDERBY MetaData.LastUpdatedTime STARTPOSITION 3 MAXRESULTS 2")
    assert [c["DisplayName"] for c in first + second] == [f"Person {n}" for n in range(4)]
    stamp = first[1]["MetaData"]["LastUpdatedTime"]
    later = await company.query(f"select * from Customer where MetaData.LastUpdatedTime > '{stamp}'")
    assert [c["DisplayName"] for c in later] == ["Person 2", "Person 3", "Person 4"]
    by_mail = await company.query("select * from Customer where PrimaryEmailAddr = 'P3@EXAMPLE.com'")
    assert [c["DisplayName"] for c in by_mail] == ["Person 3"]
    gone = first[0]
    await company.call("POST", "/customer", body={"Id": gone["Id"], "SyncToken": gone["SyncToken"], "sparse": True,
                                                  "Active": False})  # fmt: skip
    assert len(await company.query("select * from Customer")) == 4
    assert len(await company.query("select * from Customer where Active in (true, false)")) == 5
    quoted = await company.create("Customer", customer("O'Brien & Sons"))
    assert [c["Id"] for c in await company.query(r"select * from Customer where DisplayName = 'O\'Brien & Sons'")] == [
        quoted["Id"]]
    status, answer = await company.call("POST", "/query", text="select * from Customer where Nope = '1'")
    assert status == 400 and answer["Fault"]["Error"][0]["code"] == "4001"


async def test_cdc_reports_changes_and_deletions_since_a_time_and_refuses_more_than_30_days(company: Company) -> None:
    buyer = await company.create("Customer", customer("Cdc Buyer"))
    bill = await company.create("Invoice", invoice(buyer["Id"], ("Work", 10.0, 1)))
    company.clock.advance(60)
    since = "2026-01-01T00:00:30Z"
    status, answer = await company.call("GET", "/cdc", params={"entities": "Customer,Invoice", "changedSince": since})
    assert status == 200 and answer["CDCResponse"][0]["QueryResponse"] == [{}, {}]
    status, answer = await company.call("POST", "/invoice", params={"operation": "delete"},
                                        body={"Id": bill["Id"], "SyncToken": bill["SyncToken"]})
    assert status == 200 and answer["Invoice"]["status"] == "Deleted"
    status, answer = await company.call("GET", "/cdc", params={"entities": "Invoice", "changedSince": since})
    rows = answer["CDCResponse"][0]["QueryResponse"][0]["Invoice"]
    assert [(r["Id"], r.get("status")) for r in rows] == [(bill["Id"], "Deleted")]
    company.clock.advance(31 * 86_400)
    company.token = company.sim.tokens.issue_access_token().access_token
    status, answer = await company.call("GET", "/cdc", params={"entities": "Invoice", "changedSince": since})
    assert status == 400 and "30 days" in answer["Fault"]["Error"][0]["Detail"]


async def test_batch_answers_each_operation_by_bid_and_takes_at_most_30(company: Company) -> None:
    taken = await company.create("Customer", customer("Taken Name"))
    items = [{"bId": "1", "operation": "create", "Customer": customer("Fresh Name")},
             {"bId": "2", "operation": "create", "Customer": customer("taken name")},
             {"bId": "3", "Query": "select * from Customer where DisplayName = 'Taken Name'"}]  # fmt: skip
    status, answer = await company.call("POST", "/batch", body={"BatchItemRequest": items})
    assert status == 200
    out = {item["bId"]: item for item in answer["BatchItemResponse"]}
    assert out["1"]["Customer"]["DisplayName"] == "Fresh Name"
    assert out["2"]["Fault"]["Error"][0]["code"] == "6240"
    assert out["3"]["QueryResponse"]["Customer"][0]["Id"] == taken["Id"]
    many = [{"bId": str(n), "operation": "create", "Customer": customer(f"C{n}")} for n in range(31)]
    status, answer = await company.call("POST", "/batch", body={"BatchItemRequest": many})
    assert status == 400 and "30" in answer["Fault"]["Error"][0]["Detail"]


async def test_a_repeated_requestid_gets_the_first_answer_and_writes_nothing_more(company: Company) -> None:
    first = await company.create("Customer", customer("Once Only"), requestid="syncd-0123456789abcdef0123")
    again = await company.create("Customer", customer("Once Only"), requestid="syncd-0123456789abcdef0123")
    assert again == first
    assert len(await company.query("select * from Customer where DisplayName = 'Once Only'")) == 1


async def test_ten_requests_a_second_then_429_until_the_next_second(company: Company) -> None:
    statuses = [(await company.call("GET", "/customer/1"))[0] for _ in range(11)]
    assert statuses[:10] == [400] * 10 and statuses[10] == 429  # customer 1 does not exist: 610 answers 400
    status, answer = await company.call("GET", "/customer/1")
    assert status == 429 and answer["Fault"]["Error"][0]["code"] == "3001"
    company.clock.advance(1)
    assert (await company.call("GET", "/customer/1"))[0] == 400


async def test_an_expired_or_unknown_token_is_refused_401(company: Company) -> None:
    status, answer = await company.call("GET", "/customer/1", token="qbo-at-nope")
    assert status == 401 and answer["Fault"]["type"] == "AuthenticationFault"
    company.sim.expire_tokens()
    assert (await company.call("GET", "/customer/1"))[0] == 401


async def test_refresh_rolls_the_refresh_token_and_the_old_one_lasts_a_day(company: Company) -> None:
    creds = company.sim.credentials(company.root)
    auth = "Basic " + base64.b64encode(f"{creds['client_id']}:{creds['client_secret']}".encode()).decode()
    url = company.root + "/oauth2/v1/tokens/bearer"

    async def refresh(token: str) -> tuple[int, dict[str, object]]:
        async with company.session.post(url, data={"grant_type": "refresh_token", "refresh_token": token},
                                        headers={"Authorization": auth}) as response:  # fmt: skip
            return response.status, await response.json()

    status, first = await refresh(creds["refresh_token"])
    assert status == 200 and first["expires_in"] == 3600 and first["refresh_token"] != creds["refresh_token"]
    assert (await company.call("GET", "/customer/1", token=str(first["access_token"])))[0] == 400
    status, _ = await refresh(creds["refresh_token"])
    assert status == 200  # still good within the day
    company.clock.advance(86_401)
    status, answer = await refresh(creds["refresh_token"])
    assert status == 400 and answer == {"error": "invalid_grant"}
    assert (await refresh(str(first["refresh_token"])))[0] == 200


async def test_changes_are_posted_as_names_only_signed_with_the_verifier_token(company: Company) -> None:
    received: list[tuple[bytes, str]] = []
    arrived = asyncio.Event()

    async def receive(request: web.Request) -> web.Response:
        received.append((await request.read(), request.headers.get("intuit-signature", "")))
        arrived.set()
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hook", receive)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        company.sim.set_webhook_targets([f"http://127.0.0.1:{server.port}/hook"])
        made = await company.create("Customer", customer("Hooked One"))
        await company.sim.drain_webhooks()
        await arrived.wait()
    finally:
        await server.close()
    body, sent = received[0]
    expected = base64.b64encode(hmac.new(company.sim.verifier_token.encode(), body, hashlib.sha256).digest()).decode()
    assert sent == expected
    notice = json.loads(body)["eventNotifications"][0]
    assert notice["realmId"] == company.sim.realm_id
    stamp = made["MetaData"]["LastUpdatedTime"]
    assert notice["dataChangeEvent"]["entities"] == [
        {"name": "Customer", "id": made["Id"], "operation": "Create", "lastUpdated": stamp}]


async def test_state_dumped_and_loaded_keeps_records_indexes_and_grants(company: Company) -> None:
    made = await company.create("Customer", customer("Kept Person", "kept@example.com"))
    state = json.loads(json.dumps(company.sim.dump_state()))
    company.sim.reset()
    assert await company.query("select * from Customer") == []
    company.sim.load_state(state)
    assert [c["Id"] for c in await company.query("select * from Customer where DisplayName = 'kept person'")] == [
        made["Id"]]
    status, answer = await company.call("POST", "/customer", body=customer("KEPT PERSON"))
    assert status == 400 and answer["Fault"]["Error"][0]["code"] == "6240"


async def test_entities_the_company_holds_none_of_answer_no_rows_and_unknown_ones_4001(company: Company) -> None:
    assert await company.query("select * from Vendor") == []
    status, answer = await company.call("POST", "/query", text="select count(*) from Bill")
    assert status == 200 and answer["QueryResponse"] == {"totalCount": 0}
    status, answer = await company.call("POST", "/query", text="select * from Spaceship")
    assert status == 400 and answer["Fault"]["Error"][0]["code"] == "4001"


async def test_entity_names_in_queries_are_case_sensitive(company: Company) -> None:
    status, answer = await company.call("POST", "/query", text="select * from customer")
    assert status == 400 and answer["Fault"]["Error"][0]["code"] == "4001"


async def test_a_payment_moved_to_another_invoice_moves_the_balances_and_a_refused_one_moves_nothing(
    company: Company,
) -> None:
    buyer = await company.create("Customer", customer("Payer Two"))
    first = await company.create("Invoice", invoice(buyer["Id"], ("A", 100.0, 1)))
    second = await company.create("Invoice", invoice(buyer["Id"], ("B", 60.0, 1)))
    paid = await company.create("Payment", payment(buyer["Id"], 50.0, (first["Id"], 50.0)))
    status, answer = await company.call("POST", "/payment", body={
        "Id": paid["Id"], "SyncToken": paid["SyncToken"], "sparse": True,
        "Line": [{"Amount": 70.0, "LinkedTxn": [{"TxnId": second["Id"], "TxnType": "Invoice"}]}], "TotalAmt": 70.0})
    assert status == 400 and answer["Fault"]["Error"][0]["code"] == "6000"  # 70 is more than B's 60
    balances = [company.sim.books.get("Invoice", i)["Balance"] for i in (first["Id"], second["Id"])]
    assert balances == [50.0, 60.0]  # nothing moved
    status, answer = await company.call("POST", "/payment", body={
        "Id": paid["Id"], "SyncToken": paid["SyncToken"], "sparse": True,
        "Line": [{"Amount": 50.0, "LinkedTxn": [{"TxnId": second["Id"], "TxnType": "Invoice"}]}]})
    assert status == 200
    after = [company.sim.books.get("Invoice", i) for i in (first["Id"], second["Id"])]
    assert [i["Balance"] for i in after] == [100.0, 10.0]
    assert after[0]["LinkedTxn"] == [] and after[1]["LinkedTxn"] == [{"TxnId": paid["Id"], "TxnType": "Payment"}]
    status, answer = await company.call("POST", "/invoice", body={
        "Id": second["Id"], "SyncToken": after[1]["SyncToken"], "sparse": True,
        "Line": [{"DetailType": "SalesItemLineDetail", "Amount": 40.0,
                  "SalesItemLineDetail": {"UnitPrice": 40.0, "Qty": 1}}]})  # fmt: skip
    assert status == 400  # less than the 50 paid on it
    status, answer = await company.call("POST", "/invoice", body={
        "Id": second["Id"], "SyncToken": after[1]["SyncToken"], "sparse": True,
        "Line": [{"DetailType": "SalesItemLineDetail", "Amount": 80.0,
                  "SalesItemLineDetail": {"UnitPrice": 80.0, "Qty": 1}}]})  # fmt: skip
    assert status == 200 and (answer["Invoice"]["TotalAmt"], answer["Invoice"]["Balance"]) == (80.0, 30.0)
