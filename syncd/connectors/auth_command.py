"""`syncd auth CONNECTION`: the OAuth authorisation-code flow with a local redirect listener.

The command prints the system's consent URL, waits for the browser to come back to
`http://127.0.0.1:PORT/callback` with `code` and `state`, trades the code through the connector's
`exchange_code` and stores the grant (encrypted) through a `TokenStorage`. Tokens are never printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import webbrowser
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, cast

import click
from aiohttp import web

from syncd.cli import config_option
from syncd.connectors import registry
from syncd.connectors.storage import VaultTokenStorage
from syncd.connectors.tokens import Grant, TokenStorage
from syncd.settings import LISTEN_HOST_ENV, Settings, load_settings
from syncd.store import ConnectionStore, Database, TokenVault, prepare_schema

CALLBACK_PATH = "/callback"

# Opens where the grant is kept, for the connection's settings. The default uses the store's token vault;
# a test can give its own.
StorageFactory = Callable[[Settings], AbstractAsyncContextManager[TokenStorage]]


class AuthorisingConnector(Protocol):
    """What `syncd auth` needs of a connector."""

    name: str

    async def start(self) -> None:
        """Open the connector's sessions."""

    async def close(self) -> None:
        """Release them."""

    def authorize_url(self, redirect_uri: str, state: str) -> str:
        """The consent URL."""
        ...

    async def exchange_code(self, code: str, redirect_uri: str) -> Grant:
        """Trade the code for tokens."""
        ...


class AuthFailed(click.ClickException):
    """The flow did not end with a grant; the message says why and what to try."""


@dataclass(frozen=True)
class AuthResult:
    """What was stored (no secrets): for the command's closing lines."""

    connection: str
    system: str
    expires_at: str
    has_refresh_token: bool
    extras: dict[str, str]


def build_connector(
    name: str, settings: Settings, storage: TokenStorage | None = None
) -> AuthorisingConnector:
    """The connector of connection `name`, or a usage error that names the configured connections."""
    conn = settings.connections.get(name)
    if conn is None:
        known = ", ".join(sorted(settings.connections)) or "none"
        raise click.UsageError(f"no connection named {name!r} in the config (connections: {known})")
    # Every connector class serves the code flow; the registry's return type is the narrower protocol.
    return cast(AuthorisingConnector, registry.build_connector(name, conn, storage))


