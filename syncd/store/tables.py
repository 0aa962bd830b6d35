"""SQLModel table definitions; only the repositories in `syncd.store` import these."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlmodel import Field, SQLModel

from syncd.store.columns import UTCDateTime, utcnow


def _when(nullable: bool = False) -> Any:
    """A UTC timestamp field; required ones default to now."""
    if nullable:
        return Field(default=None, sa_type=UTCDateTime(), nullable=True)
    return Field(default_factory=utcnow, sa_type=UTCDateTime(), nullable=False)


class ConnectionRow(SQLModel, table=True):
    """One configured connection to an external system and whether it may be used."""

    __tablename__ = "connection"
    __table_args__ = (
        UniqueConstraint("name", name="uq_connection_name"),
        CheckConstraint("status IN ('ok', 'needs_reauth', 'disabled')", name="ck_connection_status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(nullable=False)
    system: str = Field(nullable=False)
    status: str = Field(default="ok", nullable=False)
    last_error: str | None = Field(default=None, sa_type=Text(), nullable=True)
    updated_at: datetime = _when()


class OAuthTokenRow(SQLModel, table=True):
    """A connection's OAuth tokens; both tokens are Fernet ciphertext, never plain text."""

    __tablename__ = "oauth_token"
    __table_args__ = (UniqueConstraint("connection", name="uq_oauth_token_connection"),)

    id: int | None = Field(default=None, primary_key=True)
    connection: str = Field(nullable=False)
    access_token_enc: str = Field(sa_type=Text(), nullable=False)
    refresh_token_enc: str | None = Field(default=None, sa_type=Text(), nullable=True)
    expires_at: datetime | None = _when(nullable=True)
    # Vendor extras that are not secret: the instance or API domain to call, granted scopes...
    extras: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON(), nullable=False))
    updated_at: datetime = _when()


class LinkRow(SQLModel, table=True):
    """The binder: which CRM record and which accounting record are one, and what both last held."""

    __tablename__ = "link"
    __table_args__ = (
        UniqueConstraint("mapping", "object", "crm_system", "crm_id", name="uq_link_crm"),
        UniqueConstraint("mapping", "object", "acc_system", "acc_id", name="uq_link_acc"),
        UniqueConstraint("mapping", "object", "reference", name="uq_link_reference"),
        CheckConstraint("state IN ('pending', 'linked', 'deleted')", name="ck_link_state"),
        Index("ix_link_state", "state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    mapping: str = Field(nullable=False)
    object: str = Field(nullable=False)
    crm_system: str = Field(nullable=False)
    crm_id: str | None = Field(default=None, nullable=True)
    acc_system: str = Field(nullable=False)
    acc_id: str | None = Field(default=None, nullable=True)
    state: str = Field(default="pending", nullable=False)
    base: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON(), nullable=False))
    reference: str = Field(nullable=False)
    version: int = Field(default=1, nullable=False)
    last_synced_at: datetime | None = _when(nullable=True)
    # Each side's modification stamp when syncd last saw (or wrote) it in step with base; a record read again
    # with the same stamp has not changed, so it is neither re-read in detail nor compared again.
    crm_seen_at: datetime | None = _when(nullable=True)
    acc_seen_at: datetime | None = _when(nullable=True)
    created_at: datetime = _when()
    updated_at: datetime = _when()


class CursorRow(SQLModel, table=True):
    """How far polling of one connection × object has safely got."""

    __tablename__ = "cursor"
    __table_args__ = (UniqueConstraint("connection", "object", name="uq_cursor_connection_object"),)

    id: int | None = Field(default=None, primary_key=True)
    connection: str = Field(nullable=False)
    object: str = Field(nullable=False)
    value: str = Field(sa_type=Text(), nullable=False)
    updated_at: datetime = _when()


