"""Why a record is parked and what happens to it next: a write the system refused is classified once here
(validation → wait for a change, transient → back off as told, authorisation → pause the connection), and the
mapping's fingerprint tells a parked record that the rules it failed under have changed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from syncd.connectors.base import Connector, Record
from syncd.engine.plan import ERROR_KIND, PlannedAction
from syncd.errors import AuthError, ConnectorError, RetryableError, SkippableError
from syncd.mapping.compiled import CompiledMapping
from syncd.store import DeadLetter

#: Why a record is parked: the system refused it as it is (validation), refused for now (transient), refused
#: our grant (authorisation), refused for a reason retrying may fix later (fatal); or the engine holds it
#: until a dependency is synced (waiting).
ErrorClass = Literal["validation", "transient", "authorisation", "fatal", "waiting"]


@dataclass(frozen=True)
class Refusal:
    """A write a system refused: its class, the system's code and message, and how long it asked us to wait."""

    error_class: ErrorClass
    system: str
    connection: str
    code: str | None
    message: str
    retry_after: float | None = None

    @classmethod
    def of(cls, error: ConnectorError, connector: Connector) -> Refusal:
        """Classify a connector's typed error (translated at its boundary) into what the engine does next."""
        error_class: ErrorClass
        if isinstance(error, AuthError):
            error_class = "authorisation"
        elif isinstance(error, RetryableError):
            error_class = "transient"
        elif isinstance(error, SkippableError):
            error_class = "validation"
        else:
            error_class = "fatal"
        code = error.vendor_code or (str(error.status) if error.status is not None else None)
        retry_after = error.retry_after if isinstance(error, RetryableError) else None
        connection = error.connection or connector.name
        return cls(error_class, connector.system, connection, code, error.vendor_message, retry_after)

    def next_attempt(self, now: datetime, default_delay: timedelta) -> datetime | None:
        """When the record is tried again: never by itself after a validation error (it waits for a change),
        after the system's Retry-After for a transient one, after the usual delay otherwise."""
        if self.error_class == "validation":
            return None
        if self.error_class == "transient" and self.retry_after is not None:
            return now + timedelta(seconds=self.retry_after)
        return now + default_delay

    def reason(self, what: str) -> str:
        """The report's and the dead letter's text: who refused what, the system's message and code, and
        what happens next."""
        code = f" (code {self.code})" if self.code else ""
        then = {
            "validation": "parked until the record, its counterpart or the mapping changes",
            "transient": (
                f"retried after {self.retry_after:g} s as the system asked"
                if self.retry_after is not None
                else "retried later"
            ),
            "authorisation": f"connection {self.connection} paused until it is authorised again",
            "fatal": "retried later",
            "waiting": "retried later",
        }[self.error_class]
        return f"{self.system} refused {what}: {self.message}{code}; {then}"


def as_error(planned: PlannedAction, reason: str) -> PlannedAction:
    """A planned write as the report shows it once the system refused it: an error, with the reason."""
    return replace(planned, kind=ERROR_KIND, reason=reason)


def engine_class(retry: bool) -> ErrorClass:
    """The class of a record the engine parks for its own reasons: a missing dependency is retried later
    (waiting), a record that cannot be synced as it is waits for a change (validation)."""
    return "waiting" if retry else "validation"


def mapping_fingerprint(mapping: CompiledMapping, obj: str) -> str:
    """A digest of one mapped object's rules as the file states them (not where the file lies): a parked
    record is tried again once they change."""
    rules = mapping.spec.objects[obj].model_dump(mode="json")
    text = json.dumps(rules, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def holding(
    letter: DeadLetter, record: Record, fingerprint: str, now: datetime
) -> str | None:
    """Why `letter` still holds `record` back (re-read, e.g. by the overlap window), or None when it is free
    to go: a record refused as it is waits until it or the mapping changes; one refused for now (or whose
    connection was refused) waits out its back-off whatever happens meanwhile. `record` is the letter's own
    record or, for a refused pair, its other record: a change on either side frees the pair."""
    whose = "" if letter.record_id == record.id else f"its pair with {letter.record_id} is "
    if letter.next_attempt_at is None:
        if record.modified_at > letter.updated_at:
            return None
        if letter.mapping_fingerprint is not None and letter.mapping_fingerprint != fingerprint:
            return None
        return f"{whose}held back: {letter.error}"
    if letter.error_class in ("transient", "authorisation") and letter.next_attempt_at > now:
        until = letter.next_attempt_at.isoformat(timespec="seconds")
        return f"{whose}held back until {until}: {letter.error}"
    return None


def held_back(
    letters: Mapping[str, DeadLetter], records: Mapping[str, Record], fingerprint: str, now: datetime
) -> dict[str, str]:
    """Of the records with a dead letter, those still held back, with the reason, by record id."""
    reasons = {i: holding(letter, records[i], fingerprint, now) for i, letter in letters.items()}
    return {i: reason for i, reason in reasons.items() if reason is not None}
