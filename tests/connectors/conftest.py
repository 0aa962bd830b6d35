"""Connector tests run against the real simulators: one sandbox per session, restored before each test."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from syncd.connectors.storage import VaultTokenStorage
from syncd.connectors.tokens import Grant
from syncd.sandbox.runner import Sandbox
from syncd.store import ConnectionStore, Database, TokenVault, upgrade_database


@pytest.fixture(scope="session")
async def sandbox(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Sandbox]:
    """All three simulators on free loopback ports for the whole session (state not saved)."""
    async with Sandbox.running(
        workdir=tmp_path_factory.mktemp("connector-sandbox")
    ) as running:
        yield running


@pytest.fixture
async def reset_sandbox(sandbox: Sandbox) -> Sandbox:
    """The session sandbox with no records, faults off, default limits and live grants on every system."""
    sandbox.restore_defaults()
    return sandbox


class ControlPlane:
    """The `/_sandbox/` control plane of one simulator, driven over HTTP as a tester would."""

    def __init__(self, session: aiohttp.ClientSession, root: str) -> None:
        self._session = session
        self._root = root

    async def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """POST a control request and return its JSON answer (raises on a non-2xx answer)."""
        async with self._session.post(f"{self._root}/_sandbox/{path}", json=body or {}) as response:
            response.raise_for_status()
            return await response.json()

    async def get(self, path: str) -> Any:
        """GET a control resource as JSON."""
        async with self._session.get(f"{self._root}/_sandbox/{path}") as response:
            response.raise_for_status()
            return await response.json()


@pytest.fixture
async def control_session() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain HTTP session for control-plane calls (TLS checks off: the Salesforce certificate is self-signed)."""
    connector = aiohttp.TCPConnector(ssl=False)
    async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:
        yield session


@pytest.fixture
def control(reset_sandbox: Sandbox, control_session: aiohttp.ClientSession) -> dict[str, ControlPlane]:
    """A control plane per system name."""
    return {name: ControlPlane(control_session, reset_sandbox.control_url(name))
            for name in reset_sandbox.simulators}


@dataclass
class StoredTokens:
    """The store's own token storage (encrypted vault + connection status) on a SQLite file, with reads
    for the assertions."""

    storage: VaultTokenStorage
    db: Database

    async def grant(self, connection: str) -> Grant:
        """The grant stored for `connection` (decrypted); fails the test if there is none."""
        grant = await self.storage.load_grant(connection)
        assert grant is not None, f"no grant stored for {connection}"
        return grant

    async def reauth_reason(self, connection: str) -> str | None:
        """Why `connection` needs re-authorisation, or None when it does not."""
        state = await ConnectionStore(self.db).get(connection)
        return state.last_error if state is not None and state.status == "needs_reauth" else None


@pytest.fixture
async def stored_tokens(tmp_path: Path) -> AsyncIterator[StoredTokens]:
    """Token storage backed by a migrated store in a fresh SQLite file."""
    db = await Database.open(f"sqlite:///{tmp_path / 'tokens.db'}")
    await upgrade_database(db)
    systems: defaultdict[str, str] = defaultdict(lambda: "sandbox")
    try:
        yield StoredTokens(VaultTokenStorage(TokenVault(db, TokenVault.generate_key()), ConnectionStore(db),
                                             systems=systems), db)
    finally:
        await db.close()