class InboxRow(SQLModel, table=True):
    """A webhook event, stored before it is acknowledged and processed after."""

    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("connection", "event_id", name="uq_inbox_connection_event"),
        # The dispatcher's query: unprocessed events in arrival order, skipping those still backing off. Only
        # unprocessed rows are indexed, so the index stays small however long the processed history grows.
        Index(
            "ix_inbox_pending",
            "received_at",
            "id",
            "next_attempt_at",
            sqlite_where=text("processed_at IS NULL"),
            postgresql_where=text("processed_at IS NULL"),
        ),
        # The operators' list of given-up events (few rows); SQLite has no boolean type, hence two spellings.
        Index(
            "ix_inbox_gave_up",
            "processed_at",
            "id",
            sqlite_where=text("gave_up = 1"),
            postgresql_where=text("gave_up"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    connection: str = Field(nullable=False)
    event_id: str = Field(nullable=False)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON(), nullable=False))
    received_at: datetime = _when()
    processed_at: datetime | None = _when(nullable=True)
    attempts: int = Field(default=0, nullable=False)
    last_error: str | None = Field(default=None, sa_type=Text(), nullable=True)
    # When a failed event may be tried again; null for one never tried (or processed).
    next_attempt_at: datetime | None = _when(nullable=True)
    # Set (with processed_at) when retrying stopped: the event left the queue without its change applied. A flag
    # beside processed_at rather than a status column: every "still to do?" reader (the dispatcher, the metrics
    # gauge, the partial index) already asks processed_at IS NULL and stays right unchanged; this only tells
    # the two ways out of the queue apart.
    gave_up: bool = Field(
        default=False, sa_column=Column(Boolean(), nullable=False, default=False, server_default=false())
    )


