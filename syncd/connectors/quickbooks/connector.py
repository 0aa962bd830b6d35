"""`QuickBooksConnector`: Customers, Invoices, Payments (and their applications to invoices) and Items of one
QuickBooks Online company, through python-quickbooks and intuit-oauth run in a bounded thread pool.

Reads: query pages of 1,000 (list answers are whole records, lines included: no detail reads ever); deltas by CDC
(one call per object, deletions included), falling back to a full read past CDC's 30-day look-back. Writes:
batches of up to 30 operations, creates and updates each under a `requestid` (a retried request is answered with
the first answer), updates sparse and checked against the SyncToken of the read they were planned from.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import json
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, TypeVar

from syncd.connectors.base import (
    ActionField,
    ChangeEvent,
    Create,
    Deletion,
    FieldInfo,
    Fields,
    Page,
    Record,
    Update,
    WebhookRequest,
    WriteOutcome,
)
from syncd.connectors.quickbooks import applications as apps
from syncd.connectors.quickbooks import webhooks
from syncd.connectors.quickbooks.client import CURRENT, Call, PointedQuickBooks, pointed_client
from syncd.connectors.quickbooks.errors import StaleObjectError, from_fault, translate
from syncd.connectors.quickbooks.feed import ChangeFeed, Changes
from syncd.connectors.quickbooks.oauth import IntuitAuth
from syncd.connectors.quickbooks.settings import QuickBooksConnection
from syncd.connectors.quickbooks.values import (
    ENTITIES,
    INVOICE,
    LINE_KINDS,
    REFERENCE_FIELD,
    STATUS_FIELD,
    Entity,
    UnwritableField,
    flatten,
    modified_at,
    nested_parts,
    unflatten,
)
from syncd.connectors.ratelimit import Budget, RateLimiter
from syncd.connectors.retry import RetryPolicy, retrying
from syncd.connectors.server_clock import ServerClock
from syncd.connectors.tokens import Grant, TokenManager, TokenStorage, with_token
from syncd.errors import (
    AuthError,
    BudgetSpentError,
    ConnectorError,
    FatalError,
    RateLimitedError,
    RetryableError,
    SkippableError,
)
from syncd.logs import get_logger
from syncd.textkeys import ascii_lower

log = get_logger(__name__)
T = TypeVar("T")

# 500 requests a minute per company (which also keeps under 10 a second when spread evenly); no daily cap.
DEFAULT_BUDGET = Budget(window_s=60.0, window_max=500, daily_cap=None)
# Batch requests have their own limit: 40 a minute.
BATCH_BUDGET = Budget(window_s=60.0, window_max=40, daily_cap=None)
# A 429 asks for a minute's wait, which is waited out here rather than handed up.
DEFAULT_POLICY = RetryPolicy(attempts=6, initial_s=0.5, max_s=65.0, jitter_s=0.5)
MAX_RESULTS = 1000
MAX_BATCH = 30
# CDC looks back 30 days; a cursor older than this (with a margin for clocks) is read in full instead.
CDC_LOOKBACK = timedelta(days=30) - timedelta(hours=1)
SECOND = timedelta(seconds=1)
SYNC_TOKENS_KEPT = 50_000


def _now() -> datetime:
    return datetime.now(UTC)


def _quote(value: str) -> str:
    """A string literal of the query language: single quotes, a quote inside escaped with a backslash."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _stamp(moment: datetime) -> str:
    """A time for a query or CDC: whole seconds with an explicit offset, as Intuit's examples write them."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def request_id(*parts: str) -> str:
    """A `requestid` (at most 50 characters) for a write: a digest of what identifies it (a create's reference,
    an update's record and SyncToken) and of its body. The same write sent again after a lost answer gets the
    same id, so QBO answers it with the first answer instead of writing twice; a different write for the same
    reference (a create tried again under another name after a 6240) gets its own, or QBO would answer it with
    the first one's refusal."""
    return "syncd-" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40]