class RedirectListener:
    """A one-shot aiohttp server on 127.0.0.1 (or SYNCD_LISTEN_HOST) that receives the OAuth redirect and checks
    its state."""

    def __init__(self, state: str, port: int = 0) -> None:
        self._state = state
        self._port = port
        self._code: asyncio.Future[str] | None = None
        self._runner: web.AppRunner | None = None
        self.redirect_uri = ""

    async def start(self) -> None:
        """Listen (port 0: a free port) and fix the redirect URI."""
        self._code = asyncio.get_running_loop().create_future()
        app = web.Application()
        app.router.add_get(CALLBACK_PATH, self._callback)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        # The redirect URI names 127.0.0.1 (what apps accept without TLS); in a container the listener binds
        # SYNCD_LISTEN_HOST (0.0.0.0) so that the host's 127.0.0.1:PORT, published with `-p`, reaches it.
        site = web.TCPSite(self._runner, os.environ.get(LISTEN_HOST_ENV) or "127.0.0.1", self._port)
        await site.start()
        port = int(self._runner.addresses[0][1])
        self.redirect_uri = f"http://127.0.0.1:{port}{CALLBACK_PATH}"

    async def _callback(self, request: web.Request) -> web.Response:
        assert self._code is not None
        query = request.query
        if self._code.done():
            return web.Response(status=409, text="This authorisation has already been handled.")
        if not secrets.compare_digest(query.get("state", ""), self._state):
            # A redirect that did not start here (or was tampered with) must not be exchanged.
            self._code.set_exception(
                AuthFailed("the redirect's state does not match: start `syncd auth` again")
            )
            return web.Response(status=400, text="State mismatch: this redirect was not started by syncd.")
        if "error" in query:
            reason = query.get("error_description") or query["error"]
            self._code.set_exception(AuthFailed(f"the system refused the authorisation: {reason}"))
            return web.Response(status=400, text=f"Authorisation refused: {reason}")
        code = query.get("code")
        if not code:
            self._code.set_exception(AuthFailed("the redirect carried no code"))
            return web.Response(status=400, text="No authorisation code in the redirect.")
        self._code.set_result(code)
        return web.Response(text="syncd is authorised. You can close this window.")

    async def wait(self, timeout_s: float) -> str:
        """The code from the redirect; AuthFailed after `timeout_s` without one."""
        assert self._code is not None
        try:
            return await asyncio.wait_for(asyncio.shield(self._code), timeout_s)
        except TimeoutError as exc:
            raise AuthFailed(f"no redirect arrived within {timeout_s:.0f} s: run `syncd auth` again") from exc

    async def close(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._code is not None and not self._code.done():
            self._code.cancel()


async def authorise(
    name: str,
    settings: Settings,
    storage: TokenStorage,
    *,
    port: int = 0,
    timeout_s: float = 300.0,
    show: Callable[[str], None] = click.echo,
    open_browser: bool = False,
) -> AuthResult:
    """Run the whole flow for connection `name` and store the grant through `storage`."""
    connector = build_connector(name, settings, storage)
    state = secrets.token_urlsafe(24)
    listener = RedirectListener(state, port)
    await listener.start()
    try:
        await connector.start()
        url = connector.authorize_url(listener.redirect_uri, state)
        show(f"Open this URL to authorise connection {name!r}:\n\n  {url}\n")
        show(f"Waiting for the redirect to {listener.redirect_uri} ...")
        if open_browser:
            webbrowser.open(url)
        code = await listener.wait(timeout_s)
        grant = await connector.exchange_code(code, listener.redirect_uri)
        await storage.save_grant(name, grant)
    finally:
        await listener.close()
        await connector.close()
    conn = settings.connections[name]
    return AuthResult(
        connection=name,
        system=conn.system,
        expires_at=grant.expires_at.isoformat() if grant.expires_at else "when the system ends the session",
        has_refresh_token=bool(grant.refresh_token),
        extras=dict(grant.extras),
    )


@contextlib.asynccontextmanager
async def vault_storage(settings: Settings) -> AsyncIterator[TokenStorage]:
    """The store named by the config (schema checked), its token vault keyed by `security.token_key(_file)`."""
    db = await Database.open(settings.store.url)
    try:
        await prepare_schema(db)
        vault = TokenVault(db, settings.security.key_bytes())
        # A new grant sealed with a key that cannot read the others would leave the store under two keys.
        await vault.check_key()
        systems = {name: conn.system for name, conn in settings.connections.items()}
        yield VaultTokenStorage(vault, ConnectionStore(db), systems=systems)
    finally:
        await db.close()


async def run_auth(
    name: str,
    config: Path,
    *,
    port: int = 0,
    timeout_s: float = 300.0,
    open_browser: bool = False,
    storage_factory: StorageFactory = vault_storage,
) -> AuthResult:
    """Load the config, run the flow and print what was stored (never a token)."""
    settings = load_settings(config)
    build_connector(name, settings)  # an unknown name is a usage error before the store is touched
    async with storage_factory(settings) as storage:
        result = await authorise(
            name, settings, storage, port=port, timeout_s=timeout_s, open_browser=open_browser
        )
    refresh = "a refresh token" if result.has_refresh_token else "no refresh token"
    extras = "".join(f", {k}={v}" for k, v in sorted(result.extras.items()) if k != "scope")
    click.echo(
        f"Stored the grant of connection {result.connection!r} ({result.system}): an access token valid "
        f"until {result.expires_at} and {refresh}{extras}."
    )
    return result


@click.command("auth")
@click.argument("connection")
@config_option
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port of the local redirect listener (0: a free port).",
)
@click.option(
    "--browser/--no-browser",
    default=False,
    show_default=True,
    help="Open the consent URL in a browser (otherwise it is only printed).",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=1),
    default=300.0,
    show_default=True,
    help="Seconds to wait for the redirect.",
)
def auth_command(connection: str, config_path: Path, port: int, browser: bool, timeout_s: float) -> None:
    """Authorise CONNECTION with the OAuth code flow and store its tokens (encrypted)."""
    asyncio.run(run_auth(connection, config_path, port=port, timeout_s=timeout_s, open_browser=browser))
