"""One OAuth token manager per connection: refresh before expiry and after a 401, single-flight."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar

from syncd.errors import AuthError
from syncd.logs import add_secret, get_logger

log = get_logger(__name__)
T = TypeVar("T")
# At most this many sends of one call meet a 401 before it fails: each 401 hands the call another token, and tokens
# that other calls keep rotating (or a system expiring them every few seconds) must not pass a call from hand to hand
# for ever.
SENDS_BEFORE_GIVING_UP = 4


@dataclass(frozen=True)
class Grant:
    """What a token endpoint handed out. `expires_at` None means the system does not say."""

    access_token: str = field(repr=False)
    expires_at: datetime | None
    refresh_token: str | None = field(default=None, repr=False)
    extras: Mapping[str, str] = field(default_factory=dict)


class TokenRefresher(Protocol):
    """Calls the system's token endpoint; raises `AuthError` for an invalid grant, `RetryableError` otherwise."""

    async def __call__(self, refresh_token: str) -> Grant:
        """Exchange the refresh token for a new access token."""
        ...


class TokenStorage(Protocol):
    """Where tokens are kept between runs (encrypted): the store's token vault."""

    async def load_grant(self, connection: str) -> Grant | None:
        """The stored grant of `connection`, if any."""
        ...

    async def save_grant(self, connection: str, grant: Grant) -> None:
        """Store a grant (the refresh token kept if the new grant has none)."""
        ...

    async def mark_needs_reauth(self, connection: str, message: str) -> None:
        """Record that the connection's grant is gone and a person must re-authorise it."""
        ...


def _now() -> datetime:
    return datetime.now(UTC)


