"""The token vault: OAuth tokens encrypted with Fernet before they touch the database."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import CursorResult, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from syncd.store.columns import utcnow
from syncd.store.database import Database
from syncd.store.errors import StoreKeyError
from syncd.store.tables import OAUTH_TOKEN

KEY_HINT = (
    'set security.token_key (e.g. token_key = "${SYNCD_TOKEN_KEY}") or security.token_key_file in the '
    "config to a Fernet key; make one with: python -c "
    "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
)


@dataclass(frozen=True)
class StoredToken:
    """A connection's decrypted tokens; the tokens never appear in its repr."""

    access_token: str = field(repr=False)
    expires_at: datetime | None
    refresh_token: str | None = field(default=None, repr=False)
    # Not secret: the instance or API domain to call, granted scopes.
    extras: Mapping[str, str] = field(default_factory=dict)


def _fernet(key: bytes | str | None) -> Fernet:
    """The cipher for `key`, or a `StoreKeyError` that says what to set."""
    if not key:
        raise StoreKeyError(f"no token encryption key is configured: {KEY_HINT}")
    try:
        return Fernet(key)
    except (ValueError, TypeError) as exc:
        # Deliberately not echoing the key: a near-miss key is still a secret.
        raise StoreKeyError(
            f"the token encryption key is not a valid Fernet key (32 url-safe base64 bytes): {KEY_HINT}"
        ) from exc


class TokenVault:
    """Save, load and clear a connection's tokens; only ciphertext is written to the store."""

    def __init__(self, db: Database, key: bytes | str | None) -> None:
        self._db = db
        self._fernet = _fernet(key)

    @staticmethod
    def generate_key() -> bytes:
        """A new random key, for `syncd` setup commands and tests."""
        return Fernet.generate_key()

    def _seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode("ascii")

    def _open(self, connection: str, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode()
        except InvalidToken as exc:
            raise StoreKeyError(
                f"the tokens of connection {connection!r} cannot be decrypted with the configured key "
                "(was the key changed?): restore the previous key, or re-authorise the connection"
            ) from exc

    async def save(self, connection: str, token: StoredToken, *, session: AsyncSession | None = None) -> None:
        """Store the tokens; a token without a refresh token keeps the one already stored."""
        now = utcnow()
        refresh = None if token.refresh_token is None else self._seal(token.refresh_token)
        values: dict[str, Any] = {
            "connection": connection,
            "access_token_enc": self._seal(token.access_token),
            "refresh_token_enc": refresh,
            "expires_at": token.expires_at,
            "extras": dict(token.extras),
            "updated_at": now,
        }
        stmt = self._db.insert(OAUTH_TOKEN).values(**values)
        upsert = stmt.on_conflict_do_update(
            index_elements=["connection"],
            set_={
                "access_token_enc": stmt.excluded.access_token_enc,
                # Refresh responses often omit the refresh token; the old one is still valid then.
                "refresh_token_enc": func.coalesce(stmt.excluded.refresh_token_enc, OAUTH_TOKEN.c.refresh_token_enc),
                "expires_at": stmt.excluded.expires_at,
                "extras": stmt.excluded.extras,
                "updated_at": now,
            },
        )
        async with self._db.scope(session) as s:
            await s.execute(upsert)

    async def load(self, connection: str, *, session: AsyncSession | None = None) -> StoredToken | None:
        """The decrypted tokens, or None if the connection has none stored."""
        stmt = select(OAUTH_TOKEN).where(OAUTH_TOKEN.c.connection == connection)
        async with self._db.scope(session) as s:
            row = (await s.execute(stmt)).one_or_none()
        if row is None:
            return None
        return StoredToken(
            access_token=self._open(connection, row.access_token_enc),
            refresh_token=None if row.refresh_token_enc is None else self._open(connection, row.refresh_token_enc),
            expires_at=row.expires_at,
            extras=dict(row.extras),
        )

    async def check_key(self, *, session: AsyncSession | None = None) -> int:
        """Raise `StoreKeyError` naming every connection whose stored tokens this key cannot decrypt; else the
        number of connections with tokens. Run before anything else touches the store, so a wrong key is
        refused before it can mark connections as needing re-authorisation or seal new tokens beside old."""
        async with self._db.scope(session) as s:
            rows = (await s.execute(select(OAUTH_TOKEN).order_by(OAUTH_TOKEN.c.connection))).all()
        unreadable = [row.connection for row in rows if not self._opens(row.access_token_enc, row.refresh_token_enc)]
        if unreadable:
            names = ", ".join(repr(name) for name in unreadable)
            raise StoreKeyError(
                f"the configured token key cannot decrypt the stored tokens of {names}: set security.token_key "
                "(or token_key_file) back to the key they were saved with (`syncd keys rotate` changes keys), or, "
                "if that key is lost, run `syncd keys forget --yes` and `syncd auth` for each connection; "
                "nothing was changed"
            )
        return len(rows)

    def _opens(self, *sealed: str | None) -> bool:
        """True when every given ciphertext decrypts with this key."""
        try:
            for value in sealed:
                if value is not None:
                    self._fernet.decrypt(value.encode("ascii"))
        except InvalidToken:
            return False
        return True

    async def rotate(self, new_key: bytes | str) -> int:
        """Re-encrypt every stored token with `new_key` in one transaction; returns how many connections.
        Refuses (`StoreKeyError`, nothing changed) unless this vault's key decrypts all of them first."""
        new = _fernet(new_key)
        async with self._db.transaction() as s:
            await self.check_key(session=s)
            rows = (await s.execute(select(OAUTH_TOKEN))).all()
            for row in rows:
                refresh = row.refresh_token_enc
                await s.execute(
                    update(OAUTH_TOKEN)
                    .where(OAUTH_TOKEN.c.connection == row.connection)
                    .values(
                        access_token_enc=new.encrypt(self._fernet.decrypt(row.access_token_enc.encode())).decode(),
                        refresh_token_enc=None if refresh is None
                        else new.encrypt(self._fernet.decrypt(refresh.encode())).decode(),
                    )
                )
        return len(rows)

    async def forget_all(self, *, session: AsyncSession | None = None) -> list[str]:
        """Delete every stored token (a lost key leaves them unreadable); returns the connections they were of."""
        async with self._db.scope(session) as s:
            names = list((await s.execute(select(OAUTH_TOKEN.c.connection).order_by(OAUTH_TOKEN.c.connection))
                          ).scalars())
            await s.execute(delete(OAUTH_TOKEN))
        return names

    async def clear(self, connection: str, *, session: AsyncSession | None = None) -> bool:
        """Forget the connection's tokens (revoked grant, disconnect); False if there were none."""
        stmt = delete(OAUTH_TOKEN).where(OAUTH_TOKEN.c.connection == connection)
        async with self._db.scope(session) as s:
            return cast(CursorResult[Any], await s.execute(stmt)).rowcount > 0
