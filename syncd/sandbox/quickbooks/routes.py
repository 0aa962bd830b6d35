"""The QuickBooks Online v3 API under `/v3/company/{realm}`: query, create/update/read/void/delete per entity,
CDC and batch; the guard in front of them (bearer token, company, 500/min, 10/s and batch 40/min limits); and
`requestid` replay, which answers a repeated write with the first answer instead of writing again."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from aiohttp import web

from syncd.sandbox.control_plane import Handler
from syncd.sandbox.oauth_tokens import TokenStore
from syncd.sandbox.quickbooks import faults
from syncd.sandbox.quickbooks.books import ENTITIES, Books, parse_time, utc_text
from syncd.sandbox.quickbooks.faults import QboFault
from syncd.sandbox.quickbooks.query import QueryError, parse
from syncd.sandbox.quota import QuotaCounter

PREFIX = "/v3/company/{realm}"
MAX_BATCH = 30
MAX_CDC = 1000
CDC_LOOKBACK_S = 30 * 86_400
REPLAYS_KEPT = 20_000
BATCH_PATH_SUFFIX = "/batch"
# Entities of the API the simulated company holds none of: queries on them answer no rows, as an empty company's
# would (third-party readers query them all), rather than the 4001 an unknown entity gets.
EMPTY_ENTITIES = frozenset({
    "Account", "Attachable", "Bill", "BillPayment", "Class", "CreditMemo", "Department", "Deposit", "Employee",
    "Estimate", "JournalEntry", "PaymentMethod", "Purchase", "PurchaseOrder", "RefundReceipt", "SalesReceipt",
    "TaxCode", "TaxRate", "Term", "TimeActivity", "Transfer", "Vendor", "VendorCredit",
})  # fmt: skip


class Limits:
    """The company's throttles: 500 requests a minute, 10 a second, 40 batch requests a minute."""

    def __init__(self, clock: Callable[[], float]) -> None:
        big = 10**12  # no daily cap on QBO
        self.minute = QuotaCounter(window_s=60, window_max=500, daily_cap=big, clock=clock)
        self.second = QuotaCounter(window_s=1, window_max=10, daily_cap=big, clock=clock)
        self.batch = QuotaCounter(window_s=60, window_max=40, daily_cap=big, clock=clock)

    def counters(self) -> list[QuotaCounter]:
        """Each counter, for the control plane's clear()."""
        return [self.minute, self.second, self.batch]


def fault_response(error: QboFault, now: float) -> web.Response:
    """A Fault answer with its HTTP status."""
    return web.Response(status=error.status, text=json.dumps({"Fault": error.fault(), "time": utc_text(now)}),
                        content_type="application/json")  # fmt: skip


def throttled(now: float) -> web.Response:
    """429 as QBO throttles: wait a minute (no Retry-After header is sent)."""
    return fault_response(QboFault(faults.THROTTLE_EXCEEDED, "message=ThrottleExceeded; errorCode=003001; "
                                   "statusCode=429", "The request limit was reached.", status=429,
                                   kind="ThrottlingFault"), now)  # fmt: skip


