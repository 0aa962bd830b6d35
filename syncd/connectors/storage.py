"""Token storage for connectors, kept in the store: the encrypted vault plus the connection's status."""

from __future__ import annotations

from collections.abc import Mapping

from syncd.connectors.tokens import Grant
from syncd.store import ConnectionStore, StoredToken, TokenVault


class VaultTokenStorage:
    """`TokenStorage` over the store: grants encrypted in the token vault, a dead grant marks needs_reauth."""

    def __init__(self, vault: TokenVault, connections: ConnectionStore, *, systems: Mapping[str, str]) -> None:
        self._vault = vault
        self._connections = connections
        # Connection name → system, for the connection's row in the store.
        self._systems = systems

    async def load_grant(self, connection: str) -> Grant | None:
        """The stored grant, decrypted; None when the connection has never been authorised."""
        stored = await self._vault.load(connection)
        if stored is None:
            return None
        return Grant(stored.access_token, stored.expires_at, stored.refresh_token, dict(stored.extras))

    async def save_grant(self, connection: str, grant: Grant) -> None:
        """Encrypt and keep a new grant; the connection is usable again."""
        await self._vault.save(
            connection, StoredToken(grant.access_token, grant.expires_at, grant.refresh_token, dict(grant.extras))
        )
        await self._connections.ensure(connection, self._systems[connection])
        await self._connections.set_status(connection, "ok", None)

    async def mark_needs_reauth(self, connection: str, message: str) -> None:
        """Record that a person must re-authorise the connection (`syncd auth`), with the reason."""
        await self._connections.ensure(connection, self._systems[connection])
        await self._connections.set_status(connection, "needs_reauth", message)