def _body_key(body: dict[str, Any] | ConnectorError) -> str:
    return json.dumps(body, sort_keys=True) if isinstance(body, dict) else ""


@dataclass(frozen=True)
class Version:
    """A record as syncd last read it, as far as a write needs: its SyncToken, its note (for syncd's tag) and
    the nested objects dotted fields write into."""

    sync_token: str
    note: str | None
    parts: Mapping[str, Mapping[str, Any]]


class QuickBooksConnector:
    """One QBO company: python-quickbooks in a thread pool bounded by `max_concurrency`, one limiter, one token
    manager."""

    system = "quickbooks"
    stamp_resolution = timedelta(seconds=1)
    create_batch = MAX_BATCH
    # An invoice's status is computed, and moves only by actions (void); a new one is "open".
    action_fields: Mapping[str, ActionField] = MappingProxyType({"Invoice": ActionField(STATUS_FIELD, "open")})

    def __init__(self, name: str, settings: QuickBooksConnection, *, storage: TokenStorage | None = None,
                 policy: RetryPolicy | None = None, page_size: int = MAX_RESULTS) -> None:
        self.name = name
        self.settings = settings
        self.limiter = RateLimiter(name, DEFAULT_BUDGET.configured(settings.rate_limit))
        self.batch_limiter = RateLimiter(f"{name}/batch", BATCH_BUDGET)
        self.policy = policy or DEFAULT_POLICY
        self.page_size = max(1, min(page_size, MAX_RESULTS))
        self.tokens = TokenManager(
            name, self._refresh, storage=storage,
            refresh_token=settings.refresh_token.get_secret_value() if settings.refresh_token else None,
        )  # fmt: skip
        self.auth = IntuitAuth(name, settings)
        self.server_clock = ServerClock()
        self._executor: ThreadPoolExecutor | None = None
        self._client: PointedQuickBooks | None = None
        self._slots = asyncio.Semaphore(settings.max_concurrency)
        # The SyncToken (and note) of each record as last read: an update is sent with the token of the read it
        # was planned from, so QBO refuses it (5010) if the record changed since.
        self._read_versions: dict[tuple[str, str], Version] = {}
        # CDC answers shared by the objects of a pass (one call for all of them).
        self._feed = ChangeFeed(CDC_LOOKBACK)

    # --- lifecycle ---

    async def start(self) -> None:
        """Start the worker threads (the SDK is synchronous) and the SDK client."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.settings.max_concurrency, thread_name_prefix=f"qbo-{self.name}")
            self._client = pointed_client(self.settings.base_url, self.settings.realm_id, self.settings.minor_version)

    async def close(self) -> None:
        """Stop the worker threads."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self._executor = self._client = None

    @property
    def clock_offset(self) -> timedelta:
        """How far QBO's clock runs from ours, as its last answer said."""
        return self.server_clock.offset

    async def _in_thread(self, work: Callable[[], T]) -> T:
        await self.start()
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        async with self._slots:
            return await loop.run_in_executor(self._executor, context.run, work)

    async def _refresh(self, refresh_token: str) -> Grant:
        return await self.auth.refresh(self._in_thread, refresh_token)

    # --- OAuth for `syncd auth` ---

    def authorize_url(self, redirect_uri: str, state: str) -> str:
        """Intuit's consent URL (read from the discovery document) for the connection's scopes."""
        return self.auth.authorize_url(redirect_uri, state)

    async def exchange_code(self, code: str, redirect_uri: str) -> Grant:
        """Trade the code from the redirect for tokens; the token manager uses them from now on."""
        grant = await self.auth.exchange_code(self._in_thread, code, redirect_uri)
        self.tokens.reauthorised(grant)
        return grant

    # --- calls ---

    async def _sdk(self, what: str, work: Callable[[PointedQuickBooks], T], *, record: str | None = None,
                   batch: bool = False, name: tuple[str, str] | None = None) -> T:
        """One SDK call: paced, with a valid token (refreshed once on a 401), retried when transient; a stale
        SyncToken is handed up at once (retrying the same token cannot succeed)."""

        async def slot() -> None:
            await self.limiter.acquire()
            if batch:
                await self.batch_limiter.acquire()

        async def once(token: str) -> T:
            call = Call(token, self.settings.timeout_s)

            def run() -> T:
                CURRENT.set(call)
                assert self._client is not None
                return work(self._client)

            try:
                return await self._in_thread(run)
            except Exception as exc:
                error = translate(exc, connection=self.name, record=record, name=name)
                if isinstance(error, RateLimitedError):
                    raise self.limiter.refused(error, daily=False) from exc
                raise error from exc
            finally:
                self.server_clock.observe(call.date)

        async def attempt() -> T | StaleObjectError:
            try:
                return await with_token(self.tokens, once, lambda exc: isinstance(exc, AuthError)
                                        and exc.status == 401, slot)  # fmt: skip
            except StaleObjectError as exc:
                return exc

        result = await retrying(self.name, what, attempt, self.policy)
        if isinstance(result, StaleObjectError):
            raise result
        return result

    async def _query(self, text: str) -> tuple[list[dict[str, Any]], datetime | None]:
        """One query's records and the server's time of the answer."""
        answer: dict[str, Any] = await self._sdk(f"query {text[:60]}", lambda qb: qb.query(text))
        found = answer.get("QueryResponse") or {}
        rows = next((v for v in found.values() if isinstance(v, list)), [])
        return [r for r in rows if isinstance(r, dict)], _answer_time(answer)

    # --- reading ---

    def objects(self) -> Sequence[str]:
        """Customer, Invoice, Payment, Item, and PaymentApplication (a payment's line per invoice, read-only)."""
        return (*ENTITIES, apps.APPLICATIONS)

    def _entity(self, obj: str) -> Entity:
        entity = ENTITIES.get(obj)
        if entity is None:
            raise FatalError(f"QuickBooks has no object {obj!r}; expected one of {', '.join(ENTITIES)}",
                             connection=self.name)  # fmt: skip
        return entity

    def _record(self, entity: Entity, raw: Mapping[str, Any]) -> Record:
        record_id = str(raw["Id"])
        if raw.get("status") == "Deleted":
            return Record(self.system, entity.name, record_id, {}, modified_at(raw), deleted=True)
        self._remember(entity, raw)
        return Record(self.system, entity.name, record_id, flatten(entity, raw), modified_at(raw))

    def _remember(self, entity: Entity, raw: Mapping[str, Any]) -> None:
        key = (entity.name, str(raw["Id"]))
        self._read_versions.pop(key, None)
        note = raw.get(entity.note) if entity.note else None
        self._read_versions[key] = Version(str(raw.get("SyncToken", "0")), note if isinstance(note, str) else None,
                                           nested_parts(entity, raw))
        while len(self._read_versions) > SYNC_TOKENS_KEPT:
            self._read_versions.pop(next(iter(self._read_versions)))

    def _records(self, entity: Entity, rows: Sequence[Mapping[str, Any]]) -> list[Record]:
        return sorted((self._record(entity, row) for row in rows), key=lambda r: r.modified_at)

    async def changes(
        self, object: str, since: datetime | None, overlap: timedelta, expected: int = 0
    ) -> AsyncIterator[Page]:
        """Records changed after `since - overlap`, oldest first, deleted ones flagged: one CDC call when the
        cursor is within CDC's 30-day look-back, otherwise (and on a first read) a full read in query pages."""
        if object == apps.APPLICATIONS:
            async for page in self.changes(apps.PAYMENT, since, overlap):
                yield Page(apps.explode(page.records), page.cursor)
            return
        entity = self._entity(object)
        start = None if since is None else since - overlap
        if start is not None and self._within_lookback(start):
            found = await self._changed_since(entity, start, use_up=True)
            if found.complete:
                yield Page(self._records(entity, found.rows), self._cursor(found.answered, start))
                return
            log.info("qbo_cdc_full", connection=self.name, object=entity.name,
                     detail="1,000 changes or more: read by query pages instead")  # fmt: skip
        elif start is not None:
            log.warning("qbo_cdc_lookback_exceeded", connection=self.name, object=entity.name, since=str(start),
                        detail="idle longer than CDC's 30-day look-back: reading every record (full reconcile)")
            start = None
        async for page in self._scan(entity, start):
            yield page

    def _within_lookback(self, start: datetime) -> bool:
        return (_now() + self.clock_offset) - start < CDC_LOOKBACK

    def _cursor(self, answered: datetime | None, start: datetime | None) -> datetime:
        """The server's time of the read's first answer, less a second (stamps are whole seconds)."""
        moment = (answered or (_now() + self.clock_offset)) - SECOND
        return max(moment, start) if start is not None else moment

    async def _changed_since(self, entity: Entity, start: datetime, *, use_up: bool) -> Changes:
        """CDC rows of one entity since `start`: this pass's answer if it has one (see feed.py), else one call
        for this entity and every other the connector serves reads of."""
        now = asyncio.get_running_loop().time()
        found = self._feed.take(entity.name, start, now, use_up=use_up)
        if found is not None:
            return found
        names, since = self._feed.request(entity.name, start, _now() + self.clock_offset)
        answer: dict[str, Any] = await self._sdk(
            f"cdc {','.join(names)}", lambda qb: qb.change_data_capture(",".join(names), _stamp(since)))
        rows: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
        for response in answer.get("CDCResponse") or []:
            for query in response.get("QueryResponse") or []:
                for name in names:
                    rows[name].extend(r for r in query.get(name, []) if isinstance(r, dict))
        answered = _answer_time(answer)
        complete = self._feed.store(names, since, rows, answered, now)
        if use_up:
            self._feed.used(entity.name)
        return Changes([r for r in rows[entity.name] if modified_at(r) >= start], answered, complete)

    async def _scan(self, entity: Entity, start: datetime | None) -> AsyncIterator[Page]:
        """Every record (changed at or after `start`) by LastUpdatedTime, 1,000 a page. Each page starts from the
        last stamp seen (records re-read at that stamp are dropped), so an edit moving a record to the end during
        the read shifts nothing past us; only a page of one single stamp goes on by position."""
        low = start
        position = 1
        seen: dict[str, datetime] = {}
        answered_first: datetime | None = None
        while True:
            conditions = [f"MetaData.LastUpdatedTime >= {_quote(_stamp(low))}"] if low is not None else []
            if entity.unique_name is not None:
                conditions.append("Active IN (true, false)")  # QBO lists only active names unless asked
            where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
            rows, answered = await self._query(
                f"SELECT * FROM {entity.name}{where} ORDERBY MetaData.LastUpdatedTime "
                f"STARTPOSITION {position} MAXRESULTS {self.page_size}")  # fmt: skip
            answered_first = answered_first or answered
            fresh = []
            for row in rows:
                stamp = modified_at(row)
                if seen.get(str(row["Id"])) == stamp:
                    continue
                seen[str(row["Id"])] = stamp
                fresh.append(row)
            records = self._records(entity, fresh)
            if len(rows) < self.page_size:
                yield Page(records, self._cursor(answered_first, start))
                return
            top = max(modified_at(r) for r in rows)
            if low is None or top > low:
                low, position = top, 1
            else:
                position += self.page_size
            if records:
                yield Page(records, start or datetime.fromtimestamp(0, UTC))

    async def get_many(self, object: str, ids: Sequence[str]) -> Mapping[str, Record]:
        """Records by id, one query per 1,000 ids; ids that do not exist (or were deleted) are absent."""
        if object == apps.APPLICATIONS:
            payments = await self.get_many(apps.PAYMENT, apps.payment_ids(ids))
            found = {a.id: a for a in apps.explode(list(payments.values()))}
            return {i: found[i] for i in ids if i in found}
        entity = self._entity(object)
        wanted = [i for i in dict.fromkeys(ids) if i]
        out: dict[str, Record] = {}
        for chunk in _chunks(wanted, MAX_RESULTS):
            listed = ", ".join(_quote(i) for i in chunk)
            active = " AND Active IN (true, false)" if entity.unique_name else ""
            rows, _ = await self._query(f"SELECT * FROM {entity.name} WHERE Id IN ({listed}){active} "
                                        f"MAXRESULTS {MAX_RESULTS}")  # fmt: skip
            out.update((r.id, r) for r in self._records(entity, rows))
        return out

    async def find_by_field(self, object: str, field: str, values: Sequence[str]) -> Mapping[str, list[Record]]:
        """Exact matches per value (e-mail regardless of case): by a query where QBO filters on the field, one
        per 1,000 values; otherwise (the create reference, kept in a note) one read of every record serves all."""
        if object == apps.APPLICATIONS:
            return await self._find_applications(field, values)
        entity = self._entity(object)
        wanted = list(dict.fromkeys(v for v in values if v is not None))
        result: dict[str, list[Record]] = {v: [] for v in wanted}
        if not wanted:
            return result
        fold = field.endswith("EmailAddr.Address") or field == entity.unique_name

        def key(value: Any) -> str | None:
            return None if value is None else (ascii_lower(str(value)) if fold else str(value))

        by_key: dict[str, list[str]] = {}
        for value in wanted:
            by_key.setdefault(key(value) or "", []).append(value)
        records: list[Record] = []
        if field in entity.filters:
            column = field.split(".")[0]
            active = " AND Active IN (true, false)" if entity.unique_name and field != "Active" else ""
            for chunk in _chunks(wanted, MAX_RESULTS):
                listed = ", ".join(_quote(v) for v in chunk)
                rows, _ = await self._query(f"SELECT * FROM {entity.name} WHERE {column} IN ({listed}){active} "
                                            f"MAXRESULTS {MAX_RESULTS}")  # fmt: skip
                records.extend(self._records(entity, rows))
        else:
            async for page in self._scan(entity, None):
                records.extend(page.records)
        for record in records:
            for value in by_key.get(key(record.fields.get(field)) or "\x00", []):
                result[value].append(record)
        return result

    async def _find_applications(self, field: str, values: Sequence[str]) -> dict[str, list[Record]]:
        payments: list[Record] = []
        async for page in self._scan(self._entity(apps.PAYMENT), None):
            payments.extend(page.records)
        every = apps.explode(payments)
        return {v: [a for a in every if a.fields.get(field) is not None and str(a.fields[field]) == v]
                for v in dict.fromkeys(values)}  # fmt: skip

    async def deletions(self, object: str, since: datetime) -> Sequence[Deletion] | None:
        """Deleted records by CDC (its answer is kept for the `changes()` call that follows); None past the
        30-day look-back, where only a full read can tell."""
        name = apps.PAYMENT if object == apps.APPLICATIONS else object
        entity = self._entity(name)
        if not self._within_lookback(since):
            return None
        found = await self._changed_since(entity, since, use_up=False)
        if not found.complete:
            return None  # over CDC's cap: the full read that follows tells
        gone = [Deletion(entity.name, str(r["Id"]), modified_at(r))
                for r in found.rows if r.get("status") == "Deleted"]
        if object == apps.APPLICATIONS:
            return []  # an application vanishes with its payment, which the payment's own mapping reads
        return gone

    async def describe(self, object: str) -> Mapping[str, FieldInfo]:
        """The fields the connector reads and writes (QBO has no describe call for them)."""
        if object == apps.APPLICATIONS:
            return apps.describe()
        entity = self._entity(object)
        fields = {name: FieldInfo(name=name, type=kind, createable=name in entity.writable,
                                  updateable=name in entity.writable and name != REFERENCE_FIELD,
                                  unique=name in (entity.unique_name, REFERENCE_FIELD))
                  for name, kind in entity.fields.items()}  # fmt: skip
        if entity.lines is not None:
            for sub, kind in LINE_KINDS[entity.lines].items():
                fields[f"Line.{sub}"] = FieldInfo(name=f"Line.{sub}", type=kind)
        return fields

    # --- writing ---

    async def create_many(self, object: str, items: Sequence[Create]) -> Sequence[WriteOutcome]:
        """Creates in batches of 30 (one create alone goes to the entity's endpoint), each request under a
        `requestid` made from the references it carries."""
        if object == apps.APPLICATIONS:
            return [WriteOutcome(None, apps.read_only(self.name, i.reference)) for i in items]
        entity = self._entity(object)
        bodies: list[dict[str, Any] | ConnectorError] = []
        for item in items:
            try:
                bodies.append(unflatten(entity, item.fields, reference=item.reference))
            except UnwritableField as exc:
                bodies.append(SkippableError(str(exc), connection=self.name, record=item.reference))
        return await self._write(entity, "create", [i.reference for i in items], bodies,
                                 [request_id("create", i.reference, _body_key(b))
                                  for i, b in zip(items, bodies, strict=True)],
                                 sent=[i.fields for i in items])  # fmt: skip

    async def update_many(self, object: str, items: Sequence[Update]) -> Sequence[WriteOutcome]:
        """Sparse updates in batches of 30, each with the SyncToken of the record as syncd last read it: QBO
        refuses one whose record moved since (5010, a `StaleObjectError`: the pair is planned again)."""
        if object == apps.APPLICATIONS:
            return [WriteOutcome(i.id, apps.read_only(self.name, i.id)) for i in items]
        entity = self._entity(object)
        unknown = [i.id for i in items if (entity.name, i.id) not in self._read_versions]
        if unknown:
            # Not read by this process (restarted since the plan's read): the record's version now.
            await self.get_many(entity.name, unknown)
        bodies: list[dict[str, Any] | ConnectorError] = []
        for item in items:
            version = self._read_versions.get((entity.name, item.id))
            if version is None:
                bodies.append(SkippableError(f"{entity.name} {item.id} no longer exists", connection=self.name,
                                             record=item.id))  # fmt: skip
                continue
            try:
                body = unflatten(entity, item.fields, current_note=version.note, current_parts=version.parts)
            except UnwritableField as exc:
                bodies.append(SkippableError(str(exc), connection=self.name, record=item.id))
                continue
            bodies.append({**body, "Id": item.id, "SyncToken": version.sync_token, "sparse": True})
        ids = [request_id("update", i.id, _body_key(b)) for i, b in zip(items, bodies, strict=True)]
        return await self._write(entity, "update", [i.id for i in items], bodies, ids)

    async def _write(self, entity: Entity, operation: str, records: Sequence[str],
                     bodies: Sequence[dict[str, Any] | ConnectorError], ids: Sequence[str],
                     sent: Sequence[Fields] | None = None) -> list[WriteOutcome]:
        """Send writes (one alone to the entity's endpoint, more as batches of 30); outcomes in order."""
        self._feed.forget()
        outcomes: list[WriteOutcome | None] = [None] * len(bodies)
        ready = []
        for n, body in enumerate(bodies):
            if isinstance(body, ConnectorError):
                outcomes[n] = WriteOutcome(records[n] if operation == "update" else None, error=body)
            else:
                ready.append(n)
        for chunk in _chunks(ready, MAX_BATCH):
            try:
                going = [body for n in chunk if isinstance(body := bodies[n], dict)]
                answers = await (self._single(entity, records[chunk[0]], going[0], ids[chunk[0]]) if len(chunk) == 1
                                 else self._batch(entity, operation, going, [ids[n] for n in chunk]))
            except BudgetSpentError:
                raise
            except ConnectorError as exc:
                answers = [exc] * len(chunk)
            for n, answer in zip(chunk, answers, strict=True):
                outcomes[n] = self._outcome(entity, records[n], answer, sent[n] if sent is not None else None)
        return [o if o is not None else WriteOutcome(None, FatalError("not written", connection=self.name))
                for o in outcomes]  # fmt: skip

    async def _single(self, entity: Entity, record: str, body: dict[str, Any], rid: str
                      ) -> list[dict[str, Any] | ConnectorError]:
        text = json.dumps(body)
        call = (lambda qb: qb.update_object(entity.name, text, request_id=rid)) if "Id" in body else (
            lambda qb: qb.create_object(entity.name, text, request_id=rid))
        try:
            answer: dict[str, Any] = await self._sdk(f"write {entity.name}", call, record=record,
                                                     name=_unique_name(entity, body))
        except (SkippableError, StaleObjectError) as exc:
            return [exc]
        return [answer.get(entity.name) or {}]

    async def _batch(self, entity: Entity, operation: str, bodies: Sequence[dict[str, Any]], ids: Sequence[str]
                     ) -> list[dict[str, Any] | ConnectorError]:
        request = {"BatchItemRequest": [{"bId": str(n), "operation": operation, entity.name: body}
                                        for n, body in enumerate(bodies)]}  # fmt: skip
        text = json.dumps(request)
        rid = request_id("batch", operation, *ids)
        answer: dict[str, Any] = await self._sdk(
            f"batch {operation} {entity.name}",
            lambda qb: qb.post(f"{qb.api_url}/company/{qb.company_id}/batch", text, request_id=rid),
            batch=True,
        )  # fmt: skip
        by_bid = {str(i.get("bId")): i for i in answer.get("BatchItemResponse") or [] if isinstance(i, dict)}
        out: list[dict[str, Any] | ConnectorError] = []
        for n in range(len(bodies)):
            item = by_bid.get(str(n))
            if item is None:
                out.append(RetryableError("the batch answer lacks this operation", connection=self.name))
            elif isinstance(item.get("Fault"), dict):
                out.append(from_fault(item["Fault"], connection=self.name, record=None,
                                      name=_unique_name(entity, bodies[n])))
            else:
                out.append(item.get(entity.name) or {})
        return out

    def _outcome(self, entity: Entity, record: str, answer: dict[str, Any] | ConnectorError,
                 sent: Fields | None) -> WriteOutcome:
        """One write's outcome; `sent` are a create's fields (an update's outcome carries the record's id)."""
        own_id = record if sent is None else None
        if isinstance(answer, ConnectorError):
            return WriteOutcome(own_id, error=answer)
        if not answer.get("Id"):
            return WriteOutcome(own_id, error=RetryableError("QuickBooks answered without the record",
                                                             connection=self.name, record=record))
        self._remember(entity, answer)
        stamp = modified_at(answer) if _settles(entity, answer, sent) else None
        return WriteOutcome(str(answer["Id"]), modified_at=stamp)

    async def delete_many(self, object: str, ids: Sequence[str]) -> Sequence[WriteOutcome]:
        """Invoices and payments are deleted; customers and items made inactive (QBO keeps names)."""
        if object == apps.APPLICATIONS:
            return [WriteOutcome(i, apps.read_only(self.name, i)) for i in ids]
        entity = self._entity(object)
        if entity.unique_name is not None:
            return await self.update_many(object, [Update(i, {"Active": False}) for i in ids])
        self._feed.forget()
        await self.get_many(entity.name, [i for i in ids if (entity.name, i) not in self._read_versions])
        outcomes = []
        for record_id in ids:
            version = self._read_versions.get((entity.name, record_id))
            if version is None:
                outcomes.append(WriteOutcome(record_id))  # already gone
                continue
            try:
                await self._sdk(f"delete {entity.name}", _deleting(entity, record_id, version.sync_token),
                                record=record_id)
                outcomes.append(WriteOutcome(record_id))
            except BudgetSpentError:
                raise
            except ConnectorError as exc:
                outcomes.append(WriteOutcome(record_id, error=exc))
        return outcomes

    async def act(self, object: str, id: str, action: str) -> None:
        """Invoice `void` (`POST /invoice?operation=void`, with the SyncToken of the last read); Customer and
        Item `inactive` / `active` (a sparse update of Active: QBO keeps names, never deletes them)."""
        entity = ENTITIES.get(object)
        if entity is not None and entity.unique_name is not None and action in ("active", "inactive"):
            [done] = await self.update_many(object, [Update(id, {"Active": action == "active"})])
            if done.error is not None:
                raise done.error
            return
        if object != INVOICE.name or action != "void":
            raise SkippableError(f"{object} has no action {action!r} (QuickBooks: Invoice void, Customer and Item "
                                 "active/inactive)", connection=self.name, record=id)  # fmt: skip
        if (INVOICE.name, id) not in self._read_versions:
            await self.get_many(INVOICE.name, [id])
        version = self._read_versions.get((INVOICE.name, id))
        if version is None:
            raise SkippableError(f"Invoice {id} no longer exists", connection=self.name, record=id)
        body = json.dumps({"Id": id, "SyncToken": version.sync_token})
        self._feed.forget()
        answer: dict[str, Any] = await self._sdk("void Invoice", lambda qb: qb.post(
            f"{qb.api_url}/company/{qb.company_id}/invoice", body, params={"operation": "void"},
            request_id=request_id("void", id, version.sync_token)), record=id)  # fmt: skip
        if isinstance(answer.get("Invoice"), dict):
            self._remember(INVOICE, answer["Invoice"])

    # --- webhooks ---

    def verify_webhook(self, request: WebhookRequest) -> None:
        """Check `intuit-signature` with the app's verifier token."""
        token = self.settings.verifier_token.get_secret_value() if self.settings.verifier_token else None
        webhooks.verify(request, token)

    def parse_webhook(self, request: WebhookRequest) -> Sequence[ChangeEvent]:
        """The changed records of this company the notification names (it carries names and ids only)."""
        return webhooks.parse(request.body, self.settings.realm_id)

    async def register_webhooks(self, url: str, fields: Mapping[str, Collection[str]]) -> bool:
        """False: QBO webhooks are set up in the app's settings on the Intuit developer portal."""
        return False

    def __repr__(self) -> str:
        return f"QuickBooksConnector({self.name!r}, realm_id={self.settings.realm_id!r})"