class QboApi:
    """Handlers bound to the company (`books`), its token store, limits and change notifier."""

    def __init__(self, books: Callable[[], Books], tokens: Callable[[], TokenStore], realm: Callable[[], str],
                 limits: Limits, clock: Callable[[], float],
                 notify: Callable[[str, str, str, str], None], on_throttled: Callable[[], None]) -> None:
        self._books = books
        self._tokens = tokens
        self._realm = realm
        self.limits = limits
        self.clock = clock
        self._notify = notify
        self._on_throttled = on_throttled
        self.replays: OrderedDict[str, tuple[int, str]] = OrderedDict()

    def add_to(self, app: web.Application) -> None:
        """Register the API routes (one per entity, so stats count calls by entity) and the guard."""
        app.middlewares.append(self.guard)
        routes = [
            web.get(PREFIX + "/query", self.query),
            web.post(PREFIX + "/query", self.query),
            web.get(PREFIX + "/cdc", self.cdc),
            web.post(PREFIX + BATCH_PATH_SUFFIX, self.batch),
        ]
        routes.append(web.get(PREFIX + "/companyinfo/{id}", self.company_info))
        for entity in ENTITIES:
            path = f"{PREFIX}/{entity.lower()}"
            routes.append(web.post(path, self._writer(entity)))
            routes.append(web.get(path + "/{id}", self._reader(entity)))
        app.add_routes(routes)

    # --- guard ---

    @web.middleware
    async def guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Bearer token, company id and throttles, in that order, for every API path."""
        if not request.path.startswith("/v3/"):
            return await handler(request)
        now = self.clock()
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if not token or self._tokens().check(token) != "ok":
            return fault_response(QboFault(faults.AUTHENTICATION_FAILED, "message=AuthenticationFailed; "
                                           "errorCode=003200; statusCode=401", "Token expired or invalid",
                                           status=401, kind="AuthenticationFault"), now)  # fmt: skip
        realm = request.match_info.get("realm")
        if realm is not None and realm != self._realm():
            return fault_response(QboFault("3100", "message=ApplicationAuthorizationFailed; errorCode=003100; "
                                           "statusCode=403", f"no access to company {realm}", status=403,
                                           kind="AuthorizationFault"), now)  # fmt: skip
        decisions = [self.limits.minute.take(), self.limits.second.take()]
        if request.path.endswith(BATCH_PATH_SUFFIX):
            decisions.append(self.limits.batch.take())
        if not all(d.allowed for d in decisions):
            self._on_throttled()
            return throttled(now)
        return await handler(request)

    # --- answers ---

    def _json(self, payload: dict[str, Any], status: int = 200) -> web.Response:
        payload["time"] = utc_text(self.clock())
        return web.Response(status=status, text=json.dumps(payload), content_type="application/json")

    async def _body(self, request: web.Request) -> Any:
        text = await request.text()
        try:
            return json.loads(text) if text.strip() else {}
        except json.JSONDecodeError:
            raise QboFault("2010", "Request has invalid or unsupported property",
                           "Error parsing object: the body is not valid JSON") from None  # fmt: skip

    async def _replayed(self, request: web.Request, work: Callable[[], Any]) -> web.Response:
        """Run a write once per `requestid`: the same id again gets the first answer, whatever it was."""
        request_id = request.query.get("requestid")
        key = f"{request.path}?{request.query.get('operation', '')}#{request_id}"
        if request_id is not None and key in self.replays:
            status, text = self.replays[key]
            return web.Response(status=status, text=text, content_type="application/json")
        try:
            response: web.Response = await work()
        except QboFault as error:
            response = fault_response(error, self.clock())
        except QueryError as error:
            response = fault_response(QboFault(error.code, "Invalid query", str(error), kind="ValidationFault"),
                                      self.clock())  # fmt: skip
        if request_id is not None and response.status < 500:
            self.replays[key] = (response.status, response.text or "")
            while len(self.replays) > REPLAYS_KEPT:
                self.replays.popitem(last=False)
        return response

    # --- handlers ---

    async def query(self, request: web.Request) -> web.Response:
        """GET ?query= or POST with the query as application/text."""
        text = request.query.get("query") if request.method == "GET" else await request.text()
        try:
            return self._json({"QueryResponse": self._run_query(text or "")})
        except QueryError as error:
            kind = "QueryParserError" if error.code == faults.QUERY_PARSE else "ValidationFault"
            return fault_response(QboFault(error.code, "Invalid query" if error.code != faults.QUERY_PARSE
                                           else "Error parsing query", str(error), kind=kind), self.clock())

    def _company(self) -> dict[str, Any]:
        """The company's CompanyInfo (what tools read first to learn whom they talk to)."""
        realm = self._realm()
        return {
            "domain": "QBO", "sparse": False, "Id": "1", "SyncToken": "0",
            "MetaData": {"CreateTime": "2025-01-01T00:00:00-08:00", "LastUpdatedTime": "2025-01-01T00:00:00-08:00"},
            "CompanyName": "Sandbox Company", "LegalName": "Sandbox Company", "Country": "US",
            "CompanyAddr": {"Line1": "2600 Marine Way", "City": "Mountain View", "CountrySubDivisionCode": "CA",
                            "PostalCode": "94043", "Country": "US"},
            "Email": {"Address": "noreply@quickbooks.example"}, "FiscalYearStartMonth": "January",
            "SupportedLanguages": "en", "DefaultTimeZone": "America/Los_Angeles",
            "NameValue": [{"Name": "OfferingSku", "Value": "QuickBooks Online Plus"},
                          {"Name": "RealmId", "Value": realm}],
        }  # fmt: skip

    async def company_info(self, request: web.Request) -> web.Response:
        """GET /companyinfo/{realm}: the company itself."""
        if request.match_info["id"] not in (self._realm(), "1"):
            return fault_response(faults.not_found("CompanyInfo", request.match_info["id"]), self.clock())
        return self._json({"CompanyInfo": self._company()})

    def _run_query(self, text: str) -> dict[str, Any]:
        parsed = parse(text)
        if parsed.entity == "CompanyInfo":
            return {"totalCount": 1} if parsed.count else {"CompanyInfo": [self._company()], "startPosition": 1,
                                                           "maxResults": 1}  # fmt: skip
        if parsed.entity in EMPTY_ENTITIES:
            return {"totalCount": 0} if parsed.count else {}
        rows, total = self._books().query(parsed)
        if parsed.count:
            return {"totalCount": total}
        if not rows:
            return {}
        return {parsed.entity: rows, "startPosition": parsed.start, "maxResults": len(rows)}

    def _reader(self, entity: str) -> Callable[[web.Request], Any]:
        async def read(request: web.Request) -> web.Response:
            try:
                return self._json({entity: self._books().get(entity, request.match_info["id"])})
            except QboFault as error:
                return fault_response(error, self.clock())

        return read

    def _writer(self, entity: str) -> Callable[[web.Request], Any]:
        async def write(request: web.Request) -> web.Response:
            async def work() -> web.Response:
                body = await self._body(request)
                operation = request.query.get("operation")
                if operation == "update" and request.query.get("include") == "void":
                    operation = "void"  # how a Payment is voided: POST /payment?operation=update&include=void
                answer, operation = self._apply(entity, operation, body)
                self._changed(entity, answer, operation)
                return self._json({entity: answer})

            return await self._replayed(request, work)

        return write

    def _apply(self, entity: str, operation: str | None, body: Any) -> tuple[dict[str, Any], str]:
        """One write: create (no Id), update (Id; `operation=update` optional), void or delete."""
        books = self._books()
        if not isinstance(body, dict):
            raise faults.unsupported(entity)
        if operation == "void":
            if entity == "Invoice":
                return books.void_invoice(body), "Void"
            if entity == "Payment":
                return books.void_payment(body), "Void"
            raise faults.unsupported("operation")
        if operation == "delete":
            return books.delete(body, entity), "Delete"
        if operation not in (None, "update", "create"):
            raise faults.unsupported("operation")
        if "Id" in body and operation != "create":
            return books.update(body, entity), "Update"
        return books.create(body, entity), "Create"

    def _changed(self, entity: str, answer: dict[str, Any], operation: str) -> None:
        stamp = answer.get("MetaData", {}).get("LastUpdatedTime") or utc_text(self.clock())
        self._notify(entity, str(answer["Id"]), operation, stamp)

    async def cdc(self, request: web.Request) -> web.Response:
        """Changes of the named entities since `changedSince` (at most 30 days back), 1,000 objects at most."""
        now = self.clock()
        names = [n.strip() for n in request.query.get("entities", "").split(",") if n.strip()]
        since_text = request.query.get("changedSince", "")
        try:
            since = parse_time(since_text)
        except QueryError:
            return fault_response(faults.required("changedSince"), now)
        if not names:
            return fault_response(faults.required("entities"), now)
        if since < now - CDC_LOOKBACK_S:
            return fault_response(QboFault(faults.UNSUPPORTED_PROPERTY, "Request has invalid or unsupported "
                                           "property", "changedSince cannot be more than 30 days in the past",
                                           element="changedSince"), now)  # fmt: skip
        books = self._books()
        left = MAX_CDC
        responses = []
        for name in names:
            entity = next((e for e in ENTITIES if e.lower() == name.lower()), None)
            if entity is None:
                return fault_response(faults.unsupported(f"entities={name}"), now)
            rows = books.changed_since(entity, since)[:left]
            left -= len(rows)
            found: dict[str, Any] = {}
            if rows:
                found = {entity: rows, "startPosition": 1, "maxResults": len(rows)}
            responses.append(found)
        return self._json({"CDCResponse": [{"QueryResponse": responses}]})

    async def batch(self, request: web.Request) -> web.Response:
        """Up to 30 operations (create, update, delete, query), each answered on its own by `bId`."""

        async def work() -> web.Response:
            body = await self._body(request)
            items = body.get("BatchItemRequest") if isinstance(body, dict) else None
            if not isinstance(items, list) or not items:
                raise faults.required("BatchItemRequest")
            if len(items) > MAX_BATCH:
                raise QboFault(faults.UNSUPPORTED_PROPERTY, "Request has invalid or unsupported property",
                               f"Batch size {len(items)} exceeds the maximum of {MAX_BATCH}")  # fmt: skip
            return self._json({"BatchItemResponse": [self._batch_item(item) for item in items]})

        return await self._replayed(request, work)

    def _batch_item(self, item: Any) -> dict[str, Any]:
        bid = str(item.get("bId", "")) if isinstance(item, dict) else ""
        try:
            if not isinstance(item, dict) or not bid:
                raise faults.required("bId")
            if "Query" in item:
                return {"bId": bid, "QueryResponse": self._run_query(str(item["Query"]))}
            entity = next((e for e in ENTITIES if e in item), None)
            if entity is None:
                raise faults.required("entity")
            operation = item.get("operation", "create")
            if operation == "create" and isinstance(item[entity], dict) and "Id" in item[entity]:
                raise faults.unsupported("Id")
            answer, done = self._apply(entity, operation, item[entity])
            self._changed(entity, answer, done)
            return {"bId": bid, entity: answer}
        except QboFault as error:
            return {"bId": bid, "Fault": error.fault()}
        except QueryError as error:
            return {"bId": bid, "Fault": QboFault(error.code, "Invalid query", str(error)).fault()}
