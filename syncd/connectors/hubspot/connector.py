"""`HubSpotConnector`: HubSpot CRM v3 through hubspot-api-client, as plain typed records."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any

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
from syncd.connectors.hubspot.errors import classify_item_error
from syncd.connectors.hubspot.oauth import HubSpotOAuth
from syncd.connectors.hubspot.search import modified_ms, search_changes
from syncd.connectors.hubspot.settings import HubSpotConnection
from syncd.connectors.hubspot.subscriptions import AppWebhooks, wanted_subscriptions
from syncd.connectors.hubspot.transport import HubSpotTransport, RawAnswer, SdkApis
from syncd.connectors.hubspot.values import parse_timestamp, to_hubspot, typed_properties
from syncd.connectors.hubspot.webhooks import parse_events, verify_signature
from syncd.connectors.ratelimit import Budget, RateLimiter
from syncd.connectors.retry import RetryPolicy
from syncd.connectors.server_clock import server_time
from syncd.connectors.tokens import Grant, TokenManager, TokenStorage
from syncd.errors import (
    ConnectorError,
    FatalError,
    NotFoundError,
    SkippableError,
    UnknownOutcomeError,
)
from syncd.logs import get_logger
from syncd.textkeys import text_key

log = get_logger(__name__)

OBJECTS: tuple[str, ...] = ("contacts", "companies", "deals", "line_items")
MODIFIED_PROPERTY: dict[str, str] = {
    "contacts": "lastmodifieddate", "companies": "hs_lastmodifieddate", "deals": "hs_lastmodifieddate",
    "line_items": "hs_lastmodifieddate",
}
REFERENCE_PROPERTY = "syncd_ref"
MERGED_PROPERTY = "hs_merged_object_ids"  # on a merge survivor: the ids it absorbed, `;`-separated
BATCH = 100  # HubSpot's batch input limit
LIST_PAGE = 100
# Deal fields that are not properties: the first associated contact/company, and the line items.
DEAL_ASSOCIATIONS: dict[str, str] = {"associations.contacts": "contacts", "associations.companies": "companies"}
LINE_ITEM_FIELDS = ("name", "quantity", "price", "amount")
# What a deal read from a list or search lacks: `get_many` reads these (three association reads and a batch
# read of lines per 100 deals), which the engine asks for only for deals that changed.
DEAL_EXTRAS = frozenset({*DEAL_ASSOCIATIONS, "line_items"})
DEFAULT_BUDGET = Budget(window_s=10.0, window_max=100, daily_cap=250_000)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UNKNOWN_OUTCOME_ROUNDS = 3
# How long CRM search may take to index a change: a read's cursor stays this far behind the server's time.
SEARCH_LAG = timedelta(seconds=30)
# How much earlier than its `Date` (whole seconds, truncated) a list answer may reflect the records.
DATE_PRECISION = timedelta(seconds=1)


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _stamp(object: str, raw: Mapping[str, Any]) -> datetime:
    """A HubSpot object's modification stamp: its modified-date property, else `updatedAt`."""
    props = raw.get("properties") or {}
    stamp = props.get(MODIFIED_PROPERTY[object]) or raw.get("updatedAt") or ""
    return parse_timestamp(str(stamp)) or _EPOCH


def _merged_away(object: str, raws: Sequence[Mapping[str, Any]]) -> list[Record]:
    """The records each search result absorbed (`hs_merged_object_ids`), as records merged into it: a merge
    touches the survivor, so the change search that finds it also names what it absorbed, without a search
    of its own. Every later change of the survivor names them again; a link already moved is not found."""
    out: list[Record] = []
    for raw in raws:
        for merged in str((raw.get("properties") or {}).get(MERGED_PROPERTY) or "").split(";"):
            if merged.strip():
                out.append(Record("hubspot", object, merged.strip(), {}, _stamp(object, raw), deleted=True,
                                  merged_into=str(raw["id"])))
    return out


def _with_lines_changed(record: Record, newest_line: Mapping[str, int]) -> Record:
    """A deal stamped with its newest line change when that is later: editing a line item leaves the deal's
    own date alone, yet changes what the deal maps to."""
    line_ms = newest_line.get(record.id)
    if line_ms is None:
        return record
    moment = datetime.fromtimestamp(line_ms / 1000, tz=UTC)
    return replace(record, modified_at=moment) if moment > record.modified_at else record


