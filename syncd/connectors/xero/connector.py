"""`XeroConnector`: contacts, invoices (ACCREC, with line items), payments and items of one Xero organisation."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any
from urllib.parse import urlencode

from syncd.connectors.base import (
    ActionField,
    ChangeEvent,
    Create,
    Deletion,
    FieldInfo,
    Page,
    Record,
    Update,
    WebhookRequest,
    WriteOutcome,
)
from syncd.connectors.ratelimit import Budget, RateLimiter
from syncd.connectors.recent_reads import RecentReads
from syncd.connectors.record_locks import RecordLocks
from syncd.connectors.retry import RetryPolicy
from syncd.connectors.tokens import Grant, TokenManager, TokenStorage
from syncd.connectors.xero import webhooks
from syncd.connectors.xero.settings import XeroConnection
from syncd.connectors.xero.transport import XeroTransport, validation_messages
from syncd.connectors.xero.values import (
    COLLECTIONS,
    CONTACTS,
    INVOICES,
    LINE_FIELDS,
    PAYMENTS,
    TYPED_LISTS,
    condition,
    flatten,
    modified_at,
    unflatten,
)
from syncd.connectors.xero.values import (
    Collection as XeroCollection,
)
from syncd.errors import (
    AuthError,
    BudgetSpentError,
    ConnectorError,
    FatalError,
    NameTakenError,
    NotFoundError,
    SkippableError,
    UnknownOutcomeError,
)
from syncd.logs import get_logger
from syncd.textkeys import ascii_lower

log = get_logger(__name__)

# Xero's documented limits per organisation: 60 calls a minute, 5,000 a day (5 at once: max_concurrency).
DEFAULT_BUDGET = Budget(window_s=60.0, window_max=60, daily_cap=5_000)
# A minute refusal asks for up to 60 s, waited out here; a spent day goes up to the scheduler.
DEFAULT_POLICY = RetryPolicy(attempts=6, initial_s=0.5, max_s=65.0, jitter_s=0.5)
MAX_PAGE = 1000  # Xero's largest pageSize
BATCH = 50  # elements per create/update call (Xero advises at most 50 per request)
LOOKUP_CHUNK = 20  # equalities OR-ed in one `where` (the URL stays short)
STAMP = timedelta(milliseconds=1)
SECOND = timedelta(seconds=1)
CREATE_ROUNDS = 5
STATUS_CACHE = 10_000
INVOICE_ACTIONS = {"void": "VOIDED", "voided": "VOIDED", "sent": "AUTHORISED", "authorised": "AUTHORISED",
                   "approved": "AUTHORISED", "submitted": "SUBMITTED", "draft": "DRAFT", "deleted": "DELETED"}
CONTACT_ACTIONS = {"inactive": "ARCHIVED", "archived": "ARCHIVED", "active": "ACTIVE"}
NAME_TAKEN = "already assigned to another contact"
NOT_EDITABLE = "not of valid status for modification"


def _now() -> datetime:
    return datetime.now(UTC)


def idempotency_key(reference: str, body: Any) -> str:
    """The `Idempotency-Key` of a create: its reference(s) and a digest of the body, so that the same create sent
    again (a retry after a lost answer, or a crash between create and link) replays Xero's first answer instead of
    making a second record, while a changed request (another name after a refusal) is a new one."""
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:24]
    return f"{reference[:100]}-{digest}"


def write_key(record_id: str) -> str:
    """The `Idempotency-Key` of an update or status move: new for each intent (the same value later is a new
    write, never a replay of an old answer), kept across the retries of that one intent."""
    return f"{record_id[:80]}-{uuid.uuid4().hex}"


class XeroConnector:
    """One Xero organisation through xero-python, paced by its rate limiter, with one token manager."""

    system = "xero"
    stamp_resolution = STAMP
    create_batch = BATCH
    # An invoice is created a draft; it is approved (AUTHORISED) or voided by a status write (`act`).
    action_fields: Mapping[str, ActionField] = MappingProxyType({"Invoices": ActionField("Status", "DRAFT")})
    # Xero wants a delivery acknowledged by a 200 with no body (its intent-to-receive check insists on it).
    bare_acknowledgement = True

    def __init__(self, name: str, settings: XeroConnection, *, storage: TokenStorage | None = None,
                 policy: RetryPolicy | None = None, page_size: int = MAX_PAGE) -> None:
        self.name = name
        self.settings = settings
        self.limiter = RateLimiter(name, DEFAULT_BUDGET.configured(settings.rate_limit))
        self.policy = policy or DEFAULT_POLICY
        self.page_size = max(1, min(page_size, MAX_PAGE))
        self.tokens = TokenManager(
            name, self._refresh, storage=storage,
            refresh_token=settings.refresh_token.get_secret_value() if settings.refresh_token else None,
        )  # fmt: skip
        self._transport: XeroTransport | None = None
        self._tenant: str | None = settings.tenant_id
        self._tenant_lock = asyncio.Lock()
        # An address or phone entry is sent whole, completed from a read: one writer per contact at a time.
        self._typed_entries_written = RecordLocks()
        # Contacts just read in full (the engine's check before a write), by lower-case id: the write completes
        # its entries from them instead of reading the same contacts again.
        self._typed_read = RecentReads[Record]()
        # Each invoice's status as last read, so voiding a draft goes straight to DELETED (Xero voids only
        # approved invoices); bounded, oldest first out.
        self._invoice_status: dict[str, str] = {}

    # --- lifecycle ---

    async def start(self) -> None:
        """Build the SDK clients and the thread pool (the token is fetched on first use)."""
        if self._transport is None:
            self._transport = XeroTransport(self.name, self.settings, self.tokens, self.limiter, self.policy)

    async def close(self) -> None:
        """Release the thread pool and the connection pool."""
        if self._transport is not None:
            self._transport.close()
        self._transport = None

    @property
    def clock_offset(self) -> timedelta:
        """How far Xero's clock runs from ours, as its last answer said."""
        return self._transport.server_clock.offset if self._transport is not None else timedelta(0)

    async def _http(self) -> XeroTransport:
        await self.start()
        assert self._transport is not None
        return self._transport

    async def _refresh(self, refresh_token: str) -> Grant:
        return await (await self._http()).refresh(refresh_token)

    # --- OAuth for `syncd auth` ---

    def authorize_url(self, redirect_uri: str, state: str) -> str:
        """Xero's consent URL (it redirects back with `code` and `state`); `offline_access` brings a refresh
        token."""
        query = urlencode({"response_type": "code", "client_id": self.settings.client_id,
                           "redirect_uri": redirect_uri, "scope": " ".join(self.settings.scopes), "state": state})
        return f"{self.settings.authorize_url}?{query}"

    async def exchange_code(self, code: str, redirect_uri: str) -> Grant:
        """Trade the code from the redirect for tokens; the token manager uses them from now on."""
        grant = await (await self._http()).exchange_code(code, redirect_uri)
        if not grant.refresh_token:
            raise AuthError("Xero issued no refresh token: add offline_access to the connection's scopes",
                            connection=self.name)  # fmt: skip
        self.tokens.reauthorised(grant)
        return grant

    async def tenant(self) -> str:
        """The organisation's `xero-tenant-id`: from the settings, else the one organisation the grant reaches."""
        if self._tenant is not None:
            return self._tenant
        async with self._tenant_lock:
            if self._tenant is None:
                http = await self._http()
                answer = await http.call("GET /connections", lambda api: api.get_connections(**http.raw),
                                         idempotent=True, identity=True)  # fmt: skip
                tenants = [c for c in answer.body if isinstance(c, Mapping) and c.get("tenantType") == "ORGANISATION"]
                if len(tenants) != 1:
                    names = ", ".join(f"{c.get('tenantName')} ({c.get('tenantId')})" for c in tenants) or "none"
                    raise FatalError(f"set tenant_id: the grant reaches {len(tenants)} organisations: {names}",
                                     connection=self.name)  # fmt: skip
                self._tenant = str(tenants[0]["tenantId"])
                log.info("xero tenant found", connection=self.name, tenant_id=self._tenant)
        return self._tenant

    # --- reading ---

    def objects(self) -> Sequence[str]:
        """Contacts, Invoices, Payments, Items."""
        return tuple(COLLECTIONS)

    def _collection(self, obj: str) -> XeroCollection:
        found = COLLECTIONS.get(obj)
        if found is None:
            raise FatalError(f"Xero has no object {obj!r}; expected one of {', '.join(COLLECTIONS)}",
                             connection=self.name)  # fmt: skip
        return found

    def _record(self, coll: XeroCollection, raw: Mapping[str, Any]) -> Record:
        if coll is INVOICES and raw.get("Status"):
            self._note_status(str(raw[coll.id_key]), str(raw["Status"]))
        fields = flatten(raw)
        deleted = raw.get("Status") == "DELETED" or raw.get("ContactStatus") == "ARCHIVED"
        return Record(system=self.system, object=coll.object, id=str(raw[coll.id_key]), fields=fields,
                      modified_at=modified_at(raw), deleted=deleted)  # fmt: skip

    def _note_status(self, invoice_id: str, status: str) -> None:
        self._invoice_status.pop(invoice_id, None)
        self._invoice_status[invoice_id] = status
        while len(self._invoice_status) > STATUS_CACHE:
            self._invoice_status.pop(next(iter(self._invoice_status)))

    async def _list(self, coll: XeroCollection, *, since: datetime | None = None, where: str | None = None,
                    page: int = 1, page_size: int | None = None, ids: Sequence[str] = ()) -> tuple[
            list[dict[str, Any]], bool, datetime | None]:
        """One list page (rows, whether more follow, the server's time of the answer)."""
        http = await self._http()
        tenant = await self.tenant()
        kw: dict[str, Any] = {**http.raw, "order": "UpdatedDateUTC ASC"}
        if since is not None:
            kw["if_modified_since"] = since
        if where:
            kw["where"] = where
        if coll.paged:
            kw["page"] = page
            kw["page_size"] = page_size or self.page_size
        if ids and coll.by_ids:
            kw[coll.by_ids] = list(ids)
        if coll is CONTACTS:
            kw["include_archived"] = True
        method = f"get_{coll.object.lower()}"
        answer = await http.call(f"GET {coll.object}", lambda api: getattr(api, method)(tenant, **kw), idempotent=True)
        rows = [r for r in answer.body.get(coll.object) or [] if isinstance(r, dict)]
        pagination = answer.body.get("pagination")
        more = coll.paged and isinstance(pagination, Mapping) and int(pagination.get("pageCount") or 0) > page
        return rows, bool(more), answer.server_time

    async def changes(
        self, object: str, since: datetime | None, overlap: timedelta, expected: int = 0
    ) -> AsyncIterator[Page]:
        """Records modified after `since - overlap` (`If-Modified-Since`), oldest first, whole (paged lists carry
        line items), at the largest page size. Each page restarts from the last stamp read, so records edited
        during the read (which move to the end) are never skipped; page numbers only inside one stamp."""
        coll = self._collection(object)
        low = None if since is None else since - overlap
        page = 1
        seen: dict[str, datetime] = {}
        server_started: datetime | None = None
        cursor = low or datetime.fromtimestamp(0, UTC)
        while True:
            rows, more, answered = await self._list(coll, since=low, page=page)
            if server_started is None and answered is not None:
                server_started = answered
            ceiling = (server_started or _now() + self.clock_offset) - SECOND
            records = []
            for row in rows:
                record = self._record(coll, row)
                if low is not None and record.modified_at <= low - STAMP:
                    continue  # a server that ignores the header: drop what is older than asked
                if seen.get(record.id, datetime.min.replace(tzinfo=UTC)) >= record.modified_at:
                    continue
                seen[record.id] = record.modified_at
                records.append(record)
            records.sort(key=lambda r: r.modified_at)
            if not more:
                # Everything modified before the first answer has been listed: the cursor may go up to it, by
                # Xero's clock (stamps and the header compare on it), a second short for its whole-second Date.
                yield Page(records, max(cursor, ceiling))
                return
            top = max(modified_at(r) for r in rows)
            if low is None or top - STAMP > low:
                low, page = top - STAMP, 1
            else:
                page += 1  # a whole page in one millisecond: page numbers are the only way on
            cursor = max(cursor, min(top - STAMP, ceiling))
            if records:
                yield Page(records, cursor)

    async def get_many(self, object: str, ids: Sequence[str]) -> Mapping[str, Record]:
        """Full records by id, through the list (`IDs`, or `where` on the id) in chunks: one call per chunk."""
        coll = self._collection(object)
        wanted = list(dict.fromkeys(ids))
        found: dict[str, Record] = {}
        for start in range(0, len(wanted), LOOKUP_CHUNK):
            chunk = wanted[start : start + LOOKUP_CHUNK]
            sent_at = self._typed_read.now()
            if coll.by_ids:
                rows = await self._all_rows(coll, ids=chunk)
            else:
                rows = await self._all_rows(coll, where=" OR ".join(condition(coll.id_key, i) for i in chunk))
            for row in rows:
                record = self._record(coll, row)
                found[record.id] = record
                if coll is CONTACTS:
                    self._typed_read.keep(record.id.lower(), record, sent_at)
        lowered = {k.lower(): v for k, v in found.items()}
        return {i: lowered[i.lower()] for i in wanted if i.lower() in lowered}

    async def _all_rows(self, coll: XeroCollection, *, where: str | None = None, ids: Sequence[str] = ()
                        ) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        page = 1
        while True:
            found, more, _ = await self._list(coll, where=where, ids=ids, page=page)
            rows += found
            if not more:
                return rows
            page += 1

    async def find_by_field(self, object: str, field: str, values: Sequence[str]) -> Mapping[str, list[Record]]:
        """Exact matches per value through `where` equalities OR-ed in chunks (e-mail compared
        case-insensitively, A-Z only); values are quoted literals, never raw filter text."""
        coll = self._collection(object)
        wanted = list(dict.fromkeys(values))
        fold = field == "EmailAddress"

        def key(value: Any) -> str | None:
            if value is None:
                return None
            return ascii_lower(str(value)) if fold else str(value)

        result: dict[str, list[Record]] = {v: [] for v in wanted}
        for start in range(0, len(wanted), LOOKUP_CHUNK):
            chunk = wanted[start : start + LOOKUP_CHUNK]
            rows = await self._all_rows(coll, where=" OR ".join(condition(field, v) for v in chunk))
            for row in rows:
                record = self._record(coll, row)
                have = key(record.fields.get(field))
                for value in chunk:
                    if have is not None and have == key(value):
                        result[value].append(record)
        return result

    async def deletions(self, object: str, since: datetime) -> Sequence[Deletion] | None:
        """None: Xero lists no deletions; a deleted invoice or payment and an archived contact stay listed with
        their status (`Record.deleted`)."""
        self._collection(object)
        return None

    async def describe(self, object: str) -> Mapping[str, FieldInfo]:
        """The documented fields syncd maps (Xero has no describe API), with line items' fields."""
        coll = self._collection(object)
        fields = {
            name: FieldInfo(name=name, type=kind, createable=name in coll.writable, updateable=name in coll.writable,
                            required=name in coll.required, unique=name in (coll.unique_name, coll.reference))
            for name, kind in coll.fields.items()
        }  # fmt: skip
        for name, subs in LINE_FIELDS.items():
            if name in coll.fields:
                for sub, kind in subs.items():
                    fields[f"{name}.{sub}"] = FieldInfo(name=f"{name}.{sub}", type=kind)
        return fields

    # --- writing ---

    def _element(self, coll: XeroCollection, fields: Mapping[str, Any]) -> dict[str, Any]:
        body = unflatten(fields)
        if coll is INVOICES:
            body.setdefault("Type", "ACCREC")  # syncd invoices customers (sales invoices)
            account = self.settings.sales_account_code
            for line in body.get("LineItems") or []:
                if account and not line.get("AccountCode") and not line.get("ItemCode"):
                    line["AccountCode"] = account
        if coll is PAYMENTS and "Account" not in body:
            raise SkippableError("a payment needs Account.Code (the bank account it was paid into)",
                                 connection=self.name)  # fmt: skip
        return body

    async def create_many(self, object: str, items: Sequence[Create]) -> Sequence[WriteOutcome]:
        """PUT in batches of 50 with `summarizeErrors=false` (one outcome per element) and an `Idempotency-Key`
        from the batch's references: a retry after a lost answer gets Xero's first answer, not a second record."""
        coll = self._collection(object)
        outcomes: list[WriteOutcome] = []
        for start in range(0, len(items), BATCH):
            outcomes += await self._create_batch(coll, items[start : start + BATCH])
        return outcomes

    async def _create_batch(self, coll: XeroCollection, items: Sequence[Create]) -> list[WriteOutcome]:
        results: list[WriteOutcome | None] = [None] * len(items)
        elements: list[tuple[int, dict[str, Any]]] = []
        for index, item in enumerate(items):
            try:
                elements.append((index, self._element(coll, item.fields)))
            except SkippableError as exc:
                results[index] = WriteOutcome(None, error=exc)
        if elements:
            body = [e for _, e in elements]
            key = idempotency_key("+".join(items[i].reference for i, _ in elements), body)
            answered = await self._write(coll, "create", body, key, record=items[elements[0][0]].reference)
            for (index, sent), row in zip(elements, answered, strict=True):
                results[index] = await self._outcome(coll, sent, row, None)
        return [r if r is not None else WriteOutcome(None) for r in results]

    async def _write(self, coll: XeroCollection, verb: str, body: list[dict[str, Any]], key: str,
                     record: str | None) -> list[Mapping[str, Any]]:
        """One batched write; the same request (same `Idempotency-Key`) again after a lost answer, a few times."""
        http = await self._http()
        tenant = await self.tenant()
        method = f"{'create' if verb == 'create' else 'update_or_create'}_{coll.object.lower()}"
        wrapped = {coll.object: body}

        def invoke(api: Any) -> Any:
            return getattr(api, method)(tenant, wrapped, summarize_errors=False, idempotency_key=key, **http.raw)

        for _round in range(CREATE_ROUNDS):
            try:
                # A lost answer comes back as UnknownOutcomeError and the same request (same key) goes again here,
                # so Xero replays what it did; after CREATE_ROUNDS the outcome stays unknown, said as such.
                answer = await http.call(f"{'PUT' if verb == 'create' else 'POST'} {coll.object}", invoke,
                                         idempotent=False, record=record)  # fmt: skip
            except UnknownOutcomeError:
                continue
            rows = answer.body.get(coll.object) or []
            if len(rows) != len(body):
                raise FatalError(f"Xero answered {len(rows)} {coll.object} for {len(body)} sent",
                                 connection=self.name, record=record)  # fmt: skip
            return list(rows)
        raise UnknownOutcomeError(f"{verb} of {coll.object} got no answer {CREATE_ROUNDS} times",
                                  connection=self.name, record=record)  # fmt: skip

    async def _outcome(self, coll: XeroCollection, sent: Mapping[str, Any], row: Mapping[str, Any],
                       own_id: str | None) -> WriteOutcome:
        """One element's outcome from its row in a batch answer (refusals typed, a taken name as NameTakenError)."""
        messages = validation_messages(row)
        if row.get("HasValidationErrors") or messages:
            message = "; ".join(messages) or "refused by Xero"
            if coll.unique_name and any(NAME_TAKEN in m for m in messages):
                return WriteOutcome(own_id, error=await self._name_taken(coll, sent, message, own_id))
            return WriteOutcome(own_id, error=SkippableError(message, connection=self.name, status=400,
                                                             vendor_code="ValidationException", record=own_id))
        if coll is INVOICES and row.get("Status"):
            self._note_status(str(row[coll.id_key]), str(row["Status"]))
        return WriteOutcome(str(row[coll.id_key]), modified_at=modified_at(row))

    async def _name_taken(self, coll: XeroCollection, sent: Mapping[str, Any], message: str, own_id: str | None
                          ) -> ConnectorError:
        """A refused name as `NameTakenError` naming its holder (looked up: the answer does not say)."""
        field = coll.unique_name
        assert field is not None
        name = str(sent.get(field) or "").strip()
        holders = []
        if name:
            rows, _, _ = await self._list(coll, where=condition(field, name))
            holders = [str(r[coll.id_key]) for r in rows
                       if str(r.get(field, "")).strip().lower() == name.lower() and str(r[coll.id_key]) != own_id]
        return NameTakenError(message, field=field, value=name, holder_id=holders[0] if holders else None,
                              connection=self.name, status=400, vendor_code="ValidationException")  # fmt: skip

    async def update_many(self, object: str, items: Sequence[Update]) -> Sequence[WriteOutcome]:
        """POST in batches of 50 (each element carries its id), `summarizeErrors=false`; a payment, which Xero
        never edits, is refused."""
        coll = self._collection(object)
        if coll is PAYMENTS:
            return [WriteOutcome(i.id, error=SkippableError("Xero payments are not edited, only deleted",
                                                            connection=self.name, record=i.id)) for i in items]
        outcomes: list[WriteOutcome] = []
        for start in range(0, len(items), BATCH):
            chunk = items[start : start + BATCH]
            body = [{**self._element(coll, i.fields), coll.id_key: i.id} for i in chunk]
            touched = self._typed_entry_writes(chunk)
            async with self._typed_entries_written.hold_many(touched):
                outcomes += await self._update_chunk(coll, chunk, body, touched)
        return outcomes

    @staticmethod
    def _typed_entry_writes(items: Sequence[Update]) -> list[str]:
        """The records whose address or phone entries these updates send whole (completed from a read)."""
        return [i.id for i in items if any(k.split(".", 1)[0] in TYPED_LISTS for k in i.fields)]

    async def _update_chunk(self, coll: XeroCollection, chunk: Sequence[Update], body: list[dict[str, Any]],
                            touched: Sequence[str]) -> list[WriteOutcome]:
        """One batch POST of updates, its typed entries completed from the records as they are now."""
        await self._keep_typed_entries(coll, touched, body)
        if coll is INVOICES:
            for element, item in zip(body, chunk, strict=True):
                if "Type" not in item.fields:
                    element.pop("Type", None)
        key = write_key(chunk[0].id)
        try:
            with self._typed_read.writing(*(i.id.lower() for i in chunk)):
                rows = await self._write(coll, "update", body, key, record=chunk[0].id)
        except BudgetSpentError:
            raise
        except ConnectorError as exc:
            return [WriteOutcome(i.id, error=exc) for i in chunk]
        answered_at = self._typed_read.now()
        outcomes = [
            await self._outcome(coll, sent, row, item.id) for sent, item, row in zip(body, chunk, rows, strict=True)
        ]
        if coll is CONTACTS:
            self._keep_answers(outcomes, rows, answered_at)
        return outcomes

    def _keep_answers(self, outcomes: Sequence[WriteOutcome], rows: Sequence[Mapping[str, Any]],
                      answered_at: float) -> None:
        """What Xero holds after a contact write, as its answer shows it: a write of another mapping to the same
        contact next completes its entries from it instead of reading the contact again. Only an accepted element
        with a whole answer (its addresses and phones listed) stands for a read."""
        for outcome, row in zip(outcomes, rows, strict=True):
            if outcome.ok and TYPED_LISTS.keys() <= row.keys():
                record = self._record(CONTACTS, row)
                self._typed_read.keep(record.id.lower(), record, answered_at)

    async def _keep_typed_entries(self, coll: XeroCollection, touched: Sequence[str], body: list[dict[str, Any]]
                                  ) -> None:
        """An address or phone sent is the whole entry of its type to Xero: one that changes some of its parts
        (the city) is completed from the record as it is now (read for the batch in one call per 20, unless the
        engine's check read it a moment before), so the parts syncd does not map (the street) are kept."""
        if not touched:
            return
        current = {i: r for i in touched if (r := self._typed_read.take(i.lower())) is not None}
        if missing := [i for i in touched if i not in current]:
            current.update(await self.get_many(coll.object, missing))
        for element in body:
            record = current.get(str(element.get(coll.id_key)))
            if record is None:
                continue
            for key, type_key in TYPED_LISTS.items():
                for entry in element.get(key) or []:
                    prefix = f"{key}.{entry[type_key]}."
                    have = {n[len(prefix):]: v for n, v in record.fields.items() if n.startswith(prefix)}
                    entry.update({k: v for k, v in unflatten(have).items() if k not in entry})

    async def delete_many(self, object: str, ids: Sequence[str]) -> Sequence[WriteOutcome]:
        """Contacts archived, invoices voided (or deleted, drafts), payments deleted; items are refused."""
        coll = self._collection(object)
        outcomes = []
        for record_id in ids:
            try:
                if coll is CONTACTS:
                    await self.act(object, record_id, "archived")
                elif coll is INVOICES:
                    await self.act(object, record_id, "void")
                elif coll is PAYMENTS:
                    await self._delete_payment(record_id)
                else:
                    raise SkippableError("syncd does not delete Xero items", connection=self.name, record=record_id)
                outcomes.append(WriteOutcome(record_id))
            except NotFoundError:
                outcomes.append(WriteOutcome(record_id))
            except BudgetSpentError:
                raise
            except ConnectorError as exc:
                outcomes.append(WriteOutcome(record_id, error=exc))
        return outcomes

    async def _delete_payment(self, record_id: str) -> None:
        http = await self._http()
        tenant = await self.tenant()
        body = {"Status": "DELETED"}
        key = write_key(record_id)
        await http.call("POST Payments/{id}", lambda api: api.delete_payment(
            tenant, record_id, body, idempotency_key=key, **http.raw), idempotent=True, record=record_id)  # fmt: skip

    async def act(self, object: str, id: str, action: str) -> None:
        """Invoice status moves (`void` → VOIDED, or DELETED for a draft Xero will not void; `sent` →
        AUTHORISED; `draft`, `submitted`) and contact `inactive`/`active` (ARCHIVED/ACTIVE), as status writes."""
        coll = self._collection(object)
        table = INVOICE_ACTIONS if coll is INVOICES else CONTACT_ACTIONS if coll is CONTACTS else {}
        status = table.get(action.lower())
        if status is None:
            raise SkippableError(f"{coll.object} has no action {action!r} (allowed: {', '.join(table) or 'none'})",
                                 connection=self.name, record=id)  # fmt: skip
        field = "Status" if coll is INVOICES else "ContactStatus"
        if status == "VOIDED" and self._invoice_status.get(id) in ("DRAFT", "SUBMITTED"):
            status = "DELETED"  # as last read, a draft: Xero deletes it rather than voiding it
        outcome = await self._set_status(coll, id, field, status)
        if outcome.error is not None and status == "VOIDED" and NOT_EDITABLE in outcome.error.vendor_message:
            # Xero voids only approved invoices; a draft (or submitted) one is deleted instead.
            outcome = await self._set_status(coll, id, field, "DELETED")
        if outcome.error is not None:
            raise outcome.error

    async def _set_status(self, coll: XeroCollection, record_id: str, field: str, status: str) -> WriteOutcome:
        body = [{coll.id_key: record_id, field: status}]
        rows = await self._write(coll, "update", body, write_key(record_id), record_id)
        return await self._outcome(coll, body[0], rows[0], record_id)

    # --- webhooks ---

    def verify_webhook(self, request: WebhookRequest) -> None:
        """Check `x-xero-signature` (base64 HMAC-SHA256 of the raw body with the webhook key): 401 otherwise,
        which is also how the intent-to-receive check's wrongly signed deliveries must be answered."""
        key = self.settings.webhook_key.get_secret_value() if self.settings.webhook_key else None
        webhooks.verify(request, key)

    def parse_webhook(self, request: WebhookRequest) -> Sequence[ChangeEvent]:
        """One event per contact or invoice change of this organisation (none for the intent-to-receive
        check's empty deliveries); Xero sends no payment events, so payments are polled."""
        return webhooks.parse(request.body, self._tenant)

    async def register_webhooks(self, url: str, fields: Mapping[str, Collection[str]]) -> bool:
        """False: Xero webhooks are set up in the app's page of the developer portal (no API)."""
        return False

    def __repr__(self) -> str:
        return f"XeroConnector({self.name!r}, tenant_id={self._tenant!r})"


__all__ = ["XeroConnector", "idempotency_key"]
