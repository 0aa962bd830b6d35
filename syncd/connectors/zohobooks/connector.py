"""`ZohoBooksConnector`: contacts, invoices, customer payments and items of one Zoho Books organisation."""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from types import MappingProxyType
from typing import Any, TypeVar

import aiohttp

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
)
from syncd.connectors.ratelimit import Budget, RateLimiter
from syncd.connectors.recent_reads import RecentReads
from syncd.connectors.record_locks import RecordLocks
from syncd.connectors.retry import RetryPolicy
from syncd.connectors.tokens import Grant, TokenManager, TokenStorage
from syncd.connectors.zohobooks import applications as apps
from syncd.connectors.zohobooks import webhooks
from syncd.connectors.zohobooks.http import Answer, BooksHttp, ZohoAccounts, authorize_url
from syncd.connectors.zohobooks.settings import ZohoBooksConnection
from syncd.connectors.zohobooks.values import (
    CONTACTS,
    INVOICES,
    ITEMS,
    LINE_KINDS,
    MODULES,
    PAYMENTS,
    REFERENCE_FIELD,
    Module,
    UnwritableField,
    flatten,
    format_timestamp,
    modified_at,
    summary_missing,
    unflatten,
)
from syncd.errors import (
    BudgetSpentError,
    ConnectorError,
    DuplicateError,
    FatalError,
    NameTakenError,
    NotFoundError,
    SkippableError,
    UnknownOutcomeError,
)
from syncd.logs import get_logger
from syncd.textkeys import ascii_lower

log = get_logger(__name__)
T = TypeVar("T")

DEFAULT_BUDGET = Budget(window_s=60.0, window_max=100, daily_cap=10_000)
# Zoho's window is a minute: a window 429 asks for up to 60 s, which is waited out here rather than handed
# up (the shared default stops at 30 s); a spent daily cap still goes up to the scheduler.
DEFAULT_POLICY = RetryPolicy(attempts=6, initial_s=0.5, max_s=65.0, jitter_s=0.5)
MAX_PAGE = 200
SECOND = timedelta(seconds=1)
# Rows of overlap a page-numbered window keeps before the last row read: records leaving behind the read pull
# the rest back by one place each, and up to this many such moves cost nothing (more cost one restart).
OVERLAP_ROWS = 2
# Recent seconds a scan weighs moving its filter to, when placing its next page.
FILTER_SECONDS = 64
# Pages a scan reads downward at most (its cursor holds until the last of them is read): 10,000 rows.
DOWNWARD_PAGES = 50
# How old a stamp must be, when its record is read, to stand for that content (whole seconds, clock skew).
SETTLED = timedelta(seconds=3)
# Records kept read in full (a few MB): enough for the overlap window of a busy organisation.
DETAIL_CACHE = 5_000
# How often a create whose answer was lost is looked up and tried again.
CREATE_ROUNDS = 5
REQUIRED: dict[str, frozenset[str]] = {
    "contacts": frozenset({"contact_name"}),
    "invoices": frozenset({"customer_id", "line_items"}),
    "customerpayments": frozenset({"customer_id", "payment_mode", "amount", "date", "invoices"}),
    "items": frozenset({"name", "rate"}),
}
ACTIONS: dict[str, dict[str, str]] = {
    "invoices": {"sent": "status/sent", "void": "status/void", "draft": "status/draft"},
    "contacts": {"active": "active", "inactive": "inactive"},
}


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class _Window:
    """One list call of a scan: page number and size, and how many rows past the last row read it reaches."""

    page: int
    per_page: int
    gain: int = 0


class _SecondCounts:
    """How many records a scan has read at each whole-second stamp (their latest version), by second."""

    def __init__(self) -> None:
        self._counts: dict[datetime, int] = {}
        self._seconds: list[datetime] = []  # sorted

    def count(self, second: datetime) -> int:
        """Records read stamped `second`."""
        return self._counts.get(second, 0)

    def add(self, second: datetime, step: int = 1) -> None:
        """Count one record more (or, with -1, one that moved on) at `second`."""
        if second not in self._counts:
            bisect.insort(self._seconds, second)
            self._counts[second] = 0
        self._counts[second] += step

    def recent(self, upto: datetime, limit: int) -> Iterator[tuple[datetime, int]]:
        """The latest `limit` seconds up to `upto`, newest first, each with the records read from it to `upto`."""
        total = 0
        end = bisect.bisect_right(self._seconds, upto)
        for second in reversed(self._seconds[max(0, end - limit) : end]):
            total += self._counts[second]
            yield second, total


def _window_after(at: int, slack: int, size: int) -> _Window:
    """The page (any size up to `size`) that starts at or before place `at - slack` of the list, so that it
    holds the row at `at` or one before it, and reaches furthest past `at`; with less overlap where pages
    so placed cannot reach past it (a page starts at a multiple of its size)."""
    for overlap in range(slack, -1, -1):
        best = _Window(1, size, size - at - 1)
        start = at - overlap
        if start <= 0:
            return best
        for per_page in range(size, 0, -1):
            skipped = start // per_page
            reach = (skipped + 1) * per_page - at - 1
            if reach > best.gain:
                best = _Window(skipped + 1, per_page, reach)
        if best.gain > 0:
            return best
    return _Window(1, size, size - at - 1)


def _final_cursor(
    last: tuple[str, datetime] | None, ceiling: datetime, server_started: datetime | None
) -> datetime:
    """A complete scan's cursor: a second short of the last row accepted (whole-second stamps: a later change
    in that second is still after it), never past the read's start; and, the whole list having been read after
    the server's first answer, up to that moment by the server's clock (the filter compares its stamps), so
    that with nothing changing the overlap window empties instead of re-listing the last changes forever."""
    final = min(last[1] - SECOND, ceiling) if last is not None else ceiling
    return max(final, server_started - SECOND) if server_started is not None else final


