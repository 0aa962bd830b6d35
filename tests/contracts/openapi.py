"""Validate raw HTTP responses against a vendor's OpenAPI file with openapi-core (shared by simulators)."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import yaml  # type: ignore[import-untyped]  # no stubs installed; only safe_load is used
from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse

SpecTransform = Callable[[dict[str, Any]], None]

# Specs are large (100+ kB) and slow to build; tests call load_spec per test, so build each once per process.
# The key includes the transform because a transform changes the schemas that are validated against.
_CACHE: dict[tuple[Path, SpecTransform | None], Any] = {}
_RAW_CACHE: dict[Path, dict[str, Any]] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Exchange:
    """One answered request, as the client received it."""

    method: str
    path: str
    query: str
    status: int
    headers: dict[str, str]
    body: bytes


class ContractViolation(AssertionError):
    """A response did not match the OpenAPI file; the message lists every mismatch found."""


def _read_document(path: Path) -> dict[str, Any]:
    """Parse a JSON or YAML OpenAPI document (read once per path)."""
    if path not in _RAW_CACHE:
        text = path.read_text(encoding="utf-8")
        doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        if not isinstance(doc, dict):
            raise ValueError(f"{path}: not an OpenAPI document (top level is {type(doc).__name__})")
        _RAW_CACHE[path] = doc
    return _RAW_CACHE[path]


def load_spec(path: Path, *, transform: SpecTransform | None = None) -> Any:
    """Load an OpenAPI file (JSON or YAML) into an openapi-core `OpenAPI`, applying `transform` to a copy.

    The result is cached per (resolved path, transform); pass the same transform function object each time.
    """
    key = (path.resolve(), transform)
    with _LOCK:
        if key not in _CACHE:
            doc = copy.deepcopy(_read_document(key[0]))
            if transform is not None:
                transform(doc)
            _drop_empty_content(doc)
            config = Config(extra_media_type_deserializers={"*/*": _deserialize_any})
            _CACHE[key] = OpenAPI.from_dict(doc, config=config)
        return _CACHE[key]


def _drop_empty_content(node: Any) -> None:
    """Remove `content: {}` everywhere: it means "no body", which openapi-core only understands as no key."""
    if isinstance(node, dict):
        if node.get("content") == {}:
            del node["content"]
        for value in node.values():
            _drop_empty_content(value)
    elif isinstance(node, list):
        for item in node:
            _drop_empty_content(item)


def _deserialize_any(value: bytes, **_parameters: str) -> Any:
    """Deserialize a body declared as `*/*` (HubSpot's error responses): JSON when it parses, else raw bytes.

    openapi-core hands a range media type's body over undecoded, so a JSON error body would otherwise never
    be checked against its schema.
    """
    try:
        return json.loads(value)
    except ValueError:
        return value


def _server_root(spec: Any) -> tuple[str, str]:
    """Return (scheme://host, base path) of the spec's first server, which requests are matched against."""
    servers = spec.spec / "servers"
    url = "http://localhost"
    if servers.exists():
        with servers.open() as server_list:
            if server_list:
                first = server_list[0]
                url = str(first["url"])
                # Server variables: substitute their defaults so the URL is concrete.
                for name, variable in (first.get("variables") or {}).items():
                    url = url.replace("{" + name + "}", str(variable.get("default", "")))
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}", parts.path.rstrip("/")


def assert_valid_response(
    spec: Any,
    *,
    method: str,
    path: str,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    query: str = "",
) -> None:
    """Fail (ContractViolation) unless `body`/`status`/`headers` is a valid answer to `method path?query`.

    `path` is the path the simulator was called on, with or without the spec server's base path
    (e.g. `/books/v3/invoices` or `/invoices`); the host is irrelevant. An operation missing from the spec
    is a violation too: a test that meant to check a response must not pass by checking nothing.
    """
    host_url, base_path = _server_root(spec)
    if base_path and not (path == base_path or path.startswith(base_path + "/")):
        path = base_path + path
    content_type = ""
    for name, value in headers.items():
        if name.lower() == "content-type":
            content_type = value
    request = MockRequest(
        host_url,
        method.lower(),
        path,
        args=_query_args(query),
        # Request validation is not the point here, but openapi-core needs the request to find the operation.
        headers={},
    )
    response = MockResponse(
        body,
        status_code=status,
        headers=dict(headers),
        content_type=content_type.split(";", 1)[0].strip() or "application/json",
    )
    errors = list(spec.iter_response_errors(request, response))
    if errors:
        lines = [f"{method.upper()} {path}{'?' + query if query else ''} → {status} violates the contract:"]
        for error in errors:
            lines.append(f"  - {_describe(error)}")
        lines.append(f"  body: {body[:2000]!r}")
        raise ContractViolation("\n".join(lines))


def _query_args(query: str) -> dict[str, Any]:
    """Turn a raw query string into the mapping MockRequest expects (repeated keys keep their last value)."""
    return dict(parse_qsl(query.lstrip("?"), keep_blank_values=True))


def _describe(error: BaseException) -> str:
    """Render an openapi-core error with its nested schema errors, which hold the useful detail."""
    parts = [f"{type(error).__name__}: {error}"]
    cause = error.__cause__
    nested = getattr(cause, "schema_errors", None) or getattr(error, "schema_errors", None) or ()
    for schema_error in nested:
        location = "/".join(str(p) for p in getattr(schema_error, "absolute_path", ()))
        parts.append(f"    at /{location}: {getattr(schema_error, 'message', schema_error)}")
    if cause is not None and not nested:
        parts.append(f"    cause: {type(cause).__name__}: {cause}")
    return "\n".join(parts)
