"""The `query/` and `queryAll/` resources: SOQL over the record store, with query locators for paging."""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from syncd.sandbox.salesforce.ids import mint_id
from syncd.sandbox.salesforce.records import RecordError, RecordStore, SfError
from syncd.sandbox.salesforce.responses import API_PREFIX, sf_json, version_of, with_attributes
from syncd.sandbox.salesforce.schema import ObjectSpec
from syncd.sandbox.salesforce.soql import SoqlError, run_soql

MIN_BATCH, MAX_BATCH = 200, 2000
MAX_OPEN_CURSORS = 50  # oldest locators are dropped past this, as Salesforce limits open cursors per user
CURSOR_IDLE_S = 15 * 60.0
_BATCH_OPTION = re.compile(r"batchSize\s*=\s*(\d+)", re.IGNORECASE)


@dataclass
class _Cursor:
    rows: list[dict[str, Any]]
    batch_size: int
    last_used: float


class QueryEndpoints:
    """Runs SOQL and serves the pages of its results."""

    def __init__(self, store: RecordStore, clock: Callable[[], float]) -> None:
        self.store = store
        self.clock = clock
        self.cursors: OrderedDict[str, _Cursor] = OrderedDict()
        self._serial = 0

    async def query(self, request: web.Request) -> web.Response:
        """GET query?q=: live records only."""
        return self._run(request, include_deleted=False)

    async def query_all(self, request: web.Request) -> web.Response:
        """GET queryAll?q=: deleted records too."""
        return self._run(request, include_deleted=True)

    async def more(self, request: web.Request) -> web.Response:
        """GET query/{locator}-{offset}: the next page of an earlier query."""
        locator_text = request.match_info["locator"]
        locator, _, offset_text = locator_text.partition("-")
        cursor = self.cursors.get(locator)
        now = self.clock()
        if cursor is not None and now - cursor.last_used > CURSOR_IDLE_S:
            del self.cursors[locator]
            cursor = None
        if cursor is None or not offset_text.isdigit() or int(offset_text) > len(cursor.rows):
            raise RecordError(400, [SfError("INVALID_QUERY_LOCATOR", "invalid query locator")])
        cursor.last_used = now
        self.cursors.move_to_end(locator)
        endpoint = request.match_info["endpoint"]
        return sf_json(self._page(version_of(request), endpoint, locator, cursor, int(offset_text)))

    def _run(self, request: web.Request, *, include_deleted: bool) -> web.Response:
        text = request.query.get("q")
        if text is None or not text.strip():
            raise RecordError(400, [SfError("MALFORMED_QUERY", "A query string has to be specified")])
        try:
            compiled, rows = run_soql(text, lambda spec: self.store.rows(spec, include_deleted=include_deleted))
        except SoqlError as exc:
            raise RecordError(400, [SfError(exc.error_code, exc.message)]) from exc
        if compiled.count_only:
            return sf_json({"totalSize": len(rows), "done": True, "records": []})
        version = version_of(request)
        rendered = [
            with_attributes(version, compiled.spec, r["Id"], compiled.project(r, self._parent, version)) for r in rows
        ]
        cursor = _Cursor(rendered, _batch_size(request), self.clock())
        endpoint = "queryAll" if include_deleted else "query"
        if len(rendered) <= cursor.batch_size:
            return sf_json({"totalSize": len(rendered), "done": True, "records": rendered})
        self._serial += 1
        locator = mint_id("01g", self._serial)
        self.cursors[locator] = cursor
        while len(self.cursors) > MAX_OPEN_CURSORS:
            self.cursors.popitem(last=False)
        return sf_json(self._page(version, endpoint, locator, cursor, 0))

    def _parent(self, spec: ObjectSpec, record_id: str) -> dict[str, Any] | None:
        """A parent record for a relationship field; a deleted one still shows, as queryAll rows point at it."""
        return self.store.tables[spec.name].get(record_id)

    def _page(self, version: str, endpoint: str, locator: str, cursor: _Cursor, offset: int) -> dict[str, Any]:
        end = offset + cursor.batch_size
        body: dict[str, Any] = {
            "totalSize": len(cursor.rows),
            "done": end >= len(cursor.rows),
            "records": cursor.rows[offset:end],
        }
        if end < len(cursor.rows):
            body["nextRecordsUrl"] = f"{API_PREFIX}{version}/{endpoint}/{locator}-{end}"
        else:
            self.cursors.pop(locator, None)
        # Salesforce puts nextRecordsUrl before records; keep that order for readers of raw bodies.
        return {k: body[k] for k in ("totalSize", "done", "nextRecordsUrl", "records") if k in body}


def _batch_size(request: web.Request) -> int:
    """The batch size asked for in Sforce-Query-Options, held to 200..2000 (default 2000)."""
    match = _BATCH_OPTION.search(request.headers.get("Sforce-Query-Options", ""))
    if match is None:
        return MAX_BATCH
    return max(MIN_BATCH, min(MAX_BATCH, int(match.group(1))))
