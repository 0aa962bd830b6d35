"""What every Books call passes before its handler: OAuth token, `organization_id`, the per-org quota.

Also turns ZohoError into its `{code, message}` answer and gives unknown URLs/methods Zoho-shaped bodies.

Choices (the contracts README marks these unverified):
- missing/unknown/expired token: HTTP 401 `{"code": 57, "message": "You are not authorized to perform this
  operation"}`, the body API users report for an invalid or expired OAuth token;
- missing `organization_id`: HTTP 400 code 6042 (not on `/organizations`, which lists them); an organisation
  the user is not in: HTTP 401 code 6041 "This user is not associated with the CompanyID/CompanyName:<id>.";
- over 100 requests in a minute: HTTP 429 code 44; over the daily cap: HTTP 429 code 45. Both carry
  `Retry-After` and `X-Rate-Limit-Limit/-Remaining/-Reset` (the daily figures).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from syncd.sandbox.oauth_tokens import TokenStore
from syncd.sandbox.quota import QuotaCounter, QuotaDecision
from syncd.sandbox.zohobooks.errors import (
    DAILY_LIMIT,
    NOT_AUTHORIZED,
    ORGANIZATION_REQUIRED,
    ORGANIZATION_UNKNOWN,
    RATE_LIMITED,
    URL_NOT_FOUND,
    ZohoError,
    error_response,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
NOT_AUTHORIZED_MESSAGE = "You are not authorized to perform this operation"
WINDOW_MESSAGE = "You have made too many requests continuously. Please try again after some time."
DAILY_MESSAGE = "You have reached the maximum number of API calls allowed for the day. Please try again tomorrow."


def rate_limit_response(decision: QuotaDecision | None, daily_cap: int) -> web.Response:
    """The 429 answer; `decision` None means an injected fault (reported as the window limit)."""
    daily = decision is not None and decision.policy == "daily"
    retry_after = 60 if decision is None else max(1, round(decision.window_reset_s))
    headers = {
        "Retry-After": str(retry_after),
        "X-Rate-Limit-Limit": str(daily_cap),
        "X-Rate-Limit-Remaining": str(decision.daily_remaining if decision else 0),
    }
    if daily:
        return error_response(429, DAILY_LIMIT, DAILY_MESSAGE, headers)
    return error_response(429, RATE_LIMITED, WINDOW_MESSAGE, headers)


@dataclass
class BooksGuard:
    """The middleware state: where the API lives and the organisation's grants and quota."""

    prefix: str
    organization_id: Callable[[], str]
    tokens: Callable[[], TokenStore]
    quota: QuotaCounter
    on_rate_limited: Callable[[], None]

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Authenticate, check the organisation and the quota, then answer ZohoErrors in Zoho's shape."""
        if not (request.path == self.prefix or request.path.startswith(self.prefix + "/")):
            return await handler(request)
        try:
            self._authenticate(request)
            decision = self.quota.take()
            if not decision.allowed:
                self.on_rate_limited()
                return rate_limit_response(decision, self.quota.daily_cap)
            route_error = request.match_info.http_exception
            if isinstance(route_error, web.HTTPMethodNotAllowed):
                return error_response(
                    405, 37, f"The HTTP method {request.method} is not allowed for the requested resource"
                )
            if route_error is not None:
                return error_response(404, URL_NOT_FOUND, "Invalid URL Passed")
            response = await handler(request)
        except ZohoError as error:
            return error.response()
        response.headers.setdefault("X-Rate-Limit-Limit", str(self.quota.daily_cap))
        response.headers.setdefault("X-Rate-Limit-Remaining", str(decision.daily_remaining))
        return response

    def _authenticate(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme != "Zoho-oauthtoken" or not token.strip():
            raise ZohoError(401, NOT_AUTHORIZED, NOT_AUTHORIZED_MESSAGE)
        if self.tokens().check(token.strip()) != "ok":
            raise ZohoError(401, NOT_AUTHORIZED, NOT_AUTHORIZED_MESSAGE)
        organization = request.query.get("organization_id")
        if request.path.startswith(self.prefix + "/organizations") and not organization:
            return  # the organisations API is how a user learns the id; it needs none
        if not organization:
            raise ZohoError(
                400,
                ORGANIZATION_REQUIRED,
                "This user belongs to multiple organizations, hence the parameter CompanyID/CompanyName is "
                "required for associating this user to a specific organization.",
            )
        if organization != self.organization_id():
            raise ZohoError(
                401, ORGANIZATION_UNKNOWN, f"This user is not associated with the CompanyID/CompanyName:{organization}."
            )