def _newer(
    stamped: Sequence[tuple[str, datetime, dict[str, Any]]], known: dict[str, datetime], read: _SecondCounts,
    low: datetime | None,
) -> list[dict[str, Any]]:
    """The rows of a scan's page not read before at their stamp (each counted in `known` and `read`), less
    those at or before the filter (read by an earlier scan, or listed by a server ignoring the filter)."""
    fresh: list[dict[str, Any]] = []
    for row_id, stamp, row in stamped:
        if not row_id:
            continue
        before = known.get(row_id)
        if before is not None and before >= stamp:
            continue
        if before is not None:
            read.add(before, -1)
        known[row_id] = stamp
        read.add(stamp)
        if low is None or stamp > low:
            fresh.append(row)
    return fresh


async def _in_turns(jobs: Sequence[Callable[[], Awaitable[T]]], workers: int) -> list[T]:
    """Each job's result, in order, from at most `workers` workers taking the jobs in turn (their slots are still
    the connection's semaphores, shared with any other batch at work): a first sync's thousands of creates then
    cost no task and no wake-up each, as a task per job queued on the semaphore did. A job's exception ends it."""
    pending = iter(enumerate(jobs))
    results: dict[int, T] = {}

    async def worker() -> None:
        for index, job in pending:
            results[index] = await job()

    await asyncio.gather(*(worker() for _ in range(min(len(jobs), workers))))
    return [results[index] for index in range(len(jobs))]


def _as_sent(module: Module, raw: Mapping[str, Any], sent: Mapping[str, FieldValue]) -> bool:
    """Whether a write's answer shows every field sent as it was sent: only then does its stamp stand for a
    record that is what base says (Books may store a value otherwise, and the record is then compared)."""
    written = flatten(module, raw, only=sent)
    return all(written[name] == value for name, value in sent.items() if name in written)


