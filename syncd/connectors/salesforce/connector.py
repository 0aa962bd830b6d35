"""SalesforceConnector: the Connector protocol over the Salesforce REST API through simple-salesforce."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

from simple_salesforce.api import Salesforce

from syncd.connectors.base import (
    ActionField,
    ChangeEvent,
    Create,
    Deletion,
    FieldInfo,
    FieldValue,
    Page,
    Record,
    Update,
    WebhookRequest,
    WriteOutcome,
    utc_floor,
)
from syncd.connectors.ratelimit import RateLimiter
from syncd.connectors.retry import RetryPolicy
from syncd.connectors.salesforce import soql
from syncd.connectors.salesforce.cdc import parse_feed, verify_feed
from syncd.connectors.salesforce.errors import record_error
from syncd.connectors.salesforce.records import (
    LINE_FIELDS,
    LINE_ITEMS,
    REFERENCE_FIELD,
    SYSTEM,
    to_line,
    to_record,
    write_body,
)
from syncd.connectors.salesforce.settings import SalesforceConnection
from syncd.connectors.salesforce.transport import SalesforceTransport
from syncd.connectors.salesforce.values import UNSELECTABLE_TYPES, ValueTypeError, parse_timestamp
from syncd.connectors.tokens import Grant, TokenManager, TokenStorage
from syncd.errors import (
    BudgetSpentError,
    ConnectorError,
    DuplicateError,
    FatalError,
    SkippableError,
    UnknownOutcomeError,
)
from syncd.logs import get_logger
from syncd.textkeys import ascii_lower

log = get_logger(__name__)

OBJECTS = ("Contact", "Account", "Opportunity", "OpportunityLineItem", "Payment__c")
COLLECTION_MAX = 200  # sObject Collections take at most 200 records per call
IN_CHUNK = 200  # ids per `Id IN (...)` query: 200 × 21 characters keeps the URL short
DELETED_WINDOW = timedelta(days=15)  # how far back `sobjects/{Obj}/deleted/` can look
LOCATOR_RESTARTS = 3
DEFAULT_POLICY = RetryPolicy()


# The cursor of a first read that found nothing: the next read starts from the beginning again (cheap: empty).
_NOTHING_READ = datetime(1970, 1, 1, tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)


class SalesforceConnector:
    """One Salesforce org: incremental SOQL reads, sObject Collections writes, OAuth with refresh."""

    system = SYSTEM
    # How finely the system stamps modifications: whether a stamp seen again proves nothing changed.
    stamp_resolution = timedelta(seconds=1)
    # Records one create call takes (sObject Collections): what a first sync's estimate counts calls by.
    create_batch = COLLECTION_MAX
    # Every Salesforce field is written directly; nothing moves by actions alone.
    action_fields: Mapping[str, ActionField] = MappingProxyType({})

    def __init__(self, name: str, settings: SalesforceConnection, *, storage: TokenStorage | None = None,
                 retry_policy: RetryPolicy = DEFAULT_POLICY, query_batch_size: int = 2000) -> None:
        self.name = name
        self.settings = settings
        self._transport = SalesforceTransport(name, settings, storage=storage, policy=retry_policy)
        self._policy = retry_policy
        # Sforce-Query-Options batchSize: 200..2000 rows per page (Salesforce may return more or fewer).
        self._batch_size = max(200, min(2000, query_batch_size))
        self._describes: dict[str, Mapping[str, Any]] = {}
        self._describe_lock = asyncio.Lock()

    # --- lifecycle ---

    @property
    def tokens(self) -> TokenManager:
        """This connection's token manager (single-flight refresh)."""
        return self._transport.tokens

    @property
    def transport(self) -> SalesforceTransport:
        """The paced, retried REST client, for calls outside the Connector protocol (as HubSpot's `transport`)."""
        return self._transport

    @property
    def limiter(self) -> RateLimiter:
        """This connection's rate limiter."""
        return self._transport.limiter

    async def start(self) -> None:
        """Nothing to open eagerly: the token is fetched on first use."""

    async def close(self) -> None:
        """Stop the executor and close the HTTP pool."""
        await self._transport.close()

    def objects(self) -> Sequence[str]:
        """The sObjects this connector serves."""
        return OBJECTS

    # --- OAuth (for `syncd auth`) ---

    def authorize_url(self, redirect_uri: str, state: str) -> str:
        """The org's authorize page for the connected app."""
        return self._transport.oauth.authorize_url(redirect_uri, state)

    async def exchange_code(self, code: str, redirect_uri: str) -> Grant:
        """Tokens for the code the authorize page redirected back with."""
        return await self._transport.oauth.exchange_code(code, redirect_uri)

    # --- describe ---

    async def _describe_raw(self, obj: str) -> Mapping[str, Any]:
        if obj not in OBJECTS:
            raise FatalError(f"Salesforce connector does not serve object {obj!r}; it serves {', '.join(OBJECTS)}",
                             connection=self.name)
        async with self._describe_lock:
            cached = self._describes.get(obj)
            if cached is None:
                path = f"sobjects/{soql.identifier(obj)}/describe/"
                timeout = self._transport.timeout
                result = await self._transport.call(f"describe {obj}",
                                                    lambda sf: sf.restful(path, timeout=timeout))
                if not isinstance(result, Mapping) or not isinstance(result.get("fields"), list):
                    raise FatalError(f"describe of {obj} returned no fields", connection=self.name)
                cached = self._describes[obj] = result
            return cached

    async def _types(self, obj: str) -> dict[str, str]:
        """Selectable fields of `obj` and their describe types."""
        described = await self._describe_raw(obj)
        return {str(f["name"]): str(f["type"]) for f in described["fields"]
                if str(f["type"]) not in UNSELECTABLE_TYPES}

    async def describe(self, object: str) -> Mapping[str, FieldInfo]:
        """The object's fields as the org describes them."""
        described = await self._describe_raw(object)
        out: dict[str, FieldInfo] = {}
        for f in described["fields"]:
            createable = bool(f.get("createable"))
            required = createable and not f.get("nillable", True) and not f.get("defaultedOnCreate", False)
            options = tuple(str(p["value"]) for p in f.get("picklistValues") or () if p.get("active", True))
            out[str(f["name"])] = FieldInfo(
                name=str(f["name"]), type=str(f["type"]), label=str(f.get("label", "")), createable=createable,
                updateable=bool(f.get("updateable")), required=required,
                unique=bool(f.get("unique")) or bool(f.get("externalId")), options=options,
            )
        if object == "Opportunity":
            # Opportunities carry their OpportunityLineItems as `line_items`; each line's fields as
            # `line_items.UnitPrice`, which is what a mapping's items may name.
            out[LINE_ITEMS] = FieldInfo(LINE_ITEMS, "line_items", "Line items", createable=False, updateable=False)
            for name, info in (await self.describe("OpportunityLineItem")).items():
                out[f"{LINE_ITEMS}.{name}"] = FieldInfo(f"{LINE_ITEMS}.{name}", info.type, info.label,
                                                        createable=False, updateable=False)
            # Parent fields read with the lines (`Product2.Name`): `_line_items` always selects them.
            for name, kind in LINE_FIELDS.items():
                relationship, _, field = name.partition(".")
                if field:
                    out[f"{LINE_ITEMS}.{name}"] = FieldInfo(f"{LINE_ITEMS}.{name}", kind, f"{relationship} {field}",
                                                            createable=False, updateable=False)
        return out

    # --- reading ---

    async def _pages(self, select: soql.Select, *, include_deleted: bool = False
                     ) -> AsyncIterator[list[Mapping[str, Any]]]:
        """Rows of a query page by page, following nextRecordsUrl (each page its own paced, retried call)."""
        text = select.text()
        timeout = self._transport.timeout
        headers = {"Sforce-Query-Options": f"batchSize={self._batch_size}"}

        def first(sf: Salesforce) -> Any:
            return sf.query(text, include_deleted=include_deleted, timeout=timeout, headers=headers)

        result = await self._transport.call(f"query {select.object}", first)
        while True:
            yield list(result.get("records") or [])
            next_url = result.get("nextRecordsUrl")
            if result.get("done", True) or not next_url:
                return

            def more(sf: Salesforce, url: str = str(next_url)) -> Any:
                return sf.query_more(url, identifier_is_url=True, timeout=timeout)

            # A token that expires here is refreshed by the transport and this same URL is asked again.
            result = await self._transport.call(f"query_more {select.object}", more)

    async def _records(self, obj: str, rows: Sequence[Mapping[str, Any]], types: Mapping[str, str]) -> list[Record]:
        lines: Mapping[str, list[Mapping[str, FieldValue]]] | None = None
        if obj == "Opportunity":
            lines = await self._line_items([str(r["Id"]) for r in rows])
        try:
            return [to_record(obj, r, types, lines.get(str(r["Id"]), []) if lines is not None else None)
                    for r in rows]
        except ValueTypeError as exc:
            raise FatalError(f"Salesforce returned a value that does not fit its describe: {exc}",
                             connection=self.name) from None

    async def _line_items(self, opportunity_ids: Sequence[str]) -> dict[str, list[Mapping[str, FieldValue]]]:
        """Line items of the given opportunities, read with a second query."""
        out: dict[str, list[Mapping[str, FieldValue]]] = {i: [] for i in opportunity_ids}
        fields = [*LINE_FIELDS, "OpportunityId"]
        for start in range(0, len(opportunity_ids), IN_CHUNK):
            chunk = list(opportunity_ids[start:start + IN_CHUNK])
            select = soql.Select("OpportunityLineItem", fields, [soql.is_in("OpportunityId", chunk)],
                                 ["OpportunityId", "Id"])
            async for rows in self._pages(select):
                for row in rows:
                    out.setdefault(str(row["OpportunityId"]), []).append(to_line(row))
        return out

    async def changes(
        self, object: str, since: datetime | None, overlap: timedelta, expected: int = 0
    ) -> AsyncIterator[Page]:
        """Records modified since `since - overlap`, oldest first, by SystemModstamp then Id."""
        read_started = _now()
        types = await self._types(object)
        lower = since - overlap if since is not None else None
        last_seen: datetime | None = None
        restarts = 0
        # What this read already yielded, so a restart does not hand the same rows out twice.
        yielded: dict[str, datetime] = {}
        while True:
            where = [soql.compare("SystemModstamp", ">=", lower)] if lower is not None else []
            select = soql.Select(object, list(types), where, ["SystemModstamp", "Id"])
            try:
                # After the first read, queryAll: a delete or merge stamps the row, which stays in the recycle
                # bin (IsDeleted, MasterRecordId) for 15 days, so the same call lists what was removed.
                async for rows in self._pages(select, include_deleted=lower is not None):
                    if not rows:
                        continue
                    records = [
                        r for r in await self._records(object, rows, types) if yielded.get(r.id) != r.modified_at
                    ]
                    if not records:
                        continue
                    yielded.update((r.id, r.modified_at) for r in records)
                    last_seen = records[-1].modified_at
                    yield Page(records, utc_floor(last_seen, read_started))
            except ConnectorError as exc:
                # A query cursor that expired (idle too long, too many open) cannot be resumed: query again
                # from the last timestamp seen; none is skipped, and rows already yielded are not repeated.
                if exc.vendor_code != "INVALID_QUERY_LOCATOR" or restarts >= LOCATOR_RESTARTS:
                    raise
                restarts += 1
                log.warning("query locator lost; restarting the read from the last record seen",
                            connection=self.name, object=object, restart_from=str(last_seen))
                lower = last_seen if last_seen is not None else lower
                continue
            break
        clock = self._transport.server_clock
        # The read is complete: what was stamped before it began, by Salesforce's own clock (less a second:
        # stamps are whole seconds), has been handed out, so the cursor may move up to there. With nothing
        # changing the overlap window then empties, instead of re-reading the newest records (and, for
        # opportunities, their lines) in every pass. Never by our clock, which may run ahead of Salesforce's by
        # more than the overlap and so skip its changes: without its time, the cursor stays where it was.
        began = read_started + clock.offset - timedelta(seconds=1) if clock.observed else None
        if last_seen is None:
            kept = utc_floor(since, read_started) if since is not None else _NOTHING_READ
            yield Page([], max(kept, began) if began is not None else kept)
        elif began is not None and began > utc_floor(last_seen, read_started):
            yield Page([], began)

    async def get_many(self, object: str, ids: Sequence[str]) -> Mapping[str, Record]:
        """Records by id (15- or 18-character), line items included; missing ids are left out."""
        types = await self._types(object)
        wanted = list(dict.fromkeys(ids))
        found: dict[str, Record] = {}
        for start in range(0, len(wanted), IN_CHUNK):
            chunk = wanted[start:start + IN_CHUNK]
            select = soql.Select(object, list(types), [soql.is_in("Id", chunk)])
            async for rows in self._pages(select):
                for record in await self._records(object, rows, types):
                    found[record.id] = record
        by_short = {record_id[:15]: record for record_id, record in found.items()}
        return {i: by_short[i[:15]] for i in wanted if i[:15] in by_short}

    async def find_by_field(self, object: str, field: str, values: Sequence[str]) -> Mapping[str, list[Record]]:
        """Records whose `field` equals each value; `=` on text is case-insensitive in Salesforce, and so
        is the grouping of the answers here. Values are quoted and escaped by the SOQL builder."""
        types = await self._types(object)
        if field not in types:
            raise FatalError(f"{object} has no field {field!r}", connection=self.name)
        result: dict[str, list[Record]] = {v: [] for v in values}
        distinct = list(dict.fromkeys(v for v in values))
        if not distinct:
            return result
        matches: list[Record] = []
        for chunk in soql.chunk_for_in(distinct):
            select = soql.Select(object, list(types), [soql.is_in(field, chunk)], ["Id"])
            async for rows in self._pages(select):
                matches.extend(await self._records(object, rows, types))
        is_id = types[field] in ("id", "reference")
        for value in distinct:
            key = _match_key(value, is_id)
            result[value] = [r for r in matches if _match_key(r.fields.get(field), is_id) == key]
        return result

    async def deletions(self, object: str, since: datetime) -> Sequence[Deletion]:
        """Deleted records: `sobjects/{Obj}/deleted/` (at most 15 days back, whole minutes) joined with a
        queryAll of rows in the recycle bin (immediate, and carrying MasterRecordId where the org has it).
        The change read lists the recycle bin already; this sweep, run once an interval, also finds records
        emptied from the bin (hard deleted) before a change read saw them, which only getDeleted knows."""
        now = _now()
        found: dict[str, Deletion] = {}
        start = max(since, now - DELETED_WINDOW + timedelta(minutes=1))
        if since < start:
            log.warning("deletions window clamped to what Salesforce keeps", connection=self.name, object=object,
                        since=str(since))
        path = f"sobjects/{soql.identifier(object)}/deleted/"
        params = {"start": _replication_date(start), "end": _replication_date(now)}
        timeout = self._transport.timeout
        answer = await self._transport.call(f"deleted {object}",
                                            lambda sf: sf.restful(path, params=params, timeout=timeout))
        for row in (answer or {}).get("deletedRecords") or []:
            found[str(row["id"])] = Deletion(object, str(row["id"]), parse_timestamp(str(row["deletedDate"])))
        types = await self._types(object)
        fields = ["Id", "SystemModstamp", *(["MasterRecordId"] if "MasterRecordId" in types else [])]
        select = soql.Select(object, fields, [soql.compare("IsDeleted", "=", True),
                                              soql.compare("SystemModstamp", ">=", since)], ["SystemModstamp", "Id"])
        async for rows in self._pages(select, include_deleted=True):
            for row in rows:
                master = row.get("MasterRecordId")
                found[str(row["Id"])] = Deletion(object, str(row["Id"]), parse_timestamp(str(row["SystemModstamp"])),
                                                 merged_into=str(master) if master else None)
        return sorted(found.values(), key=lambda d: (d.deleted_at, d.id))

    # --- writing ---

    async def _collection(self, what: str, method: str, records: list[dict[str, Any]], *,
                          idempotent: bool) -> list[Mapping[str, Any]]:
        payload = json.dumps({"allOrNone": False, "records": records})
        timeout = self._transport.timeout

        def run(sf: Salesforce) -> Any:
            return sf.restful("composite/sobjects", method=method, data=payload, timeout=timeout)

        answer = await self._transport.call(what, run, idempotent=idempotent)
        return self._rows_of(answer, len(records))

    def _rows_of(self, answer: Any, expected: int) -> list[Mapping[str, Any]]:
        if not isinstance(answer, list) or len(answer) != expected:
            raise FatalError(f"sObject Collections answered {type(answer).__name__} for {expected} records",
                             connection=self.name)
        return answer

    async def create_many(self, object: str, items: Sequence[Create]) -> Sequence[WriteOutcome]:
        """Create through sObject Collections with `Syncd_Ref__c` set; after an unknown outcome the
        references are looked up and only the missing records are created again."""
        outcomes: list[WriteOutcome | None] = [None] * len(items)
        pending: list[tuple[int, dict[str, Any]]] = []
        for index, item in enumerate(items):
            try:
                body = write_body(object, item.fields, record=item.reference, connection=self.name)
            except SkippableError as exc:
                outcomes[index] = WriteOutcome(None, exc)
                continue
            body[REFERENCE_FIELD] = item.reference
            pending.append((index, body))
        for start in range(0, len(pending), COLLECTION_MAX):
            await self._create_chunk(object, items, pending[start:start + COLLECTION_MAX], outcomes)
        return [o if o is not None else WriteOutcome(None, FatalError("not attempted", connection=self.name))
                for o in outcomes]

    async def _create_chunk(self, object: str, items: Sequence[Create], chunk: list[tuple[int, dict[str, Any]]],
                            outcomes: list[WriteOutcome | None]) -> None:
        unknown: UnknownOutcomeError | None = None
        for round_ in range(self._policy.attempts):
            if unknown is not None:
                # The last attempt may have created some of them: find those by reference first.
                chunk = await self._settle_by_reference(object, items, chunk, outcomes)
                if not chunk:
                    return
                await asyncio.sleep(min(self._policy.initial_s * 2 ** (round_ - 1), self._policy.max_s))
            try:
                rows = await self._collection(f"create {object}", "POST", [b for _, b in chunk], idempotent=False)
            except UnknownOutcomeError as exc:
                log.warning("create outcome unknown; looking the reference up before any retry",
                            connection=self.name, object=object, records=len(chunk),
                            error=str(exc))
                unknown = exc
                continue
            except BudgetSpentError:
                raise  # the connection's day is over, not this record's write: end the pass
            except ConnectorError as exc:
                for index, _ in chunk:
                    outcomes[index] = WriteOutcome(None, exc)
                return
            for (index, _), row in zip(chunk, rows, strict=True):
                outcomes[index] = self._create_outcome(row, items[index].reference)
            return
        for index, _ in chunk:
            outcomes[index] = WriteOutcome(None, unknown)

    async def _settle_by_reference(self, object: str, items: Sequence[Create], chunk: list[tuple[int, dict[str, Any]]],
                                   outcomes: list[WriteOutcome | None]) -> list[tuple[int, dict[str, Any]]]:
        references = [items[index].reference for index, _ in chunk]
        existing = await self.find_by_field(object, REFERENCE_FIELD, references)
        remaining = []
        for index, body in chunk:
            found = existing.get(items[index].reference) or []
            if found:
                outcomes[index] = WriteOutcome(found[0].id, existed=True)
            else:
                remaining.append((index, body))
        return remaining

    def _create_outcome(self, row: Mapping[str, Any], reference: str) -> WriteOutcome:
        if row.get("success"):
            return WriteOutcome(str(row["id"]))
        error = record_error(row.get("errors"), connection=self.name, record=reference)
        # Our reference is unique: a duplicate on it means an earlier attempt created the record.
        if isinstance(error, DuplicateError) and REFERENCE_FIELD in str(error) and error.existing_id:
            return WriteOutcome(error.existing_id, existed=True)
        return WriteOutcome(None, error)

    async def update_many(self, object: str, items: Sequence[Update]) -> Sequence[WriteOutcome]:
        """Update through sObject Collections (PATCH), one outcome per item."""
        outcomes: list[WriteOutcome | None] = [None] * len(items)
        pending: list[tuple[int, dict[str, Any]]] = []
        for index, item in enumerate(items):
            try:
                body = write_body(object, item.fields, record=item.id, connection=self.name)
            except SkippableError as exc:
                outcomes[index] = WriteOutcome(item.id, exc)
                continue
            pending.append((index, {**body, "Id": item.id}))
        for start in range(0, len(pending), COLLECTION_MAX):
            chunk = pending[start:start + COLLECTION_MAX]
            try:
                # Re-sending the same field values is harmless, so an update is retried like a read.
                rows = await self._collection(f"update {object}", "PATCH", [b for _, b in chunk], idempotent=True)
            except BudgetSpentError:
                raise  # the connection's day is over, not this record's write: end the pass
            except ConnectorError as exc:
                for index, _ in chunk:
                    outcomes[index] = WriteOutcome(items[index].id, exc)
                continue
            for (index, _), row in zip(chunk, rows, strict=True):
                record_id = items[index].id
                ok = bool(row.get("success"))
                error = None if ok else record_error(row.get("errors"), connection=self.name, record=record_id)
                outcomes[index] = WriteOutcome(record_id, error)
        return [o if o is not None else WriteOutcome(None) for o in outcomes]

    async def delete_many(self, object: str, ids: Sequence[str]) -> Sequence[WriteOutcome]:
        """Delete (to the recycle bin) through sObject Collections; an already-deleted record is done."""
        outcomes: list[WriteOutcome] = []
        timeout = self._transport.timeout
        for start in range(0, len(ids), COLLECTION_MAX):
            chunk = list(ids[start:start + COLLECTION_MAX])
            params = {"ids": ",".join(chunk), "allOrNone": "false"}

            def run(sf: Salesforce, params: Mapping[str, str] = params) -> Any:
                return sf.restful("composite/sobjects", params=dict(params), method="DELETE", timeout=timeout)

            try:
                rows = self._rows_of(await self._transport.call(f"delete {object}", run), len(chunk))
            except BudgetSpentError:
                raise  # the connection's day is over, not this record's write: end the pass
            except ConnectorError as exc:
                outcomes.extend(WriteOutcome(i, exc) for i in chunk)
                continue
            for record_id, row in zip(chunk, rows, strict=True):
                errors = row.get("errors")
                gone = isinstance(errors, list) and errors and errors[0].get("statusCode") == "ENTITY_IS_DELETED"
                if row.get("success") or gone:
                    outcomes.append(WriteOutcome(record_id))
                else:
                    outcomes.append(WriteOutcome(record_id, record_error(errors, connection=self.name,
                                                                         record=record_id)))
        return outcomes

    async def act(self, object: str, id: str, action: str) -> None:
        """Salesforce models no record actions of this kind; state lives in fields (StageName)."""
        raise SkippableError(f"Salesforce has no action {action!r} on {object}; write the field instead",
                             connection=self.name, record=id)

    # --- change events ---

    def verify_webhook(self, request: WebhookRequest) -> None:
        """Check the feed's HMAC signature (keyed with the connected app's client secret)."""
        verify_feed(request, self.settings.client_secret.get_secret_value())

    def parse_webhook(self, request: WebhookRequest) -> Sequence[ChangeEvent]:
        """CDC-shaped events about the objects this connector serves."""
        return parse_feed(request.body, OBJECTS)

    async def register_webhooks(self, url: str, fields: Mapping[str, Collection[str]]) -> bool:
        """False: Change Data Capture and outbound messages are set up in Setup by an admin (`fields` is not
        needed for it)."""
        return False


def _match_key(value: object, is_id: bool) -> str | None:
    if value is None:
        return None
    text = str(value)
    # SOQL `=` on text ignores case (in the user's locale); only A-Z are lower-cased here, because Unicode
    # folding would also equate 'straße' and 'strasse', which Salesforce keeps apart.
    return text[:15] if is_id else ascii_lower(text)


def _replication_date(moment: datetime) -> str:
    """start/end of `updated/` and `deleted/`: ISO 8601 with an explicit offset (seconds are ignored)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