def _deleting(entity: Entity, record_id: str, sync_token: str) -> Callable[[PointedQuickBooks], Any]:
    """The SDK call that deletes one transaction (`POST /{entity}?operation=delete` with Id and SyncToken)."""
    body = json.dumps({"Id": record_id, "SyncToken": sync_token})
    rid = request_id("delete", record_id, sync_token)
    return lambda qb: qb.post(f"{qb.api_url}/company/{qb.company_id}/{entity.name.lower()}", body,
                              params={"operation": "delete"}, request_id=rid)


def _settles(entity: Entity, answer: Mapping[str, Any], sent: Fields | None) -> bool:
    """Whether a create's answer stands for the record as base will hold it, so its stamp may be taken as seen:
    a customer or item showing every field as sent. A transaction never does: QBO works out what a mapping reads
    back (TotalAmt, Balance, DocNumber, status), which the next read must bring."""
    if sent is None or entity.unique_name is None:
        return False
    written = flatten(entity, answer)
    return all(written[name] == value for name, value in sent.items() if name in written)


def _unique_name(entity: Entity, body: Mapping[str, Any]) -> tuple[str, str] | None:
    """The unique (field, value) a write sends, which a 6240 refusal is about."""
    field = entity.unique_name
    value = body.get(field) if field is not None else None
    return (field, value) if field is not None and isinstance(value, str) else None


def _answer_time(answer: Mapping[str, Any]) -> datetime | None:
    """The `time` an answer carries (the server's clock, with the company's offset)."""
    text = answer.get("time")
    try:
        return datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None


def _chunks(values: Sequence[T], size: int) -> list[list[T]]:
    return [list(values[n:n + size]) for n in range(0, len(values), size)]