class ConflictRow(SQLModel, table=True):
    """A field both sides changed differently, parked until someone (or a rule) resolves it."""

    __tablename__ = "conflict"
    __table_args__ = (
        # At most one OPEN conflict per (link, field); resolved ones are history and may repeat.
        Index(
            "uq_conflict_open_field",
            "link_id",
            "field",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
        CheckConstraint("status IN ('open', 'resolved')", name="ck_conflict_status"),
        CheckConstraint(
            "resolution IS NULL OR resolution IN ('crm', 'accounting', 'value')",
            name="ck_conflict_resolution",
        ),
        Index("ix_conflict_status", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    link_id: int = Field(
        sa_column=Column(Integer(), ForeignKey("link.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    field: str = Field(nullable=False)
    base_value: Any = Field(default=None, sa_column=Column(JSON(none_as_null=True), nullable=True))
    crm_value: Any = Field(default=None, sa_column=Column(JSON(none_as_null=True), nullable=True))
    acc_value: Any = Field(default=None, sa_column=Column(JSON(none_as_null=True), nullable=True))
    detected_at: datetime = _when()
    status: str = Field(default="open", nullable=False)
    resolution: str | None = Field(default=None, nullable=True)
    resolved_value: Any = Field(default=None, sa_column=Column(JSON(none_as_null=True), nullable=True))
    resolved_by: str | None = Field(default=None, nullable=True)
    resolved_at: datetime | None = _when(nullable=True)
    # Set once the engine has written the resolved value to both sides.
    applied_at: datetime | None = _when(nullable=True)


class DeadLetterRow(SQLModel, table=True):
    """A record that failed to sync, with the reason, retried on a back-off schedule."""

    __tablename__ = "dead_letter"
    __table_args__ = (
        UniqueConstraint("mapping", "object", "side", "record_id", name="uq_dead_letter_record"),
        CheckConstraint("side IN ('crm', 'accounting')", name="ck_dead_letter_side"),
        Index("ix_dead_letter_next_attempt", "next_attempt_at"),
        Index("ix_dead_letter_counterpart", "mapping", "object", "counterpart_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    connection: str = Field(nullable=False)
    mapping: str = Field(nullable=False)
    object: str = Field(nullable=False)
    side: str = Field(nullable=False)
    record_id: str = Field(nullable=False)
    error: str = Field(sa_type=Text(), nullable=False)
    # What kind of failure it is (validation, transient, authorisation, fatal, waiting), the system's own
    # code and message for a refused write, and the mapped object's rules it failed under.
    error_class: str | None = Field(default=None, nullable=True)
    error_code: str | None = Field(default=None, nullable=True)
    error_message: str | None = Field(default=None, sa_type=Text(), nullable=True)
    mapping_fingerprint: str | None = Field(default=None, nullable=True)
    # A refused pair's other record: re-read unchanged it stays held too, changed it frees the pair.
    counterpart_id: str | None = Field(default=None, nullable=True)
    attempts: int = Field(default=1, nullable=False)
    next_attempt_at: datetime | None = _when(nullable=True)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON(), nullable=False))
    created_at: datetime = _when()
    updated_at: datetime = _when()


class AuditRow(SQLModel, table=True):
    """One write syncd made to a system: what the fields were, what they became, and why."""

    __tablename__ = "audit"
    __table_args__ = (
        Index("ix_audit_record", "system", "object", "record_id"),
        Index("ix_audit_at", "at"),
        Index("ix_audit_status", "status"),
        CheckConstraint(
            "status IN ('pending', 'done', 'recovered', 'unconfirmed')", name="ck_audit_status"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _when()
    system: str = Field(nullable=False)
    object: str = Field(nullable=False)
    record_id: str = Field(nullable=False)
    fields_before: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON(), nullable=False))
    fields_after: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON(), nullable=False))
    cause: str = Field(sa_type=Text(), nullable=False)
    # A write is journalled `pending` before it is sent and completed (`done`) with the commit that moves its
    # link's base; one a process left pending when it died is `recovered` (the target holds what was sent) or
    # `unconfirmed` (it does not) by the next pass.
    status: str = Field(default="done", sa_column=Column(String(), nullable=False, server_default="done"))
    link_id: int | None = Field(default=None, nullable=True)
    # The base fields the write carries, {field: [base before, value written]} (encoded canonical values):
    # what a recovery moves the link's base to, field by field, where the target holds the value.
    base_change: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON(), nullable=True))
    # The writer that journalled a pending row (syncd/store/owners.py): a later pass resolves the row only once
    # that writer is gone. None for rows written before owners existed (their writer is gone).
    owner: str | None = Field(default=None, nullable=True)


class MappingActivationRow(SQLModel, table=True):
    """When a mapping was first used: the default `sync_from`, before which records are history."""

    __tablename__ = "mapping_activation"
    __table_args__ = (UniqueConstraint("mapping", name="uq_mapping_activation_mapping"),)

    id: int | None = Field(default=None, primary_key=True)
    mapping: str = Field(nullable=False)
    activated_at: datetime = _when()


# Core views of the same tables, for INSERT ... ON CONFLICT and guarded UPDATEs that bypass the ORM.
AUDIT = SQLModel.metadata.tables["audit"]
CONFLICT = SQLModel.metadata.tables["conflict"]
CONNECTION = SQLModel.metadata.tables["connection"]
CURSOR = SQLModel.metadata.tables["cursor"]
DEAD_LETTER = SQLModel.metadata.tables["dead_letter"]
INBOX = SQLModel.metadata.tables["inbox"]
LINK = SQLModel.metadata.tables["link"]
MAPPING_ACTIVATION = SQLModel.metadata.tables["mapping_activation"]
OAUTH_TOKEN = SQLModel.metadata.tables["oauth_token"]

__all__ = [
    "AUDIT",
    "CONFLICT",
    "CONNECTION",
    "CURSOR",
    "DEAD_LETTER",
    "INBOX",
    "LINK",
    "MAPPING_ACTIVATION",
    "OAUTH_TOKEN",
    "AuditRow",
    "ConflictRow",
    "ConnectionRow",
    "CursorRow",
    "DeadLetterRow",
    "InboxRow",
    "LinkRow",
    "MappingActivationRow",
    "OAuthTokenRow",
    "SQLModel",
]
