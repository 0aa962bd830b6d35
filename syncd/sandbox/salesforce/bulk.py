"""Bulk API 2.0 query jobs (`jobs/query`), which ETL readers use for large reads: create, poll, fetch the CSV
results page by page with `Sforce-Locator`, list, abort and delete. The query runs when the job is created
(a snapshot, as Salesforce's jobs read one consistent view) and the job is complete at its first poll."""

from __future__ import annotations

import csv
import io
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from syncd.sandbox.salesforce.ids import mint_id
from syncd.sandbox.salesforce.records import RecordError, RecordStore, SfError, format_timestamp
from syncd.sandbox.salesforce.responses import read_object, sf_json, version_number
from syncd.sandbox.salesforce.schema import INTEGRATION_USER_ID
from syncd.sandbox.salesforce.soql import CompiledQuery, SoqlError, run_soql

JOB_KEY_PREFIX = "750"
DEFAULT_MAX_RECORDS = 10_000  # a results page without maxRecords holds at most this many rows here
MAX_JOBS_KEPT = 100
_DELIMITERS = {"COMMA": ",", "TAB": "\t", "SEMICOLON": ";", "PIPE": "|", "CARET": "^", "BACKQUOTE": "`"}
_LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}


@dataclass
class QueryJob:
    """One query job and the rows it read, already flattened to CSV columns."""

    id: str
    operation: str
    sobject: str
    created: float
    api_version: float
    column_delimiter: str
    line_ending: str
    columns: list[str]
    rows: list[list[str]]
    state: str = "UploadComplete"
    polled: bool = False
    modified: float = field(default=0.0)

    def info(self) -> dict[str, Any]:
        """The JobInfo body (the processing figures once the job is complete)."""
        body: dict[str, Any] = {
            "id": self.id, "operation": self.operation, "object": self.sobject, "createdById": INTEGRATION_USER_ID,
            "createdDate": format_timestamp(self.created), "systemModstamp": format_timestamp(self.modified),
            "state": self.state, "concurrencyMode": "Parallel", "contentType": "CSV",
            "apiVersion": self.api_version, "jobType": "V2Query", "lineEnding": self.line_ending,
            "columnDelimiter": self.column_delimiter,
        }
        if self.state == "JobComplete":
            body |= {"numberRecordsProcessed": len(self.rows), "retries": 0, "totalProcessingTime": 0}
        return body


