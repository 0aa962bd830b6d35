"""What every Accounting API call passes before its handler: the bearer token, `xero-tenant-id`, and Xero's
limits per organisation (5 calls at once, 60 a minute, 5,000 a day) and per app (10,000 a minute).

Answers: 401 `AuthenticationUnsuccessful` (or `TokenExpired`) for a bad token; 403 for a tenant the token does
not reach; 429 with `Retry-After` and `X-Rate-Limit-Problem: concurrent|minute|day|appminute` over a limit.
Every answer carries `X-DayLimit-Remaining`, `X-MinLimit-Remaining` and `X-AppMinLimit-Remaining`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from syncd.sandbox.quota import QuotaCounter
from syncd.sandbox.xero.identity import RotatingTokenStore
from syncd.sandbox.xero.wire import problem

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def rate_limited(problem_name: str, retry_after: float) -> web.Response:
    """The 429 answer of a spent limit."""
    return web.Response(
        status=429,
        text="",
        headers={"Retry-After": str(max(1, round(retry_after))), "X-Rate-Limit-Problem": problem_name},
    )


@dataclass
class XeroGuard:
    """Token, tenant and limits in front of `prefix`."""

    prefix: str
    tokens: Callable[[], RotatingTokenStore]
    tenant_id: Callable[[], str]
    quota: QuotaCounter  # the organisation's minute window and day
    app_quota: QuotaCounter  # the app's minute window across organisations
    on_rate_limited: Callable[[], None]
    concurrent_max: int = 5
    in_flight: int = 0

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Check the call, count it, and add the remaining-limit headers to the answer."""
        if not request.path.startswith(self.prefix + "/"):
            return await handler(request)
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        state = self.tokens().check(token)
        if state == "expired":
            return problem(401, "Unauthorized", "TokenExpired: token expired",
                           {"WWW-Authenticate": 'Bearer error="invalid_token"'})  # fmt: skip
        if state != "ok":
            return problem(401, "Unauthorized", "AuthenticationUnsuccessful")
        if request.headers.get("xero-tenant-id", "").lower() != self.tenant_id().lower():
            return problem(403, "Forbidden", "AuthenticationUnsuccessful")
        if self.in_flight >= self.concurrent_max:
            self.on_rate_limited()
            return rate_limited("concurrent", 1)
        app = self.app_quota.take()
        if not app.allowed:
            self.on_rate_limited()
            return rate_limited("appminute", app.window_reset_s)
        decision = self.quota.take()
        if not decision.allowed:
            self.on_rate_limited()
            if decision.policy == "daily":
                return rate_limited("day", 86_400 - (self.quota.clock() % 86_400))
            return rate_limited("minute", decision.window_reset_s)
        self.in_flight += 1
        limits = {
            "X-DayLimit-Remaining": str(decision.daily_remaining),
            "X-MinLimit-Remaining": str(decision.window_remaining),
            "X-AppMinLimit-Remaining": str(app.window_remaining),
        }
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            exc.headers.update(limits)
            raise
        finally:
            self.in_flight -= 1
        response.headers.update(limits)
        return response
