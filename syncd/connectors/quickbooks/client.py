"""python-quickbooks and intuit-oauth pointed at one connection's hosts, called off the event loop, with their
errors translated into syncd's taxonomy at this boundary.

- python-quickbooks builds every URL from `QuickBooks.api_url`, a property that picks one of two hard-coded hosts
  (`quickbooks.api.intuit.com` or `sandbox-quickbooks.api.intuit.com`) by its `sandbox` flag. `PointedQuickBooks`
  overrides that property only, with the connection's `base_url` + `/v3`.
- It sends through `process_request(method, url, headers, params, data)` with `self.session.access_token`.
  `PointedQuickBooks` overrides that one method too: the token is the calling task's (the connector's single-flight
  `TokenManager` hands it out; the SDK's own refresh is not used), each worker thread has its own
  `requests.Session` with a timeout, and a 429 or 5xx is raised here with its status, before the SDK's JSON
  handling loses it. Everything else (query, create_object, update_object, change_data_capture, batch_operation,
  post, minorversion, `requestid`) is the SDK's own code.
- intuit-oauth's `AuthClient` reads Intuit's OpenID discovery document in its constructor and takes the
  document's URL as its `environment` (documented: anything but "sandbox"/"production" is a discovery URL), so
  pointing it at another token endpoint is configuration, not a subclass.
"""

from __future__ import annotations

import threading
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import requests
from quickbooks import QuickBooks

# Written by a worker thread while it runs one call for one task; read back by that task.
CURRENT: ContextVar[Call] = ContextVar("qbo_call")


@dataclass
class Call:
    """One SDK call's token and what its HTTP answer said that the SDK does not hand back."""

    token: str
    timeout_s: float
    status: int | None = None
    date: str | None = None


class HttpFailure(Exception):
    """A 429 or 5xx answer (or no answer), raised before python-quickbooks parses the body."""

    def __init__(self, status: int | None, text: str) -> None:
        self.status = status
        self.text = text
        super().__init__(f"HTTP {status}: {text[:200]}")


class PointedQuickBooks(QuickBooks):  # type: ignore[misc]
    """python-quickbooks against `base_url`, authenticated per call (see the module's docstring)."""

    api_root: str = ""
    _local = threading.local()

    @property
    def api_url(self) -> str:
        """`{base_url}/v3`: every URL the SDK builds starts here."""
        return self.api_root + "/v3"

    def process_request(self, request_type: str, url: str, headers: Any = "", params: Any = "",
                        data: Any = "") -> requests.Response:
        """Send one request with the calling task's token; 429 and 5xx are raised as `HttpFailure`."""
        call = CURRENT.get()
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False  # no proxy or CA bundle from the environment overriding the connection's
            self._local.session = session
        headers = dict(headers or {})
        headers["Authorization"] = "Bearer " + call.token
        try:
            response = session.request(request_type, url, headers=headers, params=params, data=data,
                                       timeout=call.timeout_s)  # fmt: skip
        except requests.RequestException as exc:
            raise HttpFailure(None, f"{type(exc).__name__}: {exc}") from exc
        call.status = response.status_code
        call.date = response.headers.get("Date")
        if response.status_code == 429 or response.status_code >= 500:
            raise HttpFailure(response.status_code, response.text)
        return response


def pointed_client(base_url: str, realm_id: str, minor_version: int) -> PointedQuickBooks:
    """A python-quickbooks client of one company at `base_url`."""
    client = PointedQuickBooks(company_id=realm_id, minorversion=minor_version)
    client.api_root = base_url.rstrip("/")
    client._local = threading.local()  # per client: its worker threads' sessions
    return client