def _cell(value: Any, field_type: str | None) -> str:
    """A field value as Bulk API 2.0 CSV writes it: empty for null, lower-case booleans, date-times in UTC with
    a `Z` (the REST API writes `+0000`)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if field_type == "datetime" and isinstance(value, str) and value.endswith("+0000"):
        return value[: -len("+0000")] + "Z"
    return str(value)


def _flatten(compiled: CompiledQuery, projected: dict[str, Any]) -> list[str]:
    """The CSV row of a projected record: parent fields (`Account.Name`) read from their nested object."""
    row = []
    for column in compiled.fields:
        relationship, _, parent_field = column.partition(".")
        if parent_field:
            parent = projected.get(relationship)
            described = compiled.relations[relationship][1].field(parent_field)
            value = parent.get(parent_field) if isinstance(parent, dict) else None
        else:
            described = compiled.spec.field(column)
            value = projected.get(column)
        row.append(_cell(value, described.type if described is not None else None))
    return row


class BulkQueryEndpoints:
    """The jobs/query resource over the record store."""

    def __init__(self, store: RecordStore, clock: Callable[[], float]) -> None:
        self.store = store
        self.clock = clock
        self.jobs: OrderedDict[str, QueryJob] = OrderedDict()
        self._serial = 0

    def routes(self, version_path: str) -> list[tuple[str, str, Callable[[web.Request], Any]]]:
        """(method, path, handler) for every route, under the API version path."""
        base = f"{version_path}/jobs/query"
        return [
            ("POST", base, self.create),
            ("GET", base, self.list_jobs),
            ("GET", base + "/{job_id}", self.get),
            ("PATCH", base + "/{job_id}", self.abort),
            ("DELETE", base + "/{job_id}", self.delete),
            ("GET", base + "/{job_id}/results", self.results),
        ]

    def _job(self, request: web.Request) -> QueryJob:
        job = self.jobs.get(request.match_info["job_id"])
        if job is None:
            raise RecordError(404, [SfError("NOT_FOUND", "The requested resource does not exist")])
        return job

    async def create(self, request: web.Request) -> web.Response:
        """POST jobs/query {operation, query, columnDelimiter?, lineEnding?}: the job, UploadComplete."""
        body = await read_object(request)
        operation = body.get("operation")
        text = body.get("query")
        delimiter = body.get("columnDelimiter", "COMMA")
        line_ending = body.get("lineEnding", "LF")
        if operation not in ("query", "queryAll") or not isinstance(text, str) or not text.strip():
            raise RecordError(400, [SfError("API_ERROR", "operation must be query or queryAll, with a query")])
        if delimiter not in _DELIMITERS or line_ending not in _LINE_ENDINGS or body.get("contentType", "CSV") != "CSV":
            raise RecordError(400, [SfError("API_ERROR", "Unsupported columnDelimiter, lineEnding or contentType")])
        include_deleted = operation == "queryAll"
        try:
            compiled, records = run_soql(text, lambda spec: self.store.rows(spec, include_deleted=include_deleted))
        except SoqlError as exc:
            raise RecordError(400, [SfError(exc.error_code, exc.message)]) from exc
        if compiled.count_only:
            raise RecordError(400, [SfError("API_ERROR", "COUNT() is not supported by Bulk API query jobs")])
        columns = list(compiled.fields)
        rows = [_flatten(compiled, compiled.project(r, self._parent)) for r in records]
        self._serial += 1
        now = self.clock()
        job = QueryJob(mint_id(JOB_KEY_PREFIX, self._serial), operation, compiled.spec.name, now,
                       version_number(request), delimiter, line_ending, columns, rows, modified=now)
        self.jobs[job.id] = job
        while len(self.jobs) > MAX_JOBS_KEPT:
            self.jobs.popitem(last=False)
        return sf_json(job.info())

    def _parent(self, spec: Any, record_id: str) -> dict[str, Any] | None:
        return self.store.tables[spec.name].get(record_id)

    async def get(self, request: web.Request) -> web.Response:
        """GET jobs/query/{id}: complete from the first poll on (the query already ran)."""
        job = self._job(request)
        if job.state == "UploadComplete":
            job.state, job.modified = "JobComplete", self.clock()
        return sf_json(job.info())

    async def list_jobs(self, request: web.Request) -> web.Response:
        """GET jobs/query: every job kept, oldest first, on one page."""
        return sf_json({"done": True, "records": [j.info() for j in self.jobs.values()], "nextRecordsUrl": None})

    async def abort(self, request: web.Request) -> web.Response:
        """PATCH jobs/query/{id} {"state": "Aborted"}; a finished job cannot be aborted."""
        job = self._job(request)
        body = await read_object(request)
        if body.get("state") != "Aborted":
            raise RecordError(400, [SfError("INVALIDJOB", "Only the Aborted state can be set on a query job")])
        if job.state in ("JobComplete", "Aborted", "Failed"):
            raise RecordError(400, [SfError("INVALIDJOB", f"Job is already in state {job.state}")])
        job.state, job.modified = "Aborted", self.clock()
        return sf_json(job.info())

    async def delete(self, request: web.Request) -> web.Response:
        """DELETE jobs/query/{id} → 204, once the job is complete, aborted or failed."""
        job = self._job(request)
        if job.state not in ("JobComplete", "Aborted", "Failed"):
            raise RecordError(400, [SfError(
                "API_ERROR", "Error encountered when deleting the job because the job is not terminated")])
        self.jobs.pop(job.id)
        return web.Response(status=204)

    async def results(self, request: web.Request) -> web.Response:
        """GET jobs/query/{id}/results?locator=&maxRecords=: CSV, with Sforce-Locator ("null" on the last page)
        and Sforce-NumberOfRecords."""
        job = self._job(request)
        if job.state != "JobComplete":
            raise RecordError(400, [SfError("INVALIDJOB", f"Job is in state {job.state}; results are not ready")])
        locator = request.query.get("locator", "")
        raw_max = request.query.get("maxRecords", str(DEFAULT_MAX_RECORDS))
        if (locator and not locator.isdigit()) or not raw_max.isdigit() or int(raw_max) < 1:
            raise RecordError(400, [SfError("INVALIDLOCATOR", "Invalid locator or maxRecords")])
        start = int(locator or 0)
        end = min(len(job.rows), start + int(raw_max))
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=_DELIMITERS[job.column_delimiter],
                            lineterminator=_LINE_ENDINGS[job.line_ending], quoting=csv.QUOTE_ALL)
        writer.writerow(job.columns)
        writer.writerows(job.rows[start:end])
        headers = {"Sforce-Locator": str(end) if end < len(job.rows) else "null",
                   "Sforce-NumberOfRecords": str(end - start)}
        return web.Response(text=buffer.getvalue(), content_type="text/csv", charset="UTF-8", headers=headers)
