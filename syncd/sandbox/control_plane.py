"""The simulators' control plane (`/_sandbox/`) plumbing: its prefix, the handler type, the loopback guard and
its JSON error body."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CONTROL_PREFIX = "/_sandbox/"


def is_loopback(remote: str | None) -> bool:
    """Whether a peer address is on the loopback interface."""
    if not remote:
        return False
    try:
        return ipaddress.ip_address(remote.split("%")[0]).is_loopback
    except ValueError:
        return False


def json_error(status: int, message: str) -> web.Response:
    """A control-plane error body, `{"error": message}`."""
    return web.json_response({"error": message}, status=status)


@web.middleware
async def loopback_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse the control plane to any peer that is not on loopback."""
    if request.path.startswith(CONTROL_PREFIX) and not is_loopback(request.remote):
        return json_error(403, "the sandbox control plane answers loopback peers only")
    return await handler(request)