class TokenManager:
    """Hands out a valid access token; all concurrent callers share one refresh (single-flight)."""

    def __init__(
        self,
        connection: str,
        refresher: TokenRefresher,
        *,
        storage: TokenStorage | None = None,
        refresh_token: str | None = None,
        clock: Callable[[], datetime] = _now,
        early: timedelta = timedelta(seconds=60),
        auth_hint: str = "",
    ) -> None:
        self.connection = connection
        self._refresher = refresher
        self._storage = storage
        self._refresh_token = refresh_token
        self._grant: Grant | None = None
        self._clock = clock
        self._early = early
        # How early the current grant is renewed: `early`, or half its lifetime when it lives shorter (a token
        # living less than `early` would otherwise be renewed on every call).
        self._margin = early
        self._lock = asyncio.Lock()
        self._loaded = False
        self._dead: str | None = None
        self._hint = auth_hint or f"run `syncd auth {connection}` to re-authorise it"
        self.refreshes = 0
        add_secret(refresh_token)

    @property
    def extras(self) -> Mapping[str, str]:
        """Non-secret values that came with the grant (the instance or API domain to call, granted scopes)."""
        return self._grant.extras if self._grant else {}

    async def token(self) -> str:
        """A valid access token, refreshed first if it is missing or about to expire."""
        grant = self._grant
        if grant is not None and self._fresh(grant):
            return grant.access_token
        token, _ = await self._refresh_unless_changed(grant.access_token if grant else None)
        return token

    async def token_rejected(self, rejected: str) -> tuple[str, bool]:
        """The system answered 401 to `rejected`: refresh once (whoever asks first) and return the new token, and
        whether this request refreshed it (False: another caller's refresh, made while this one waited)."""
        return await self._refresh_unless_changed(rejected, force=True)

    def _fresh(self, grant: Grant) -> bool:
        return grant.expires_at is None or grant.expires_at - self._margin > self._clock()

    async def _refresh_unless_changed(self, seen: str | None, force: bool = False) -> tuple[str, bool]:
        """A valid token, and whether this caller refreshed it (decided under the lock: a count of refreshes read
        outside it would take another caller's refresh, finished meanwhile, for this one's)."""
        async with self._lock:
            if self._dead is not None:
                raise AuthError(self._dead, connection=self.connection)
            if not self._loaded:
                await self._load()
            grant = self._grant
            # Another caller refreshed while we waited for the lock: use its token.
            if grant is not None and grant.access_token != seen and self._fresh(grant):
                return grant.access_token, False
            if grant is not None and not force and self._fresh(grant):
                return grant.access_token, False
            return await self._refresh(), True

    async def _load(self) -> None:
        if self._storage is None:
            self._loaded = True
            return
        # Loaded only once this succeeds: a store that cannot be read (a wrong key) must fail every call, never
        # fall through to a refresh whose new grant would be sealed over the stored one.
        stored = await self._storage.load_grant(self.connection)
        self._loaded = True
        if stored is not None:
            self._grant = stored
            self._refresh_token = stored.refresh_token or self._refresh_token
            add_secret(stored.access_token, stored.refresh_token)

    async def _refresh(self) -> str:
        if not self._refresh_token:
            message = f"connection {self.connection!r} has no refresh token: {self._hint}"
            await self._give_up(message)
            raise AuthError(message, connection=self.connection)
        try:
            grant = await self._refresher(self._refresh_token)
        except AuthError as exc:
            message = (
                f"connection {self.connection!r} needs re-authorisation: the system rejected its refresh "
                f"token ({exc.vendor_message}); {self._hint}"
            )
            await self._give_up(message)
            raise AuthError(message, connection=self.connection, vendor_code=exc.vendor_code) from exc
        add_secret(grant.access_token, grant.refresh_token)
        if grant.refresh_token:
            self._refresh_token = grant.refresh_token
        grant = Grant(grant.access_token, grant.expires_at, self._refresh_token, {**self.extras, **grant.extras})
        self._grant = grant
        lifetime = grant.expires_at - self._clock() if grant.expires_at is not None else None
        self._margin = self._early if lifetime is None else max(timedelta(0), min(self._early, lifetime / 2))
        self.refreshes += 1
        if self._storage is not None:
            await self._storage.save_grant(self.connection, grant)
        log.info("token refreshed", connection=self.connection, expires_at=str(grant.expires_at))
        return grant.access_token

    async def _give_up(self, message: str) -> None:
        self._dead = message
        log.error("connection needs re-authorisation", connection=self.connection, reason=message)
        if self._storage is not None:
            await self._storage.mark_needs_reauth(self.connection, message)

    def needs_reauthorisation(self, reason: str) -> None:
        """The store already records that a person must re-authorise this connection: refuse every call, without
        asking the system, until `reauthorised` (so `sync --once` treats it as `run` does)."""
        self._dead = reason or f"connection {self.connection!r} needs re-authorisation: {self._hint}"

    def reauthorised(self, grant: Grant) -> None:
        """A person re-authorised the connection (`syncd auth`): use the new grant from now on."""
        self._dead = None
        self._grant = grant
        self._refresh_token = grant.refresh_token or self._refresh_token
        add_secret(grant.access_token, grant.refresh_token)


async def with_token(
    manager: TokenManager,
    call: Callable[[str], Awaitable[T]],
    is_unauthorised: Callable[[BaseException], bool],
    slot: Callable[[], Awaitable[None]],
) -> T:
    """Run `call(token)` once `slot` (the connection's rate limiter) lets it go; on a 401 refresh (single-flight)
    and run it again, in a slot of its own, with the new token.

    The token is taken after the slot, not before: a call may wait its turn for a minute (a 429's Retry-After),
    and a token taken before that wait can be gone by the time it is sent. Only a 401 to a token this call refreshed
    itself is final (the caller's AuthError: the grant no longer works): a token another call refreshed while this
    one waited may have been replaced or expired since, which proves nothing about the grant."""
    await slot()
    token = await manager.token()
    for _ in range(SENDS_BEFORE_GIVING_UP - 1):
        try:
            return await call(token)
        except Exception as exc:
            if not is_unauthorised(exc):
                raise
        await slot()
        token, refreshed_here = await manager.token_rejected(token)
        if refreshed_here:
            break
    return await call(token)
