"""Bulk API 1.0 query jobs in JSON (`/services/async/{version}/job...`), as simple-salesforce's `sf.bulk.X.query`
drives them: create a job, add the SOQL as a batch, close the job, poll the batch, list and read its results
(dates as epoch milliseconds, as Bulk API 1.0 writes them in JSON). Only query and queryAll jobs with
contentType JSON are served; other jobs are refused with `InvalidJob`."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from syncd.sandbox.oauth_tokens import TokenStore
from syncd.sandbox.quota import QuotaCounter
from syncd.sandbox.salesforce.ids import mint_id
from syncd.sandbox.salesforce.records import RecordStore, format_timestamp
from syncd.sandbox.salesforce.responses import sf_json, with_attributes
from syncd.sandbox.salesforce.schema import INTEGRATION_USER_ID, ObjectSpec, object_spec
from syncd.sandbox.salesforce.soql import SoqlError, run_soql

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_JOBS_KEPT = 100


class BulkError(Exception):
    """A Bulk API 1.0 failure, answered as `{exceptionCode, exceptionMessage}`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> web.Response:
        """The JSON error answer."""
        return sf_json({"exceptionCode": self.code, "exceptionMessage": self.message}, self.status)


@dataclass
class Batch:
    """One batch: its query's result (rendered records), or why it failed."""

    id: str
    job_id: str
    created: float
    records: list[dict[str, Any]] = field(default_factory=list)
    failure: str | None = None

    def info(self) -> dict[str, Any]:
        """BatchInfo: complete as soon as it is read (the query ran when the batch was added)."""
        return {
            "apexProcessingTime": 0, "apiActiveProcessingTime": 0, "createdDate": format_timestamp(self.created),
            "id": self.id, "jobId": self.job_id, "numberRecordsFailed": 0,
            "numberRecordsProcessed": 0 if self.failure else len(self.records),
            "state": "Failed" if self.failure else "Completed", "stateMessage": self.failure,
            "systemModstamp": format_timestamp(self.created), "totalProcessingTime": 0,
        }


@dataclass
class Job:
    """One query job and its batches."""

    id: str
    operation: str
    sobject: str
    created: float
    api_version: float
    concurrency: str
    state: str = "Open"
    batches: dict[str, Batch] = field(default_factory=dict)

    def info(self) -> dict[str, Any]:
        """JobInfo in the JSON form."""
        done = [b for b in self.batches.values() if b.failure is None]
        return {
            "apexProcessingTime": 0, "apiActiveProcessingTime": 0, "apiVersion": self.api_version,
            "assignmentRuleId": None, "concurrencyMode": self.concurrency, "contentType": "JSON",
            "createdById": INTEGRATION_USER_ID, "createdDate": format_timestamp(self.created),
            "externalIdFieldName": None, "fastPathEnabled": False, "id": self.id,
            "numberBatchesCompleted": len(done), "numberBatchesFailed": len(self.batches) - len(done),
            "numberBatchesInProgress": 0, "numberBatchesQueued": 0, "numberBatchesTotal": len(self.batches),
            "numberRecordsFailed": 0, "numberRecordsProcessed": sum(len(b.records) for b in done),
            "numberRetries": 0, "object": self.sobject, "operation": self.operation, "state": self.state,
            "systemModstamp": format_timestamp(self.created), "totalProcessingTime": 0,
        }


