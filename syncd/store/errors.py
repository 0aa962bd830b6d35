"""Typed errors raised by the store; all derive from the shared `syncd.errors.StoreError`."""

from __future__ import annotations

from syncd.errors import SetupError, StoreError

__all__ = [
    "SchemaOutdatedError",
    "StaleVersionError",
    "StoreConflictError",
    "StoreError",
    "StoreKeyError",
    "StoreNotFoundError",
]


class StoreConflictError(StoreError):
    """A write would break a unique rule (e.g. a second link for one record)."""


class StaleVersionError(StoreConflictError):
    """An optimistic write lost: the row changed since the caller read it; re-read and try again."""


class StoreNotFoundError(StoreError):
    """The row the caller named does not exist."""


class StoreKeyError(StoreError, SetupError):
    """The token encryption key is missing, malformed, or not the one the tokens were saved with."""


class SchemaOutdatedError(StoreError):
    """The database schema is behind (or ahead of) this version of syncd."""
