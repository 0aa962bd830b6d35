"""Starting and stopping the HTTP listeners (webhooks, admin) with a clean shutdown."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web

from syncd.logs import get_logger

log = get_logger(__name__)

# Long enough for an in-flight webhook to finish its inbox write; the sender retries anything cut off.
SHUTDOWN_TIMEOUT_S = 10.0


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
) -> Listener:
    """Start `app` on `host:port` and return the running listener; the caller must `stop()` it."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout)
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