class ZohoBooksConnector:
    """One Zoho Books organisation over aiohttp, paced by its rate limiter, with one token manager."""

    system = "zohobooks"
    # How finely the system stamps modifications: whether a stamp seen again proves nothing changed.
    stamp_resolution = timedelta(seconds=1)
    # Records one create call takes (Zoho Books has no batch create): what a first sync's estimate counts by.
    create_batch = 1
    # An invoice is created a draft and its status moves only by actions (`status/sent`, `status/void`).
    action_fields: Mapping[str, ActionField] = MappingProxyType({"invoices": ActionField("status", "draft")})

    def __init__(
        self,
        name: str,
        settings: ZohoBooksConnection,
        *,
        storage: TokenStorage | None = None,
        policy: RetryPolicy | None = None,
        page_size: int = MAX_PAGE,
    ) -> None:
        self.name = name
        self.settings = settings
        self.limiter = RateLimiter(name, DEFAULT_BUDGET.configured(settings.rate_limit))
        self.policy = policy or DEFAULT_POLICY
        self.page_size = max(1, min(page_size, MAX_PAGE))
        self.tokens = TokenManager(
            name,
            self._refresh,
            storage=storage,
            refresh_token=settings.refresh_token.get_secret_value() if settings.refresh_token else None,
        )
        self._session: aiohttp.ClientSession | None = None
        self._http: BooksHttp | None = None
        self._accounts: ZohoAccounts | None = None
        self._fanout = asyncio.Semaphore(settings.max_concurrency)
        # Writes have their own slots: a write that reads (a contact's persons) never waits on a read slot
        # held by another write.
        self._writing = asyncio.Semaphore(settings.max_concurrency)
        self._described: dict[str, Mapping[str, FieldInfo]] = {}
        # What each payment's webhooks said it was applied to, so a later event can name what it left.
        self._applied = webhooks.AppliedInvoices()
        # Records read in full, by (module, id), with their stamp: the same stamp means the same content.
        self._details: dict[tuple[str, str], tuple[datetime, Record]] = {}
        # A contact's persons are rewritten whole from a read of them: one writer per contact at a time.
        self._persons_written = RecordLocks()
        # Contacts just read in full (the engine's check before a write): the write's own read of them is spared.
        self._persons_read = RecentReads[dict[str, Any]]()
        # Whether the `last_modified_time` filter compares finer than the whole seconds stamps show (a record
        # stamped 10:00:05 listed "after 10:00:05"): assumed, as the simulator built on the contract does, until
        # an answer shows otherwise.
        self._finer_filter = True

    # --- lifecycle ---

    async def start(self) -> None:
        """Open the HTTP session (one per connector, with the configured timeout)."""
        if self._session is not None:
            return
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.settings.timeout_s), trust_env=False
        )
        self._accounts = ZohoAccounts(self.name, self.settings, self._session, self.policy)
        self._http = BooksHttp(
            self.name, self.settings, self._session, self.tokens, self.limiter, self.policy
        )

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
        self._session = self._http = self._accounts = None

    @property
    def clock_offset(self) -> timedelta:
        """How far Zoho's clock runs from ours, as its last answer said (zero before the first)."""
        return self._http.server_clock.offset if self._http is not None else timedelta(0)

    async def _client(self) -> BooksHttp:
        await self.start()
        assert self._http is not None
        return self._http

    async def _refresh(self, refresh_token: str) -> Grant:
        await self.start()
        assert self._accounts is not None
        return await self._accounts.refresh(refresh_token)

    # --- OAuth for `syncd auth` ---

    def authorize_url(self, redirect_uri: str, state: str) -> str:
        """The consent URL of the accounts server (it redirects back with `code` and `state`)."""
        return authorize_url(self.settings, redirect_uri, state)

    async def exchange_code(self, code: str, redirect_uri: str) -> Grant:
        """Trade the code from the redirect for tokens; the token manager uses them from now on."""
        await self.start()
        assert self._accounts is not None
        grant = await self._accounts.exchange_code(code, redirect_uri)
        self.tokens.reauthorised(grant)
        return grant

    # --- reading ---

    def objects(self) -> Sequence[str]:
        """contacts, invoices, customerpayments, items, and invoicepayments (read-only applications)."""
        return (*MODULES, apps.APPLICATIONS)

    def _module(self, obj: str) -> Module:
        module = MODULES.get(obj)
        if module is None:
            raise FatalError(
                f"Zoho Books has no object {obj!r}; expected one of {', '.join(MODULES)}",
                connection=self.name,
            )
        return module

    def _record(self, module: Module, raw: Mapping[str, Any], *, row: bool = False) -> Record:
        """A record from a GET answer, or from a list `row` (which names the fields it lacks)."""
        return Record(
            system=self.system,
            object=module.object,
            id=str(raw[module.id_key]),
            fields=flatten(module, raw),
            modified_at=modified_at(raw),
            missing=summary_missing(module, raw) if row else frozenset(),
        )

    async def _list(
        self, module: Module, params: Mapping[str, str], page: int, per_page: int | None = None
    ) -> tuple[list[dict[str, Any]], bool]:
        rows, more, _ = await self._list_timed(module, params, page, per_page)
        return rows, more

    async def _list_timed(
        self, module: Module, params: Mapping[str, str], page: int, per_page: int | None = None
    ) -> tuple[list[dict[str, Any]], bool, datetime | None]:
        """One list page, whether more follow, and the server's time when it answered."""
        http = await self._client()
        query = {**params, "page": str(page), "per_page": str(per_page or self.page_size)}
        answer = await http.call("GET", module.path, params=query)
        rows = next((answer.body[k] for k in module.list_keys if k in answer.body), None) or []
        context = answer.body.get("page_context")
        # The OpenAPI files type page_context as an array; the live API is believed to send an object.
        if isinstance(context, list):
            context = context[0] if context and isinstance(context[0], dict) else {}
        more = bool(context.get("has_more_page")) if isinstance(context, dict) else False
        return [r for r in rows if isinstance(r, dict)], more, answer.server_time

    async def changes(
        self, object: str, since: datetime | None, overlap: timedelta, expected: int = 0
    ) -> AsyncIterator[Page]:
        """Records modified after `since - overlap`, oldest first, with line items; see `_scan` for paging."""
        if object == apps.APPLICATIONS:
            # Applications are the lines of payments, which list rows lack: each changed payment is read,
            # and one re-read at the same stamp (the overlap window) comes from the detail cache.
            async for page in self._scan(PAYMENTS, None if since is None else since - overlap):
                yield Page(apps.explode(await self._detailed(PAYMENTS, page.records)), page.cursor)
            return
        module = self._module(object)
        start = None if since is None else since - overlap
        async for page in self._scan(module, start, expected=expected, held=since):
            yield page

    async def _scan(
        self, module: Module, start: datetime | None, *, expected: int = 0, held: datetime | None = None
    ) -> AsyncIterator[Page]:
        """Page by `last_modified_time` ascending, by page numbers wherever they are cheaper than a restart by
        timestamp, each page-numbered window proven gap-free by an anchor row; see `_next_window`.

        Why nothing is lost. Order the versions of records by (stamp, the server's tie order); a record edited
        or deleted during the read leaves its place, and one edited gets a stamp at or after the read's start,
        which the cursor never passes (so its new version is read by this scan or the next). Claim: once a
        window is accepted, every record not changed during the read that sorts at or before the last row
        accepted has been read. A page 1 under a `last_modified_time` filter is placed by value, so shifts
        cannot hurt it, and the filter is always below a stamp already read in full. A later window (page > 1)
        is accepted only if it holds a row already read at the same stamp (the anchor): one answer is one
        contiguous run of the current order, so it holds every unchanged record from the anchor to its last
        row, and the claim carries over. Deletions and edits behind the read pull later records back by one
        place each: within the window's overlap they are absorbed, beyond it the window holds no anchor and is
        thrown away (its rows are not trusted as read), and the read resumes from a page 1 by timestamp. So a
        record at a page boundary is never skipped, whether records share a second or not. The cursor never
        passes the read's start by Zoho's clock, nor one second short of the last row accepted (whole-second
        stamps: a later change in that second is still after it).

        Read downward. When about `expected` records are known to be in the list (and they fill pages), the
        scan reads the page that should hold the last of them first, then every page below it, down to page 1,
        with no overlap at all: records only ever leave the list or join it at its end (a change stamps them
        now), so a record can only move down towards the pages not read yet, never past one read. The cursor
        holds at `held` until page 1 is read; the rest of the list, if the top page says more follows, is then
        read upwards as above from the top page's last row. (A record written during the read that ties in
        whole seconds with the last rows could push one of them up past its page; its stamp is after the
        read's start, which the cursor never passes, so the next scan lists it.) A top page found empty (the
        estimate too high) costs that one call, and the read starts again from page 1.
        """
        ceiling = _now().replace(microsecond=0) - SECOND
        low = start
        cursor = start if start is not None else datetime.fromtimestamp(0, UTC)
        # Every record read in this scan, with the stamp it was read at (rows older than the filter included).
        known: dict[str, datetime] = {}
        read = _SecondCounts()
        last: tuple[str, datetime] | None = None  # the latest row accepted: the anchor the next window needs
        window = _Window(page=1, per_page=self.page_size)
        refused = 0  # windows thrown away in a row: each widens the overlap asked of the next
        # Places estimated from counts go wrong when records leave mid-read; after one refusal, the read moves
        # only from places it saw.
        estimates = True
        # The server's clock when it answered the first page: everything modified before it was listed.
        server_started: datetime | None = None
        top_page = min(-(-expected // self.page_size), DOWNWARD_PAGES) if low is not None else 0
        if top_page >= 2:
            top: tuple[str, datetime] | None = None
            more_above = False
            for page in range(top_page, 0, -1):
                rows, more, answered_at = await self._list_timed(module, self._scan_params(low), page)
                if server_started is None and answered_at is not None:
                    server_started = answered_at
                    ceiling = answered_at - SECOND
                stamped = self._stamped(module, rows, low)
                if page == top_page:
                    if not stamped:
                        log.info("zoho_scan_estimate_high", connection=self.name, object=module.object,
                                 expected=expected)  # fmt: skip
                        break
                    top, more_above = (stamped[-1][0], stamped[-1][1]), more
                records = self._complete(module, _newer(stamped, known, read, low))
                if records:
                    yield Page(records=records, cursor=max(cursor, held or cursor))
            if top is not None:
                last = top
                if not more_above:
                    final = _final_cursor(top, ceiling, server_started)
                    yield Page(records=[], cursor=max(cursor, held or cursor, final))
                    return
                cursor = max(cursor, min(top[1] - SECOND, ceiling))
                yield Page(records=[], cursor=cursor)
                here = top_page * self.page_size - 1
                low, window = self._next_window(low, start, here, last, read, refused)
        while True:
            rows, more, answered_at = await self._list_timed(
                module, self._scan_params(low), window.page, window.per_page
            )
            if server_started is None and answered_at is not None:
                # The read's start by Zoho's clock, which its stamps and filter are on: a cursor by ours would
                # skip changes whenever Zoho's clock runs behind ours by more than the overlap.
                server_started = answered_at
                ceiling = answered_at - SECOND
            stamped = self._stamped(module, rows, low)
            if low is not None and window.page == 1 and stamped and read.count(low) > 0 \
                    and all(known.get(i) != low for i, _, _ in stamped[:1]) and stamped[0][1] > low:
                # A first page after a second this scan read records of starts past them: the filter compares
                # whole seconds (a guess proven wrong costs placement only; anchors keep the read whole).
                self._finer_filter = False
            if window.page > 1 and not any(i and known.get(i) == s for i, s, _ in stamped):
                # No row already read: records behind us left (deleted, or edited to the end) and pulled the rest
                # back past the window's start. Nothing of it is trusted; restart by value from the last row.
                refused += 1
                estimates = False
                log.info("zoho_scan_window_refused", connection=self.name, object=module.object,
                         page=window.page, per_page=window.per_page)  # fmt: skip
                assert last is not None
                low = max(low, last[1] - SECOND) if low is not None else last[1] - SECOND
                window = _Window(page=1, per_page=self.page_size)
                continue
            if window.page > 1:
                refused = 0  # (a page 1 proves nothing about the estimate that placed the refused window)
            tail_known = bool(stamped) and known.get(stamped[-1][0]) == stamped[-1][1]
            holds_last = last is not None and any(i == last[0] and s == last[1] for i, s, _ in stamped)
            # An answer placed by an estimate can fall short: only rows read before the last row accepted.
            behind = bool(stamped) and last is not None and tail_known and not holds_last \
                and stamped[-1][1] <= last[1]
            records = self._complete(module, _newer(stamped, known, read, low))
            if stamped and not behind:
                last = (stamped[-1][0], stamped[-1][1])
            if not more:
                # Timestamps have whole seconds: a later change in the last second seen must still be after
                # the cursor, so the cursor stops one second short of it.
                yield Page(records=records, cursor=max(cursor, _final_cursor(last, ceiling, server_started)))
                return
            if last is not None:
                cursor = max(cursor, min(last[1] - SECOND, ceiling))
            if records:
                yield Page(records=records, cursor=cursor)
            # Where the last row accepted stands: under this filter, its place in this answer; under a filter
            # moved up to a second before it, the rows read at or after that filter (counted, not listed).
            here = (window.page - 1) * window.per_page + len(rows) - 1
            place_by = read if estimates else None
            if behind:
                if not self._finer_filter and low is not None and read.count(low) > 0:
                    # Counted from the second after the filter's, the place fell short: the filter also lists
                    # the records of its own second (it compares finer than seconds).
                    self._finer_filter = True
                else:
                    place_by = None  # the next page follows this one, which always moves forward
            low, window = self._next_window(low, start, here, last, place_by, refused)

    @staticmethod
    def _scan_params(low: datetime | None) -> dict[str, str]:
        """A scan's list query: oldest change first, modified after `low` when there is one."""
        params = {"sort_column": "last_modified_time", "sort_order": "A"}
        if low is not None:
            params["last_modified_time"] = format_timestamp(low)
        return params

    def _stamped(
        self, module: Module, rows: Sequence[dict[str, Any]], low: datetime | None
    ) -> list[tuple[str, datetime, dict[str, Any]]]:
        """A scan's rows with their ids and stamps; a row stamped on the filter's own second shows the filter
        compares finer than the whole seconds it shows ("after 10:00:05" lists records stamped 10:00:05.3), so
        a restart from a second back re-lists that whole second too."""
        stamped = [(str(r.get(module.id_key, "")), modified_at(r), r) for r in rows]
        if low is not None and any(stamp == low for _, stamp, _ in stamped):
            self._finer_filter = True
        return stamped

    def _next_window(
        self, low: datetime | None, start: datetime | None, here: int, last: tuple[str, datetime] | None,
        read: _SecondCounts | None, refused: int,
    ) -> tuple[datetime | None, _Window]:
        """The filter and the page to read next: the window holding the last row accepted (a few rows of
        overlap, for records that leave behind it) and reaching furthest past it, under this filter or (with
        counts to place it by) under one moved to a recent second read since `start`, whichever lists fewer rows
        again.

        Zoho places a page at a multiple of its size, so a page can rarely start just before the last row; a
        filter moved to another second moves every place by the rows before it, which gives other starts."""
        # The overlap widens with each window refused in a row, but always leaves half a page of progress.
        slack = min(OVERLAP_ROWS * 4**refused, max(OVERLAP_ROWS, self.page_size // 2))
        best = (low, _window_after(here, slack, self.page_size))
        if last is None or read is None:
            return best
        for second, from_it in read.recent(last[1], FILTER_SECONDS):
            # Filters after which `second` is the first listed: its place is the rows read from that second on
            # (all of them sort before the last row). A filter comparing finer than seconds lists a second's
            # records after the second itself; one on whole seconds, after the second before. (`second` itself
            # only when before the last row's: records stamped exactly on it and sorting after that row would
            # be left out.)
            if self._finer_filter and second < last[1]:
                moved, at = second, from_it - 1
            else:
                moved = second - SECOND
                at = from_it - 1 + (read.count(moved) if self._finer_filter else 0)
            if start is not None and moved < start:
                break  # records before the scan's start were not read: their count is unknown
            candidate = _window_after(at, slack, self.page_size)
            if candidate.gain > best[1].gain:
                best = (moved, candidate)
        return best

    def _complete(self, module: Module, rows: Sequence[Mapping[str, Any]]) -> list[Record]:
        """Records of list rows, oldest first; what the rows lack is named in `Record.missing` (the engine
        reads it with `get_many` only for records that changed and whose mapping needs it)."""
        return sorted((self._record(module, row, row=True) for row in rows), key=lambda r: r.modified_at)

    async def _detailed(self, module: Module, records: Sequence[Record]) -> list[Record]:
        """Full records for list records: a GET for each one not already read at the same stamp."""
        wanted = [r for r in records if self._details.get((module.object, r.id), (None,))[0] != r.modified_at]
        found = await self._get_many(module, [r.id for r in wanted])
        out = []
        for record in records:
            cached = self._details.get((module.object, record.id))
            if record.id in found:
                out.append(found[record.id])
            elif cached is not None and cached[0] == record.modified_at:
                out.append(cached[1])
            # else: deleted between the list and the GET; its deletion is detected elsewhere.
        return out

    def _remember(self, module: Module, record: Record) -> None:
        """Keep a record read in full under its stamp; the oldest entries go first past the bound."""
        key = (module.object, record.id)
        self._details.pop(key, None)
        self._details[key] = (record.modified_at, record)
        while len(self._details) > DETAIL_CACHE:
            self._details.pop(next(iter(self._details)))

    async def _bounded(self, calls: Sequence[Callable[[], Awaitable[T]]]) -> list[T | BaseException]:
        async def run(call: Callable[[], Awaitable[T]]) -> T | BaseException:
            async with self._fanout:
                try:
                    return await call()
                except ConnectorError as exc:
                    return exc

        return await _in_turns([partial(run, c) for c in calls], self.settings.max_concurrency)

    async def _get_raw(self, module: Module, record_id: str) -> dict[str, Any]:
        http = await self._client()
        answer = await http.call("GET", f"{module.path}/{record_id}", record=record_id)
        raw = answer.body.get(module.entity_key)
        if not isinstance(raw, dict):
            raise FatalError(
                f"GET {module.path}/{record_id} answered without {module.entity_key!r}",
                connection=self.name,
                record=record_id,
            )
        return raw

    async def _get_many(self, module: Module, ids: Sequence[str]) -> dict[str, Record]:
        unique = list(dict.fromkeys(ids))
        started = _now() + self.clock_offset  # by Zoho's clock, which its stamps are on
        sent_at = self._persons_read.now()
        results = await self._bounded([lambda i=i: self._get_raw(module, i) for i in unique])  # type: ignore[misc]
        found: dict[str, Record] = {}
        for record_id, result in zip(unique, results, strict=True):
            if isinstance(result, NotFoundError):
                continue
            if isinstance(result, BaseException):
                raise result
            if module is CONTACTS:
                self._persons_read.keep(record_id, result, sent_at)
            found[record_id] = record = self._record(module, result)
            if record.modified_at + SETTLED <= started:
                # Stamps are whole seconds: only a stamp older than the read tells this content apart from
                # that of an edit landing in the same second.
                self._remember(module, record)
        return found

    async def get_many(self, object: str, ids: Sequence[str]) -> Mapping[str, Record]:
        """Full records by id; ids answered 404 / code 1002 (deleted or never existed) are absent."""
        if object == apps.APPLICATIONS:
            payments = await self._get_many(PAYMENTS, apps.wanted_payments(ids))
            found = {a.id: a for a in apps.explode(payments.values())}
            return {i: found[i] for i in ids if i in found}
        return await self._get_many(self._module(object), ids)

    # --- writing ---

    async def create_many(self, object: str, items: Sequence[Create]) -> Sequence[WriteOutcome]:
        """Create each through the upsert on `cf_syncd_ref` (so a retried create finds the first), several at
        once within the connection's fan-out: Zoho Books has no batch create."""
        if object == apps.APPLICATIONS:
            return [WriteOutcome(None, self._read_only(i.reference)) for i in items]
        module = self._module(object)
        return await self._each(
            [(item.reference, None, lambda item=item: self._create(module, item)) for item in items]  # type: ignore[misc]
        )

    async def _each(
        self, writes: Sequence[tuple[str, str | None, Callable[[], Awaitable[WriteOutcome]]]]
    ) -> list[WriteOutcome]:
        """Run one write per (record, id, write) at most `max_concurrency` at a time, outcomes in order; a
        refused write is its outcome, except a spent daily budget, which ends the pass."""

        async def one(record: str, record_id: str | None, write: Callable[[], Awaitable[WriteOutcome]]
                      ) -> WriteOutcome:
            async with self._writing:
                try:
                    return await write()
                except BudgetSpentError:
                    raise  # the connection's day is over, not this record's write
                except ConnectorError as exc:
                    return WriteOutcome(record_id, error=exc)
                except UnwritableField as exc:
                    return WriteOutcome(record_id, error=SkippableError(str(exc), connection=self.name,
                                                                        record=record))

        return await _in_turns([partial(one, *w) for w in writes], self.settings.max_concurrency)

    async def _create(self, module: Module, item: Create) -> WriteOutcome:
        body, status = unflatten(module, item.fields)
        try:
            return await self._create_body(module, item, body, status)
        except DuplicateError as exc:
            raise await self._name_taken(module, body, exc, None) from None

    async def _create_body(
        self, module: Module, item: Create, body: dict[str, Any], status: str | None
    ) -> WriteOutcome:
        http = await self._client()
        if module is ITEMS:
            answer = await http.call("POST", module.path, body=body, record=item.reference)
            raw = answer.body[module.entity_key]
            return WriteOutcome(str(raw[module.id_key]))
        if module in (INVOICES, PAYMENTS):
            body.setdefault("reference_number", item.reference)
        headers = {
            "X-Unique-Identifier-Key": REFERENCE_FIELD,
            "X-Unique-Identifier-Value": item.reference,
            "X-Upsert": "true",
        }
        for _round in range(CREATE_ROUNDS):
            try:
                answer = await http.call(
                    "PUT", module.path, body=body, headers=headers, record=item.reference
                )
            except UnknownOutcomeError:
                existing = await self._find_reference(module, item.reference, body)
                if existing is None:
                    log.info("create not found by its reference; creating again", connection=self.name,
                             reference=item.reference)
                    continue
                record_id, raw = existing, None
                existed = True
            else:
                raw = answer.body[module.entity_key]
                record_id = str(raw[module.id_key])
                existed = answer.status == 200  # 201 created, 200 an earlier attempt's record updated
            if existed and module is CONTACTS:
                self._persons_read.wrote(record_id)
            if status is not None:
                current = raw.get("status") if raw else None
                await self._apply_status(module, record_id, status, current)
            stamp = self._stamp_after(raw, status) if raw is not None and _as_sent(module, raw, item.fields) else None
            return WriteOutcome(record_id, existed=existed, modified_at=stamp)
        raise UnknownOutcomeError(
            f"create of {module.object} {item.reference} got no answer {CREATE_ROUNDS} times",
            connection=self.name,
            record=item.reference,
        )

    async def _find_reference(self, module: Module, reference: str, body: Mapping[str, Any]) -> str | None:
        """After a lost answer: the record our create made, if it landed (looked up by its reference)."""
        http = await self._client()
        if module in (INVOICES, PAYMENTS):
            # Read-only: list by reference_number, then match the unique reference exactly.
            rows, _ = await self._list(module, {"reference_number": reference}, 1)
            for row in rows:
                if flatten(module, row).get(REFERENCE_FIELD) == reference:
                    return str(row[module.id_key])
            return None
        # Contacts cannot be listed by a custom field: ask the upsert without X-Upsert, which answers 404
        # when nothing holds the reference and otherwise writes the same body we meant to create.
        headers = {
            "X-Unique-Identifier-Key": REFERENCE_FIELD,
            "X-Unique-Identifier-Value": reference,
            "X-Upsert": "false",
        }
        try:
            answer = await self._idempotent_put(http, module.path, body, reference, headers)
        except NotFoundError:
            return None
        return str(answer.body[module.entity_key][module.id_key])

    async def _apply_status(self, module: Module, record_id: str, wanted: str, current: Any) -> None:
        if current == wanted:
            return
        if (
            module is INVOICES
            and current in ("sent", "overdue", "partially_paid", "paid")
            and wanted == "sent"
        ):
            return  # already open: "sent" is the state it left
        await self.act(module.object, record_id, wanted)

    async def update_many(self, object: str, items: Sequence[Update]) -> Sequence[WriteOutcome]:
        """Update each (several at once, see `_each`); a contact's persons are read first so the other persons
        are kept."""
        if object == apps.APPLICATIONS:
            return [WriteOutcome(i.id, self._read_only(i.id)) for i in items]
        module = self._module(object)
        return await self._each(
            [(item.id, item.id, lambda item=item: self._update(module, item)) for item in items]  # type: ignore[misc]
        )

    async def _update(self, module: Module, item: Update) -> WriteOutcome:
        person_fields = module is CONTACTS and any(
            k.startswith("primary_contact.") or k in ("email", "phone") for k in item.fields
        )
        if not person_fields:
            return await self._update_from(module, item, None)
        # The persons array is sent whole, built from this read: another mapping's write to the same contact
        # landing between the read and the PUT (its phone, say) would be put back by it, unaudited.
        async with self._persons_written.hold(item.id):
            current = self._persons_read.take(item.id)
            if current is None:
                current = await self._get_raw(module, item.id)
            return await self._update_from(module, item, current)

    async def _update_from(self, module: Module, item: Update, current: dict[str, Any] | None) -> WriteOutcome:
        http = await self._client()
        body, status = unflatten(module, item.fields, current=current)
        raw: Mapping[str, Any] | None = current
        if body:
            # PUT is idempotent: sending the same values again after a lost answer changes nothing more.
            try:
                with self._persons_read.writing(item.id):
                    answer = await self._idempotent_put(http, f"{module.path}/{item.id}", body, item.id)
            except DuplicateError as exc:
                raise await self._name_taken(module, body, exc, item.id) from None
            raw = answer.body.get(module.entity_key)
            if module is CONTACTS and isinstance(raw, dict) and "contact_persons" in raw:
                # What Zoho holds after this write: a write of another mapping next stands on it.
                self._persons_read.keep(item.id, raw, self._persons_read.now())
        if status is not None:
            if raw is None:
                raw = await self._get_raw(module, item.id)
            await self._apply_status(module, item.id, status, raw.get("status"))
        return WriteOutcome(item.id, modified_at=self._stamp_after(raw if body else None, status))

    @staticmethod
    def _stamp_after(raw: Mapping[str, Any] | None, status: str | None) -> datetime | None:
        """The record's stamp as a write's answer gave it; unknown when a status action followed."""
        if raw is None or status is not None or not raw.get("last_modified_time"):
            return None
        return modified_at(raw)

    async def _name_taken(
        self, module: Module, body: Mapping[str, Any], error: DuplicateError, own_id: str | None
    ) -> ConnectorError:
        """A refusal as a duplicate (3062) made precise: `NameTakenError` when another record holds the unique
        name sent, which the answer does not say (3062 also refuses a taken unique custom field value), so it
        is looked up; otherwise the error as it was."""
        field = module.unique_name
        name = body.get(field) if field is not None else None
        if field is None or not isinstance(name, str) or not name.strip():
            return error
        wanted = name.strip().lower()  # Books compares names regardless of case
        rows, _ = await self._list(module, {field: name.strip()}, 1)
        holders = [
            str(row[module.id_key]) for row in rows
            if str(row.get(field, "")).strip().lower() == wanted and str(row[module.id_key]) != own_id
        ]  # fmt: skip
        if not holders:
            return error
        return NameTakenError(
            error.vendor_message,
            field=field,
            value=name,
            holder_id=holders[0],
            connection=self.name,
            status=error.status,
            vendor_code=error.vendor_code,
            record=error.record,
        )

    async def _idempotent_put(
        self,
        http: BooksHttp,
        path: str,
        body: Mapping[str, Any],
        record: str,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        for _round in range(CREATE_ROUNDS):
            try:
                return await http.call("PUT", path, body=body, headers=headers, record=record)
            except UnknownOutcomeError:
                continue
        raise UnknownOutcomeError(
            f"PUT {path} got no answer {CREATE_ROUNDS} times", connection=self.name, record=record
        )

    async def delete_many(self, object: str, ids: Sequence[str]) -> Sequence[WriteOutcome]:
        """Delete one at a time; a record already gone counts as deleted."""
        if object == apps.APPLICATIONS:
            return [WriteOutcome(i, self._read_only(i)) for i in ids]
        module = self._module(object)
        http = await self._client()
        outcomes = []
        for record_id in ids:
            try:
                await http.call("DELETE", f"{module.path}/{record_id}", record=record_id)
                outcomes.append(WriteOutcome(record_id))
            except NotFoundError:
                outcomes.append(WriteOutcome(record_id))
            except BudgetSpentError:
                raise  # the connection's day is over, not this record's write: end the pass
            except ConnectorError as exc:
                outcomes.append(WriteOutcome(record_id, error=exc))
        return outcomes

    async def act(self, object: str, id: str, action: str) -> None:
        """Invoice `sent`/`void`/`draft`, contact `active`/`inactive`."""
        module = self._module(object)
        route = ACTIONS.get(module.object, {}).get(action)
        if route is None:
            allowed = ", ".join(ACTIONS.get(module.object, {})) or "none"
            raise SkippableError(
                f"{module.object} has no action {action!r} (allowed: {allowed})",
                connection=self.name,
                record=id,
            )
        http = await self._client()
        # A status change is idempotent in effect: a retry after a lost answer either applies it or is
        # refused because it already applied, which the next read shows.
        await http.call("POST", f"{module.path}/{id}/{route}", record=id)

    # --- lookups ---

    async def find_by_field(
        self, object: str, field: str, values: Sequence[str]
    ) -> Mapping[str, list[Record]]:
        """Exact matches per value (email case-insensitively); values travel as query parameters only."""
        if object == apps.APPLICATIONS:
            return await self._find_applications(field, values)
        module = self._module(object)
        wanted = list(dict.fromkeys(values))
        result: dict[str, list[Record]] = {v: [] for v in wanted}
        if not wanted:
            return result
        # Zoho compares e-mail addresses case-insensitively, the primary person's as much as the contact's;
        # only A-Z count as case here, so that 'strasse@' is never taken for 'straße@'.
        fold = field in ("email", "primary_contact.email")

        def key(value: Any) -> str | None:
            if value is None:
                return None
            return ascii_lower(str(value)) if fold else str(value)

        by_key: dict[str, list[str]] = {}
        for value in wanted:
            by_key.setdefault(key(value) or "", []).append(value)
        matches: dict[str, set[str]] = {v: set() for v in wanted}
        records: dict[str, Record] = {}
        filter_name = (
            "reference_number" if field == REFERENCE_FIELD and module in (INVOICES, PAYMENTS) else field
        )
        if module is CONTACTS and field == "primary_contact.email":
            filter_name = "email"  # the `email` filter searches every person; the exact check below narrows it
        if filter_name in module.filters:
            for value in wanted:
                async for row in self._rows(module, {filter_name: value}):
                    if key(flatten(module, row).get(field)) == key(value):
                        matches[value].add(str(row[module.id_key]))
                        records[str(row[module.id_key])] = self._record(module, row, row=True)
        else:
            # No filter for this field: one pass over every record serves every value.
            async for row in self._rows(module, {}):
                have = key(flatten(module, row).get(field))
                for value in by_key.get(have or "", []) if have is not None else []:
                    matches[value].add(str(row[module.id_key]))
                    records[str(row[module.id_key])] = self._record(module, row, row=True)
        for value, ids in matches.items():
            result[value] = [records[i] for i in sorted(ids) if i in records]
        return result

    async def _rows(self, module: Module, params: Mapping[str, str]) -> AsyncIterator[dict[str, Any]]:
        page = 1
        while True:
            rows, more = await self._list(module, {**params, "sort_column": "created_time"}, page, MAX_PAGE)
            for row in rows:
                yield row
            if not more:
                return
            page += 1

    async def deletions(self, object: str, since: datetime) -> Sequence[Deletion] | None:
        """None: Zoho Books has no deleted-records endpoint (deletes show as GET 404 / code 1002)."""
        if object != apps.APPLICATIONS:
            self._module(object)
        return None

    async def describe(self, object: str) -> Mapping[str, FieldInfo]:
        """The documented fields of the module plus the custom fields its records carry (no describe API)."""
        if object == apps.APPLICATIONS:
            return apps.describe_applications(await self.describe(PAYMENTS.object))
        module = self._module(object)
        if module.object in self._described:
            return self._described[module.object]
        required = REQUIRED.get(module.object, frozenset())
        fields: dict[str, FieldInfo] = {
            name: FieldInfo(
                name=name,
                type=kind,
                createable=name in module.writable,
                updateable=name in module.writable,
                required=name in required,
            )
            for name, kind in module.fields.items()
        }
        if module is not ITEMS:
            fields[REFERENCE_FIELD] = FieldInfo(
                name=REFERENCE_FIELD, type="text", label="Syncd Ref", unique=True
            )
            rows, _ = await self._list(module, {}, 1, 1)
            for entry in rows[0].get("custom_fields", []) if rows else []:
                if isinstance(entry, dict) and str(entry.get("api_name", "")).startswith("cf_"):
                    name = str(entry["api_name"])
                    fields.setdefault(
                        name,
                        FieldInfo(
                            name=name,
                            type=str(entry.get("data_type", "text")),
                            label=str(entry.get("label", "")),
                        ),
                    )
        # The fields of each line-like list, as `line_items.rate`: what a mapping's items may name.
        for name, kind in module.fields.items():
            if kind == "lines":
                for sub, sub_kind in LINE_KINDS.get(name, {}).items():
                    fields[f"{name}.{sub}"] = FieldInfo(name=f"{name}.{sub}", type=sub_kind)
        self._described[module.object] = fields
        return fields

    def _read_only(self, record: str) -> SkippableError:
        return SkippableError(
            f"{apps.APPLICATIONS} are read-only: write the payment as customerpayments",
            connection=self.name,
            record=record,
        )

    async def _find_applications(self, field: str, values: Sequence[str]) -> dict[str, list[Record]]:
        """Applications whose `field` equals each value: through the payments' own lookup where the field
        is the payment's, else by reading every payment."""
        wanted = list(dict.fromkeys(values))
        if field in PAYMENTS.filters or field == REFERENCE_FIELD:
            found = await self.find_by_field(PAYMENTS.object, field, wanted)
            payments = {p.id: p for records in found.values() for p in records}
        else:
            payments = {}
            async for page in self._scan(PAYMENTS, None):
                payments.update({p.id: p for p in page.records})
        every = apps.explode(await self._detailed(PAYMENTS, list(payments.values())))
        return {v: [a for a in every if a.fields.get(field) is not None and str(a.fields.get(field)) == v]
                for v in wanted}  # fmt: skip

    # --- webhooks ---

    def verify_webhook(self, request: WebhookRequest) -> None:
        """Check `X-Zoho-Webhook-Signature` with the connection's webhook secret, and the event's age."""
        secret = self.settings.webhook_secret.get_secret_value() if self.settings.webhook_secret else None
        webhooks.verify(request, secret)

    def parse_webhook(self, request: WebhookRequest) -> Sequence[ChangeEvent]:
        """The delivery's record (Zoho sends one per request); for a customer payment, also each of its
        applications (`invoicepayments`) and each invoice whose balance it changed."""
        return webhooks.parse(request.body, self.settings.organization_id, self._applied)

    async def register_webhooks(self, url: str, fields: Mapping[str, Collection[str]]) -> bool:
        """False: Zoho Books has no API for it; webhooks come from workflow rules an admin makes in its UI
        (a rule sends the whole record, so `fields` is not needed)."""
        return False

    def __repr__(self) -> str:
        return f"ZohoBooksConnector({self.name!r}, organization_id={self.settings.organization_id!r})"
