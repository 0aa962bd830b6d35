"""Starting and stopping the HTTP listeners (webhooks, admin) with a clean shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from syncd.logs import get_logger

log = get_logger(__name__)

# Long enough for an in-flight webhook to finish its inbox write; the sender retries anything cut off.
SHUTDOWN_TIMEOUT_S = 10.0
# How long a client may take to send a request's headers and body, and to stay idle between requests: a sender
# trickling bytes must not hold a connection (and a handler) for ever.
READ_TIMEOUT_S = 30.0


def bounded_requests(name: str, read_timeout_s: float) -> Middleware:
    """Read each request's body (within the app's size cap) before its handler runs, in at most
    `read_timeout_s` (else 408 and the connection closed); a client gone mid-request is one log line."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            try:
                async with asyncio.timeout(read_timeout_s):
                    await request.read()  # kept by the request: the handler's read() or json() gets it
            except TimeoutError:
                log.warning("request body too slow; connection closed", listener=name, path=request.path,
                            peer=request.remote, timeout_s=read_timeout_s)
                response = web.json_response({"error": f"request not received within {read_timeout_s} s"},
                                             status=408)
                response.force_close()
                return response
            return await handler(request)
        except ConnectionResetError:
            # Not an error of ours: aiohttp would log it with a traceback for every client that hangs up.
            log.info("client disconnected mid-request", listener=name, path=request.path, peer=request.remote)
            response = web.Response(status=400)
            response.force_close()
            return response

    return middleware


@dataclass(frozen=True)
class Listener:
    """A running aiohttp application and the address it actually bound (port 0 picks a free one)."""

    name: str
    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        """The listener's base URL, e.g. `http://127.0.0.1:8080`."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish (bounded), and release the socket."""
        await self.runner.cleanup()
        log.info("listener stopped", listener=self.name)


async def serve(
    app: web.Application,
    host: str,
    port: int,
    *,
    name: str = "http",
    shutdown_timeout: float = SHUTDOWN_TIMEOUT_S,
    read_timeout_s: float = READ_TIMEOUT_S,
) -> Listener:
    """Start `app` on `host:port` and return the running listener; the caller must `stop()` it.

    Every listener gets the same limits: bodies (capped by the app's `client_max_size`) read within
    `read_timeout_s`, and connections idle (or still sending headers) that long closed."""
    # Outermost, so the body is read (or the client found gone) before any other middleware or handler runs.
    app.middlewares.insert(0, bounded_requests(name, read_timeout_s))
    # Lingering (reading the rest of a body answered early, e.g. 413 or 408) is bounded the same way.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout,
                           keepalive_timeout=read_timeout_s, lingering_time=min(read_timeout_s, 10.0))
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_host, bound_port = runner.addresses[0][:2]
    listener = Listener(name=name, runner=runner, host=str(bound_host), port=int(bound_port))
    log.info("listening", listener=name, url=listener.url)
    return listener


async def stop_all(listeners: Sequence[Listener]) -> None:
    """Stop every listener, newest first, even if one of them fails to stop."""
    errors: list[BaseException] = []
    for listener in reversed(listeners):
        try:
            await listener.stop()
        except Exception as exc:
            errors.append(exc)
            log.error("listener did not stop cleanly", listener=listener.name, error=str(exc))
    if errors:
        raise errors[0]