class BulkV1Endpoints:
    """The /services/async routes over the record store, with their own session check and API allocation."""

    def __init__(self, store: RecordStore, tokens: TokenStore, quota: QuotaCounter,
                 clock: Callable[[], float]) -> None:
        self.store, self.tokens, self.quota, self.clock = store, tokens, quota, clock
        self.jobs: OrderedDict[str, Job] = OrderedDict()
        self._serial = 0

    def routes(self) -> list[web.RouteDef]:
        """The job and batch routes."""
        base = r"/services/async/{version:\d{2,3}\.\d}/job"
        return [
            web.post(base, self._guard(self.create_job)),
            web.get(base + "/{job_id}", self._guard(self.get_job)),
            web.post(base + "/{job_id}", self._guard(self.close_job)),
            web.post(base + "/{job_id}/batch", self._guard(self.add_batch)),
            web.get(base + "/{job_id}/batch", self._guard(self.list_batches)),
            web.get(base + "/{job_id}/batch/{batch_id}", self._guard(self.get_batch)),
            web.get(base + "/{job_id}/batch/{batch_id}/result", self._guard(self.result_ids)),
            web.get(base + "/{job_id}/batch/{batch_id}/result/{result_id}", self._guard(self.result)),
        ]

    def _guard(self, handler: Handler) -> Handler:
        """Session (X-SFDC-Session, or a bearer token), the org's API allocation, and BulkError answers."""

        async def guarded(request: web.Request) -> web.StreamResponse:
            token = request.headers.get("X-SFDC-Session", "")
            scheme, _, bearer = request.headers.get("Authorization", "").partition(" ")
            token = token or (bearer if scheme.lower() == "bearer" else "")
            if not token.strip() or self.tokens.check(token.strip()) != "ok":
                return BulkError(400, "InvalidSessionId", "Invalid session id").response()
            decision = self.quota.take()
            if not decision.allowed:
                return BulkError(403, "ExceededQuota", "TotalRequests Limit exceeded.").response()
            try:
                response = await handler(request)
            except BulkError as exc:
                response = exc.response()
            response.headers["Sforce-Limit-Info"] = f"api-usage={self.quota.daily_used}/{self.quota.daily_cap}"
            return response

        return guarded

    def _job(self, request: web.Request) -> Job:
        job = self.jobs.get(request.match_info["job_id"])
        if job is None:
            raise BulkError(400, "InvalidJob", f"Invalid job id: {request.match_info['job_id']}")
        return job

    def _batch(self, request: web.Request) -> Batch:
        batch = self._job(request).batches.get(request.match_info["batch_id"])
        if batch is None:
            raise BulkError(400, "InvalidBatch", f"Invalid batch id: {request.match_info['batch_id']}")
        return batch

    async def _json(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise BulkError(400, "InvalidJob", "Unable to parse the JSON request body") from None
        if not isinstance(body, dict):
            raise BulkError(400, "InvalidJob", "The request body must be a JSON object")
        return body

    async def create_job(self, request: web.Request) -> web.Response:
        """POST job {operation, object, contentType, concurrencyMode?}."""
        body = await self._json(request)
        operation, sobject = body.get("operation"), body.get("object")
        if body.get("contentType") != "JSON":
            raise BulkError(400, "InvalidJob", "This sandbox serves Bulk API 1.0 jobs in JSON only")
        if operation not in ("query", "queryAll"):
            raise BulkError(400, "InvalidJob", f"This sandbox serves Bulk API 1.0 query jobs only, not {operation!r}")
        spec = object_spec(str(sobject)) if isinstance(sobject, str) else None
        if spec is None:
            raise BulkError(400, "InvalidJob", f"Unable to find object: {sobject}")
        self._serial += 1
        serial = body.get("concurrencyMode") in ("Serial", 1)  # simple-salesforce sends 1 for serial
        job = Job(mint_id("750", self._serial), operation, spec.name, self.clock(),
                  float(request.match_info["version"]), "Serial" if serial else "Parallel")
        self.jobs[job.id] = job
        while len(self.jobs) > MAX_JOBS_KEPT:
            self.jobs.popitem(last=False)
        return sf_json(job.info(), 201)

    async def get_job(self, request: web.Request) -> web.Response:
        """GET job/{id}."""
        return sf_json(self._job(request).info())

    async def close_job(self, request: web.Request) -> web.Response:
        """POST job/{id} {"state": "Closed" | "Aborted"}."""
        job = self._job(request)
        state = (await self._json(request)).get("state")
        if state not in ("Closed", "Aborted"):
            raise BulkError(400, "InvalidJob", f"Invalid state: {state}")
        job.state = state
        return sf_json(job.info())

    async def add_batch(self, request: web.Request) -> web.Response:
        """POST job/{id}/batch with the SOQL text: the query runs now; a bad query fails the batch, as in
        Salesforce, rather than the request."""
        job = self._job(request)
        if job.state != "Open":
            raise BulkError(400, "InvalidJob", f"Job {job.id} is not open")
        text = await request.text()
        self._serial += 1
        batch = Batch(mint_id("751", self._serial), job.id, self.clock())
        include_deleted = job.operation == "queryAll"
        try:
            compiled, rows = run_soql(text, lambda spec: self.store.rows(spec, include_deleted=include_deleted))
            if compiled.spec.name != job.sobject:
                raise SoqlError("InvalidBatch", f"The query's object is not the job's ({job.sobject})")
            version = f"v{job.api_version}"
            batch.records = [
                with_attributes(version, compiled.spec, r["Id"], _epoch_dates(
                    compiled.spec, compiled.project(r, self._parent, version), compiled.relations))
                for r in rows
            ]
        except SoqlError as exc:
            batch.failure = f"InvalidBatch : Failed to process query: {exc.error_code}: {exc.message.strip()}"
        job.batches[batch.id] = batch
        info = batch.info() | {"state": "Queued", "stateMessage": None, "numberRecordsProcessed": 0}
        return sf_json(info, 201)

    def _parent(self, spec: Any, record_id: str) -> dict[str, Any] | None:
        return self.store.tables[spec.name].get(record_id)

    async def list_batches(self, request: web.Request) -> web.Response:
        """GET job/{id}/batch."""
        return sf_json({"batchInfo": [b.info() for b in self._job(request).batches.values()]})

    async def get_batch(self, request: web.Request) -> web.Response:
        """GET job/{id}/batch/{batchId}."""
        return sf_json(self._batch(request).info())

    async def result_ids(self, request: web.Request) -> web.Response:
        """GET .../result: the ids of the result sets (one per batch here)."""
        batch = self._batch(request)
        if batch.failure is not None:
            raise BulkError(400, "InvalidBatch", "Batch failed: " + batch.failure)
        return sf_json([_result_id(batch)])

    async def result(self, request: web.Request) -> web.Response:
        """GET .../result/{resultId}: the records, as JSON."""
        batch = self._batch(request)
        if batch.failure is not None or request.match_info["result_id"] != _result_id(batch):
            raise BulkError(400, "InvalidBatch", "Invalid result id")
        return sf_json(batch.records)


def _epoch_ms(field_type: str, text: str) -> int:
    """A stored date or date-time as epoch milliseconds (midnight UTC for a date)."""
    if field_type == "date":
        moment = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    else:
        moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z")
    return round(moment.timestamp() * 1000)


def _epoch_dates(spec: ObjectSpec, values: dict[str, Any],
                 relations: Mapping[str, tuple[str, ObjectSpec]]) -> dict[str, Any]:
    """Bulk API 1.0 JSON results carry dates and date-times as epoch milliseconds, parents' fields too."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, dict) and name in relations:
            out[name] = _epoch_dates(relations[name][1], value, {})
            continue
        described = spec.field(name) if name != "attributes" else None
        if described is not None and described.type in ("date", "datetime") and isinstance(value, str):
            out[name] = _epoch_ms(described.type, value)
        else:
            out[name] = value
    return out


def _result_id(batch: Batch) -> str:
    # Result ids share the 752 prefix; the sandbox has one result set per batch.
    return "752" + batch.id[3:]