def _now() -> datetime:
    return datetime.now(UTC)


class HubSpotConnector:
    """One HubSpot portal: contacts, companies, deals (with associations and line items) and line items."""

    system = "hubspot"
    # How finely the system stamps modifications: whether a stamp seen again proves nothing changed.
    stamp_resolution = timedelta(milliseconds=1)
    # Records one create call takes (HubSpot batch create): what a first sync's estimate counts calls by.
    create_batch = BATCH
    # Every HubSpot property is written directly; nothing moves by actions alone.
    action_fields: Mapping[str, ActionField] = MappingProxyType({})

    def __init__(
        self,
        name: str,
        settings: HubSpotConnection,
        *,
        storage: TokenStorage | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        policy = retry_policy or RetryPolicy()
        self.limiter = RateLimiter(name, DEFAULT_BUDGET.configured(settings.rate_limit))
        self.oauth = HubSpotOAuth(name, settings, policy=policy)
        refresh = settings.refresh_token.get_secret_value() if settings.refresh_token is not None else None
        self.tokens = TokenManager(name, self.oauth.refresh, storage=storage, refresh_token=refresh)
        self.transport = HubSpotTransport(
            name, base_url=settings.base_url, timeout_s=settings.timeout_s,
            max_concurrency=settings.max_concurrency, tokens=self.tokens, limiter=self.limiter, policy=policy,
        )
        self._described: dict[str, dict[str, FieldInfo]] = {}

    # --- lifecycle and auth ---

    async def start(self) -> None:
        """Start the executor and the OAuth session; the token is fetched on first use."""
        self.transport.start()
        self.oauth.open()

    async def close(self) -> None:
        """Stop the executor and close every connection."""
        await self.transport.close()
        await self.oauth.close()

    def objects(self) -> Sequence[str]:
        """contacts, companies, deals, line_items."""
        return OBJECTS

    def authorize_url(self, redirect_uri: str, state: str) -> str:
        """The HubSpot consent page for `syncd auth`."""
        return self.oauth.authorize_url(redirect_uri, state)

    async def exchange_code(self, code: str, redirect_uri: str) -> Grant:
        """Trade an authorisation code for tokens; the connector uses them from now on."""
        grant = await self.oauth.exchange_code(code, redirect_uri)
        self.tokens.reauthorised(grant)
        return grant

    # --- reading ---

    async def describe(self, object: str) -> Mapping[str, FieldInfo]:
        """Properties as the properties API lists them, plus the deal's association and line-item fields."""
        self._check_object(object)
        cached = self._described.get(object)
        if cached is not None:
            return cached
        answer = await self._call(f"describe {object}",
                                  lambda a, t: a.properties.get_all_with_http_info(
                                      object, archived=False, _preload_content=False, _request_timeout=t))
        fields: dict[str, FieldInfo] = {}
        for prop in (answer.body or {}).get("results", []):
            meta = prop.get("modificationMetadata") or {}
            writable = not meta.get("readOnlyValue", False) and not prop.get("calculated", False)
            fields[prop["name"]] = FieldInfo(
                name=prop["name"], type=str(prop.get("type", "string")), label=str(prop.get("label", "")),
                createable=writable, updateable=writable, unique=bool(prop.get("hasUniqueValue", False)),
                options=tuple(str(o.get("value")) for o in prop.get("options") or [] if isinstance(o, Mapping)),
            )
        if object == "deals":
            for field in DEAL_ASSOCIATIONS:
                fields[field] = FieldInfo(field, "association", label=field)
            fields["line_items"] = FieldInfo("line_items", "line_items", "Line items", createable=False,
                                             updateable=False)
            # Each line's properties, as `line_items.price`: what a mapping's items may name.
            for name, info in (await self.describe("line_items")).items():
                fields[f"line_items.{name}"] = FieldInfo(f"line_items.{name}", info.type, info.label,
                                                         createable=False, updateable=False)
        self._described[object] = fields
        return fields

    async def _property_names(self, object: str) -> list[str]:
        described = await self.describe(object)
        return [name for name, info in described.items() if info.type not in ("association", "line_items")]

    async def _types(self, object: str) -> dict[str, str]:
        return {name: info.type for name, info in (await self.describe(object)).items()}

    async def changes(
        self, object: str, since: datetime | None, overlap: timedelta, expected: int = 0
    ) -> AsyncIterator[Page]:
        """Changed records oldest first: a search window from `since - overlap`, or every record when None.
        Deals whose line items changed in that window come too, once, in a last page of their own."""
        self._check_object(object)
        read_started = _now()
        if since is None:
            async for page in self._list_all(object, read_started):
                yield page
            return
        # Editing a line item touches only the line item, so a deal whose lines changed is read too. The line
        # search runs first, after `read_started` was taken (a line edited later is newer than any cursor of
        # this read), and leaves `pending`: deal id -> its oldest line change (epoch ms) not yet handed out.
        pending: dict[str, int] = {}
        newest_line: dict[str, int] = {}
        lines_cursor_ms: int | None = None
        answered: list[datetime] = []  # the server's time of each search answer of this read
        if object == "deals":
            pending, newest_line, lines_cursor_ms = await self._deals_with_changed_lines(
                since - overlap, read_started, answered
            )
        properties = await self._property_names(object)
        cursor = utc_floor(since, read_started)
        any_page = False
        search_pages = search_changes(
            self._search_call(object, answered), modified_property=MODIFIED_PROPERTY[object], properties=properties,
            start=since - overlap, until=read_started, expected=expected, held=since,
        )
        async for window in search_pages:
            records = [_with_lines_changed(r, newest_line) for r in await self._records(object, window.results,
                                                                                        complete=False)]
            for record in records:
                pending.pop(record.id, None)  # handed out now, stamped with its newest line change
            cursor = utc_floor(datetime.fromtimestamp(window.cursor_ms / 1000, tz=UTC), read_started)
            any_page = True
            merged = _merged_away(object, window.results)
            yield Page([*merged, *records], self._before_pending(cursor, pending, since))
        if pending:
            # One more page: the deals whose lines changed but that did not change themselves. Both searches
            # are complete now, so the cursor may go as far as the later of the two (never past the read's
            # start); a deal archived meanwhile is simply absent.
            raws = await self._batch_read(object, list(pending), id_property=None)
            records = [_with_lines_changed(r, newest_line) for r in await self._records(object, raws,
                                                                                        complete=False)]
            if lines_cursor_ms is not None:
                lines_cursor = datetime.fromtimestamp(lines_cursor_ms / 1000, tz=UTC)
                cursor = max(cursor, utc_floor(lines_cursor, read_started))
            yield Page(records, cursor)
            return
        if not any_page:
            yield Page([], utc_floor(since, read_started))
        if answered:
            # Every search of this read is complete: what was indexed before the first answer (less the
            # index's lag) has been handed out, so the cursor may move up to it by the server's clock. With
            # nothing changing, the overlap window then empties instead of re-reading the last changes forever.
            indexed = min(answered) - SEARCH_LAG
            if indexed > cursor:
                yield Page([], indexed)

    @staticmethod
    def _before_pending(cursor: datetime, pending: Mapping[str, int], since: datetime) -> datetime:
        """A deal page's cursor held at the oldest line change whose deal is not handed out yet, so that a
        crash before the last page re-reads it; never below `since` (which re-reads it all the same, the
        change being within `since - overlap`), so cursors never go backwards."""
        if not pending:
            return cursor
        oldest = datetime.fromtimestamp(min(pending.values()) / 1000, tz=UTC)
        return max(min(cursor, oldest), min(since, cursor))

    async def _deals_with_changed_lines(self, start: datetime, read_started: datetime, answered: list[datetime]
                                        ) -> tuple[dict[str, int], dict[str, int], int | None]:
        """Deals whose line items were modified since `start` (oldest and newest line change per deal, epoch
        ms), and the line search's last cursor (None when no line changed). One search per poll; association
        reads only when lines changed. Archived lines are not covered: their associations can no longer be
        read."""
        changed: dict[str, int] = {}
        cursor_ms: int | None = None
        modified = MODIFIED_PROPERTY["line_items"]
        async for window in search_changes(self._search_call("line_items", answered), modified_property=modified,
                                           properties=[modified], start=start, until=read_started):
            cursor_ms = window.cursor_ms
            for raw in window.results:
                ident = str(raw["id"])
                changed.setdefault(ident, modified_ms(raw, modified))
        deals: dict[str, int] = {}
        newest: dict[str, int] = {}
        if changed:
            for line_id, deal_ids in (await self._associated("line_items", "deals", list(changed))).items():
                for deal_id in deal_ids:
                    deals[deal_id] = min(deals.get(deal_id, changed[line_id]), changed[line_id])
                    newest[deal_id] = max(newest.get(deal_id, changed[line_id]), changed[line_id])
        return deals, newest, cursor_ms

    async def _list_all(self, object: str, read_started: datetime) -> AsyncIterator[Page]:
        """Every record, in pages of the largest size. Pages carry the epoch as cursor: only the last page may
        move it, because ids, not dates, order this listing; it moves to the read's start by the server's clock
        (the searches that follow compare the server's stamps), ours only when the server sends no `Date`."""
        properties = await self._property_names(object)
        after: str | None = None
        started = read_started
        while True:
            answer = await self._list_page(object, properties, after, archived=False)
            if after is None and (moment := server_time(answer.headers.get("date"))) is not None:
                # A list reads the records, not the search index: it lags nothing, so the next search
                # need only start from the list's start (less what the whole-second `Date` hides). A change
                # made after it that the index has not taken yet is the next search's concern (its cursor
                # stays the lag behind its own answers).
                started = moment - DATE_PRECISION
            body = answer.body or {}
            records = await self._records(object, body.get("results", []), complete=False)
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if after is None:
                yield Page(records, started)
                return
            yield Page(records, _EPOCH)

    async def _list_page(self, object: str, properties: list[str], after: str | None, *, archived: bool
                         ) -> RawAnswer:
        def call(apis: SdkApis, timeout: float) -> Any:
            kwargs: dict[str, Any] = {"limit": LIST_PAGE, "properties": properties,
                                      "archived": "true" if archived else "false"}
            if after is not None:
                kwargs["after"] = after
            return apis.objects_basic.get_page_with_http_info(object, _preload_content=False,
                                                              _request_timeout=timeout, **kwargs)

        return await self._call(f"list {object}", call)

    def _search_call(self, object: str, answered: list[datetime] | None = None) -> Any:
        """A search function for `object`; each answer's server time (its `Date`) goes into `answered`."""
        async def search(body: dict[str, Any]) -> Mapping[str, Any]:
            answer = await self._call(f"search {object}", lambda a, t: a.objects_search.do_search_with_http_info(
                object, body, _preload_content=False, _request_timeout=t), search=True)
            if answered is not None and (moment := server_time(answer.headers.get("date"))) is not None:
                answered.append(moment)
            return answer.body or {}

        return search

    async def get_many(self, object: str, ids: Sequence[str]) -> Mapping[str, Record]:
        """Full records by id through batch read; missing ids are absent."""
        self._check_object(object)
        raws = await self._batch_read(object, list(dict.fromkeys(ids)), id_property=None)
        records = await self._records(object, raws)
        return {record.id: record for record in records}

    async def _batch_read(self, object: str, ids: Sequence[str], *, id_property: str | None,
                          properties: list[str] | None = None) -> list[Mapping[str, Any]]:
        wanted = properties if properties is not None else await self._property_names(object)
        found: list[Mapping[str, Any]] = []
        for chunk in _chunks(ids, BATCH):
            body: dict[str, Any] = {"inputs": [{"id": i} for i in chunk], "properties": wanted}
            if id_property is not None:
                body["idProperty"] = id_property
            answer = await self._call(f"batch read {object}", lambda a, t, b=body: a.objects_batch.read_with_http_info(
                object, b, archived=False, _preload_content=False, _request_timeout=t))
            # 207 lists the ids that were not found; they are simply absent.
            found.extend((answer.body or {}).get("results", []))
        return found

    async def _records(self, object: str, raws: Sequence[Mapping[str, Any]], *, complete: bool = True
                       ) -> list[Record]:
        """Typed records; a deal's associations and lines are read too when `complete`, else named missing."""
        types = await self._types(object)
        extra: dict[str, dict[str, FieldValue]] = {}
        missing: frozenset[str] = frozenset()
        if object == "deals" and raws:
            if complete:
                extra = await self._deal_extras([str(r["id"]) for r in raws])
            else:
                missing = DEAL_EXTRAS
        out = []
        for raw in raws:
            props = raw.get("properties") or {}
            fields = typed_properties(types, props)
            fields.update(extra.get(str(raw["id"]), {}))
            out.append(Record(self.system, object, str(raw["id"]), fields, _stamp(object, raw),
                              deleted=bool(raw.get("archived", False)), missing=missing))
        return out

    async def _deal_extras(self, deal_ids: list[str]) -> dict[str, dict[str, FieldValue]]:
        """associations.contacts/companies (first id) and line_items for each deal."""
        extras: dict[str, dict[str, FieldValue]] = {d: {f: None for f in DEAL_ASSOCIATIONS} for d in deal_ids}
        for field, to_object in DEAL_ASSOCIATIONS.items():
            for deal_id, targets in (await self._associated("deals", to_object, deal_ids)).items():
                extras[deal_id][field] = targets[0] if targets else None
        lines = await self._associated("deals", "line_items", deal_ids)
        line_ids = list(dict.fromkeys(i for ids in lines.values() for i in ids))
        by_id: dict[str, Mapping[str, Any]] = {}
        if line_ids:
            for raw in await self._batch_read("line_items", line_ids, id_property=None,
                                              properties=list(LINE_ITEM_FIELDS)):
                by_id[str(raw["id"])] = raw
        types = await self._types("line_items")
        for deal_id in deal_ids:
            items: list[Mapping[str, FieldValue]] = []
            for line_id in lines.get(deal_id, []):
                line = by_id.get(line_id)
                if line is None:
                    continue
                typed = typed_properties(types, {k: (line.get("properties") or {}).get(k) for k in LINE_ITEM_FIELDS})
                items.append({"id": line_id, **typed})
            extras[deal_id]["line_items"] = items
        return extras

    async def _associated(self, from_object: str, to_object: str, ids: Sequence[str]) -> dict[str, list[str]]:
        """Associated record ids per record (associations v4 batch read), sorted for a stable "first"."""
        out: dict[str, list[str]] = {}
        for chunk in _chunks(ids, BATCH):
            body = {"inputs": [{"id": i} for i in chunk]}
            answer = await self._call(
                f"associations {from_object}->{to_object}",
                lambda a, t, b=body: a.associations_batch.get_page_with_http_info(
                    from_object, to_object, b, _preload_content=False, _request_timeout=t))
            for result in (answer.body or {}).get("results", []):
                source = str((result.get("from") or {}).get("id"))
                targets = [str(t.get("toObjectId")) for t in result.get("to") or []]
                out.setdefault(source, []).extend(targets)
        return {k: sorted(v, key=lambda s: (len(s), s)) for k, v in out.items()}

    # --- lookups and deletions ---

    async def find_by_field(self, object: str, field: str, values: Sequence[str]) -> Mapping[str, list[Record]]:
        """Exact matches per value: batch read by a unique property, else search EQ/IN (values sent as JSON)."""
        self._check_object(object)
        described = await self.describe(object)
        info = described.get(field)
        if info is None:
            raise SkippableError(f"{object} has no property {field!r}", connection=self.name)
        wanted = list(dict.fromkeys(v for v in values if v != ""))
        result: dict[str, list[Record]] = {v: [] for v in values}
        if not wanted:
            return result
        if info.unique:
            raws = await self._batch_read(object, wanted, id_property=field)
        else:
            raws = await self._search_in(object, field, wanted)
        # Values differing only in case reach the same record more than once.
        raws = list({str(r["id"]): r for r in raws}.values())
        records = await self._records(object, raws)
        for value in wanted:
            result[value] = [r for r in records if self._equals(field, r.fields.get(field), value)]
        return result

    @staticmethod
    def _equals(field: str, stored: FieldValue, value: str) -> bool:
        if stored is None:
            return False
        text = to_hubspot(stored) if not isinstance(stored, str) else stored
        if isinstance(stored, Decimal):
            try:
                return stored == Decimal(value)
            except ArithmeticError:
                return False
        # HubSpot keeps e-mail addresses case-insensitively; other text must match exactly. Only A-Z count
        # as case: Unicode folding would take 'strasse@' for 'straße@', a different address.
        if field == "email":
            return text_key(text) == text_key(value)
        return text == value

    async def _search_in(self, object: str, field: str, values: Sequence[str]) -> list[Mapping[str, Any]]:
        properties = await self._property_names(object)
        search = self._search_call(object)
        found: dict[str, Mapping[str, Any]] = {}
        for chunk in _chunks(values, BATCH):
            after: str | None = None
            while True:
                body: dict[str, Any] = {
                    "filterGroups": [{"filters": [{"propertyName": field, "operator": "IN", "values": list(chunk)}]}],
                    "properties": properties, "limit": 200,
                }
                if after is not None:
                    body["after"] = after
                answer = await search(body)
                for raw in answer.get("results") or []:
                    found[str(raw["id"])] = raw
                after = ((answer.get("paging") or {}).get("next") or {}).get("after")
                if after is None or int(after) >= 10_000:
                    break
        return list(found.values())

    async def deletions(self, object: str, since: datetime) -> Sequence[Deletion] | None:
        """Archived records with archivedAt ≥ since, and records merged away since then."""
        self._check_object(object)
        out: dict[str, Deletion] = {}
        after: str | None = None
        while True:
            answer = await self._list_page(object, ["hs_object_id"], after, archived=True)
            body = answer.body or {}
            for raw in body.get("results", []):
                when = parse_timestamp(str(raw.get("archivedAt") or raw.get("updatedAt") or ""))
                if when is not None and when >= since:
                    out[str(raw["id"])] = Deletion(object, str(raw["id"]), when)
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if after is None:
                break
        if object != "line_items":
            await self._merges(object, since, out)
        return sorted(out.values(), key=lambda d: d.deleted_at)

    async def _merges(self, object: str, since: datetime, out: dict[str, Deletion]) -> None:
        modified = MODIFIED_PROPERTY[object]
        search = self._search_call(object)
        after: str | None = None
        while True:
            body: dict[str, Any] = {
                "filterGroups": [{"filters": [
                    {"propertyName": MERGED_PROPERTY, "operator": "HAS_PROPERTY"},
                    {"propertyName": modified, "operator": "GTE", "value": str(int(since.timestamp() * 1000))},
                ]}],
                "properties": [MERGED_PROPERTY, modified], "limit": 200,
            }
            if after is not None:
                body["after"] = after
            answer = await search(body)
            for raw in answer.get("results") or []:
                props = raw.get("properties") or {}
                when = parse_timestamp(str(props.get(modified) or raw.get("updatedAt") or "")) or since
                for merged in str(props.get(MERGED_PROPERTY) or "").split(";"):
                    if merged.strip():
                        out[merged.strip()] = Deletion(object, merged.strip(), when, merged_into=str(raw["id"]))
            after = ((answer.get("paging") or {}).get("next") or {}).get("after")
            if after is None or int(after) >= 10_000:
                return

    # --- writing ---

    def _properties(self, fields: Mapping[str, FieldValue]) -> dict[str, str]:
        return {k: to_hubspot(v) for k, v in fields.items() if k not in DEAL_ASSOCIATIONS and k != "line_items"}

    async def create_many(self, object: str, items: Sequence[Create]) -> Sequence[WriteOutcome]:
        """Batch upserts keyed by `syncd_ref` (idempotent); a lost answer is resolved by looking refs up."""
        self._check_object(object)
        outcomes: dict[str, WriteOutcome] = {}
        for chunk in _chunks(list(items), BATCH):
            outcomes.update(await self._create_chunk(object, chunk))
        result = [outcomes[item.reference] for item in items]
        if object == "deals":
            result = await self._associate_deals(items, result)
        return result

    async def _create_chunk(self, object: str, chunk: Sequence[Create]) -> dict[str, WriteOutcome]:
        outcomes: dict[str, WriteOutcome] = {}
        pending = list(chunk)
        for _ in range(_UNKNOWN_OUTCOME_ROUNDS):
            try:
                outcomes.update(await self._upsert(object, pending))
                return outcomes
            except UnknownOutcomeError as exc:
                # The batch may have been applied: find what exists before sending anything again.
                log.warning("create outcome unknown; looking the reference up before any retry",
                            connection=self.name, object=object, error=str(exc))
                existing = await self._batch_read(object, [c.reference for c in pending],
                                                  id_property=REFERENCE_PROPERTY, properties=[REFERENCE_PROPERTY])
                found = {str((r.get("properties") or {}).get(REFERENCE_PROPERTY)): str(r["id"]) for r in existing}
                for item in pending:
                    if item.reference in found:
                        outcomes[item.reference] = WriteOutcome(found[item.reference], existed=True)
                pending = [c for c in pending if c.reference not in found]
                if not pending:
                    return outcomes
                last = exc
            except SkippableError as exc:
                if len(pending) == 1:
                    outcomes[pending[0].reference] = WriteOutcome(None, self._for_record(exc, pending[0].reference))
                    return outcomes
                # HubSpot refused the whole batch for one bad input: send them one by one to isolate it.
                for item in pending:
                    outcomes.update(await self._create_chunk(object, [item]))
                return outcomes
        for item in pending:
            outcomes[item.reference] = WriteOutcome(None, last)
        return outcomes

    async def _upsert(self, object: str, pending: Sequence[Create]) -> dict[str, WriteOutcome]:
        inputs = [
            {"id": c.reference, "idProperty": REFERENCE_PROPERTY,
             "properties": {**self._properties(c.fields), REFERENCE_PROPERTY: c.reference}}
            for c in pending
        ]
        answer = await self._call(
            f"batch upsert {object}",
            lambda a, t: a.objects_batch.upsert_with_http_info(object, {"inputs": inputs}, _preload_content=False,
                                                               _request_timeout=t),
            unsafe_write=True,
        )
        body = answer.body or {}
        outcomes: dict[str, WriteOutcome] = {}
        for raw in body.get("results", []):
            ref = str((raw.get("properties") or {}).get(REFERENCE_PROPERTY))
            outcomes[ref] = WriteOutcome(str(raw["id"]), existed=not bool(raw.get("new", True)),
                                         modified_at=_stamp(object, raw))
        for error in body.get("errors", []):
            for ref in self._error_ids(error):
                outcomes[ref] = WriteOutcome(None, classify_item_error(error, connection=self.name, record=ref))
        for item in pending:
            outcomes.setdefault(item.reference, WriteOutcome(None, FatalError(
                "HubSpot's upsert answer did not mention this record", connection=self.name, record=item.reference)))
        return outcomes

    @staticmethod
    def _error_ids(error: Mapping[str, Any]) -> list[str]:
        context = error.get("context") or {}
        ids: list[str] = []
        for key in ("id", "ids", "fromObjectId"):
            value = context.get(key)
            if isinstance(value, list):
                ids.extend(str(v) for v in value)
        return ids

    async def _associate_deals(self, items: Sequence[Create | Update], outcomes: Sequence[WriteOutcome]
                               ) -> list[WriteOutcome]:
        """Give written deals their contact/company (HubSpot's default association type)."""
        result = list(outcomes)
        for field, to_object in DEAL_ASSOCIATIONS.items():
            pairs = [(index, outcome.id, str(item.fields[field])) for index, (item, outcome)
                     in enumerate(zip(items, outcomes, strict=True))
                     if outcome.ok and outcome.id and item.fields.get(field) not in (None, "")]
            for chunk in _chunks(pairs, BATCH):
                body = {"inputs": [{"from": {"id": deal}, "to": {"id": target}} for _, deal, target in chunk]}
                try:
                    await self._call(
                        f"associate deals->{to_object}",
                        lambda a, t, b=body, to=to_object: a.associations_batch.create_default_with_http_info(
                            "deals", to, b, _preload_content=False, _request_timeout=t))
                except (SkippableError, FatalError) as exc:
                    for index, deal, _ in chunk:
                        result[index] = WriteOutcome(deal, self._for_record(exc, deal), result[index].existed)
        return result

    async def update_many(self, object: str, items: Sequence[Update]) -> Sequence[WriteOutcome]:
        """Batch updates (idempotent, so transient failures are simply retried)."""
        self._check_object(object)
        outcomes: dict[str, WriteOutcome] = {}
        for chunk in _chunks(list(items), BATCH):
            outcomes.update(await self._update_chunk(object, chunk))
        result = [outcomes[item.id] for item in items]
        if object == "deals":
            result = await self._associate_deals(items, result)
        return result

    async def _update_chunk(self, object: str, chunk: Sequence[Update]) -> dict[str, WriteOutcome]:
        inputs = [{"id": u.id, "properties": self._properties(u.fields)} for u in chunk]
        try:
            answer = await self._call(
                f"batch update {object}",
                lambda a, t: a.objects_batch.update_with_http_info(object, {"inputs": inputs},
                                                                   _preload_content=False, _request_timeout=t))
        except SkippableError as exc:
            if len(chunk) == 1:
                return {chunk[0].id: WriteOutcome(None, self._for_record(exc, chunk[0].id))}
            outcomes: dict[str, WriteOutcome] = {}
            for item in chunk:
                outcomes.update(await self._update_chunk(object, [item]))
            return outcomes
        body = answer.body or {}
        result: dict[str, WriteOutcome] = {}
        for raw in body.get("results", []):
            result[str(raw["id"])] = WriteOutcome(str(raw["id"]), modified_at=_stamp(object, raw))
        for error in body.get("errors", []):
            for ident in self._error_ids(error):
                result[ident] = WriteOutcome(None, classify_item_error(error, connection=self.name, record=ident))
        for item in chunk:
            result.setdefault(item.id, WriteOutcome(None, NotFoundError(
                "HubSpot's update answer did not mention this record", connection=self.name, record=item.id)))
        return result

    async def delete_many(self, object: str, ids: Sequence[str]) -> Sequence[WriteOutcome]:
        """Batch archive; archiving an archived or missing record is not an error in HubSpot."""
        self._check_object(object)
        for chunk in _chunks(list(ids), BATCH):
            body = {"inputs": [{"id": i} for i in chunk]}
            await self._call(f"batch archive {object}", lambda a, t, b=body: a.objects_batch.archive_with_http_info(
                object, b, _preload_content=False, _request_timeout=t))
        return [WriteOutcome(i) for i in ids]

    async def act(self, object: str, id: str, action: str) -> None:
        """HubSpot models no state transitions as actions."""
        raise SkippableError(f"HubSpot has no action {action!r} on {object}", connection=self.name, record=id)

    # --- webhooks ---

    def _app_secret(self) -> str:
        secret = self.settings.app_secret or self.settings.client_secret
        return secret.get_secret_value()

    def verify_webhook(self, request: WebhookRequest) -> None:
        """Signature v3 (fresh within 5 minutes), or v1/v2 where the connection lists them, with the app secret;
        raises `WebhookRejected`."""
        verify_signature(request, self._app_secret(), legacy=self.settings.legacy_webhook_signatures)

    def parse_webhook(self, request: WebhookRequest) -> Sequence[ChangeEvent]:
        """The delivery's events as change events (deduplication is the inbox's job)."""
        return parse_events(request.body, OBJECTS)

    async def register_webhooks(self, url: str, fields: Mapping[str, Collection[str]]) -> bool:
        """Point the app's webhooks at `url` and subscribe to what `fields` (object → field names the mappings
        read) needs, through the Webhooks v3 API with the developer API key; False (set up by hand) without
        app_id and that key. See `subscriptions.wanted_subscriptions` for what is subscribed.

        Idempotent: subscriptions already there are kept (switched on if paused), only missing ones are made."""
        app_id = self.settings.app_id
        key = self.settings.developer_api_key
        if app_id is None or key is None:
            return False
        for obj in fields:
            self._check_object(obj)
        # The properties API says which named properties exist and which a user can change.
        described = {obj: await self.describe(obj) for obj in fields}
        wanted = wanted_subscriptions(fields, described)
        app = AppWebhooks(self.transport, connection=self.name, app_id=app_id, api_key=key.get_secret_value())
        done = await app.register(url, wanted)
        log.info("webhook subscriptions in place", connection=self.name, app_id=app_id, created=done.created,
                 activated=done.activated, total=done.total)
        return True

    # --- plumbing ---

    def _check_object(self, object: str) -> None:
        if object not in OBJECTS:
            raise FatalError(f"HubSpot connector serves {', '.join(OBJECTS)}, not {object!r}", connection=self.name)

    def _for_record(self, exc: ConnectorError, record: str) -> ConnectorError:
        if exc.record == record:
            return exc
        clone = type(exc).__new__(type(exc))
        clone.__dict__.update(exc.__dict__)
        clone.record = record
        clone.args = (f"[{self.name} {record}] {exc.vendor_message}",)
        return clone

    @property
    def clock_offset(self) -> timedelta:
        """How far HubSpot's clock runs from ours, as its last answer said (zero before the first)."""
        return self.transport.server_clock.offset

    async def _call(self, what: str, call: Any, *, unsafe_write: bool = False, search: bool = False) -> RawAnswer:
        return await self.transport.call(what, call, unsafe_write=unsafe_write, search=search)
