"""The typed store: SQLModel tables and the only code that touches them."""

from __future__ import annotations

from syncd.store.activations import ActivationStore
from syncd.store.audit import AuditEntry, AuditLog
from syncd.store.conflicts import Conflict, ConflictStatus, ConflictStore, Resolution
from syncd.store.connections import ConnectionState, ConnectionStatus, ConnectionStore
from syncd.store.cursors import CursorStore
from syncd.store.database import Database, normalise_url
from syncd.store.deadletters import DeadLetter, DeadLetterStore
from syncd.store.errors import (
    SchemaOutdatedError,
    StaleVersionError,
    StoreConflictError,
    StoreError,
    StoreKeyError,
    StoreNotFoundError,
)
from syncd.store.inbox import InboxEvent, InboxStore
from syncd.store.journal import JournalEntry, JournalOwner, PendingWrite, WriteJournal
from syncd.store.links import Link, LinkState, LinkStore, Side
from syncd.store.mapping_names import LinkOwner, MappingNames, RenameCounts
from syncd.store.schema import SchemaState, check_schema, prepare_schema, upgrade, upgrade_database
from syncd.store.tokens import StoredToken, TokenVault

__all__ = [
    "ActivationStore",
    "AuditEntry",
    "AuditLog",
    "Conflict",
    "ConflictStatus",
    "ConflictStore",
    "ConnectionState",
    "ConnectionStatus",
    "ConnectionStore",
    "CursorStore",
    "Database",
    "DeadLetter",
    "DeadLetterStore",
    "InboxEvent",
    "InboxStore",
    "JournalEntry",
    "JournalOwner",
    "Link",
    "LinkOwner",
    "LinkState",
    "LinkStore",
    "MappingNames",
    "PendingWrite",
    "RenameCounts",
    "Resolution",
    "SchemaOutdatedError",
    "SchemaState",
    "Side",
    "StaleVersionError",
    "StoreConflictError",
    "StoreError",
    "StoreKeyError",
    "StoreNotFoundError",
    "StoredToken",
    "TokenVault",
    "WriteJournal",
    "check_schema",
    "normalise_url",
    "prepare_schema",
    "upgrade",
    "upgrade_database",
]
