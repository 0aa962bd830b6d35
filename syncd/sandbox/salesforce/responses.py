"""How the simulated Salesforce answers: JSON bodies, error arrays, request bodies and API versions."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from syncd.sandbox.salesforce.records import RecordError, SfError
from syncd.sandbox.salesforce.schema import ObjectSpec, object_spec

VERSION_PATTERN = r"v\d{2,3}\.\d"
API_PREFIX = "/services/data/"
LATEST_VERSION = "59.0"


def sf_json(body: Any, status: int = 200) -> web.Response:
    """A JSON answer as Salesforce sends it."""
    return web.Response(text=json.dumps(body), status=status, content_type="application/json", charset="UTF-8")


def sf_errors(status: int, errors: Sequence[SfError]) -> web.Response:
    """The REST API's error array `[{message, errorCode, fields}]`."""
    return sf_json([e.to_json() for e in errors], status)


def sf_error(status: int, error_code: str, message: str, fields: Sequence[str] = ()) -> web.Response:
    """One error in the REST API's error array."""
    return sf_errors(status, [SfError(error_code, message, tuple(fields))])


async def read_json(request: web.Request) -> Any:
    """The request body as JSON; 400 JSON_PARSER_ERROR when it is not."""
    text = await request.text()
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecordError(400, [SfError("JSON_PARSER_ERROR", f"Unexpected character: {exc.msg}")]) from exc


async def read_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object; 400 JSON_PARSER_ERROR otherwise."""
    body = await read_json(request)
    if not isinstance(body, dict):
        raise RecordError(
            400, [SfError("JSON_PARSER_ERROR", "Cannot deserialize instance of sObject from START_ARRAY")]
        )
    return body


def version_of(request: web.Request) -> str:
    """The `vNN.N` the client addressed."""
    return request.match_info.get("version", "v" + LATEST_VERSION)


def version_number(request: web.Request) -> float:
    """The API version as a number, for behaviour that changed between versions."""
    return float(version_of(request)[1:])


def spec_from_path(request: web.Request) -> ObjectSpec:
    """The sObject named in the URL; 404 NOT_FOUND when the org has no such type."""
    spec = object_spec(request.match_info["sobject"])
    if spec is None:
        raise RecordError(404, [SfError("NOT_FOUND", "The requested resource does not exist")])
    return spec


def record_url(version: str, sobject: str, record_id: str) -> str:
    """The `attributes.url` of a record."""
    return f"{API_PREFIX}{version}/sobjects/{sobject}/{record_id}"


def with_attributes(version: str, spec: ObjectSpec, record_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """A record as the REST API renders it: `attributes` first, then the fields."""
    return {"attributes": {"type": spec.name, "url": record_url(version, spec.name, record_id)}, **fields}
