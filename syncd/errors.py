"""One error hierarchy for syncd: configuration, mapping, store and connector errors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class SyncdError(Exception):
    """Base of every error syncd raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file: where it is and what was expected."""

    file: str
    key_path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        key = f" {self.key_path}:" if self.key_path else ""
        return f"{where}:{key} {self.message}"


class ProblemsError(SyncdError):
    """Several problems found together; all of them are reported at once."""

    kind = "input"

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        count = len(self.problems)
        head = f"{count} {self.kind} problem{'s' if count != 1 else ''}"
        super().__init__(head + ":\n" + "\n".join(f"  {p}" for p in self.problems))


class ConfigError(ProblemsError):
    """The configuration file is unusable; every problem is listed."""

    kind = "configuration"


class MappingError(ProblemsError):
    """One or more mapping files are unusable; every problem is listed."""

    kind = "mapping"


class StoreError(SyncdError):
    """The store could not do what was asked."""


class ConnectorError(SyncdError):
    """A call to an external system failed; carries the vendor's message and the record concerned."""

    def __init__(
        self,
        message: str,
        *,
        connection: str = "",
        status: int | None = None,
        vendor_code: str | None = None,
        record: str | None = None,
    ) -> None:
        self.connection = connection
        self.status = status
        self.vendor_code = vendor_code
        self.record = record
        self.vendor_message = message
        parts = [p for p in (connection, record) if p]
        prefix = f"[{' '.join(parts)}] " if parts else ""
        code = f" ({vendor_code})" if vendor_code else ""
        super().__init__(f"{prefix}{message}{code}")


class RetryableError(ConnectorError):
    """A transient failure (5xx, timeout, reset, 429): try again after `retry_after` seconds if given."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)  # type: ignore[arg-type]


class RateLimitedError(RetryableError):
    """The system refused the call because a rate limit or quota was spent."""


class BudgetSpentError(RateLimitedError):
    """The connection's share of the system's daily quota is spent: every call of the connection waits until
    the day resets (`retry_after`). Never a record's failure: connectors let it through to end the pass, so
    that cursors stay where the work stopped."""


class UnknownOutcomeError(RetryableError):
    """A write may or may not have happened (timeout after sending): look it up before trying again."""


class FatalError(ConnectorError):
    """A failure that retrying cannot fix for this connection."""


class AuthError(FatalError):
    """The grant is invalid or revoked: the connection needs re-authorisation."""


class SkippableError(ConnectorError):
    """The system rejected this one record (validation, not found); other records go on."""


class NotFoundError(SkippableError):
    """The record does not exist (or no longer exists) on the system."""


class DuplicateError(SkippableError):
    """The system refused a create because the record already exists; `existing_id` names it if known."""

    def __init__(self, message: str, *, existing_id: str | None = None, **kw: object) -> None:
        self.existing_id = existing_id
        super().__init__(message, **kw)  # type: ignore[arg-type]


class NameTakenError(SkippableError):
    """The system refused a write because another record already holds this value of a field it keeps unique,
    such as an accounting customer's display name: a different record, so never one to link to; the mapping's
    unique-name rule may try another name. `field` is the system's field, `holder_id` the record holding it."""

    def __init__(self, message: str, *, field: str, value: str, holder_id: str | None = None, **kw: object) -> None:
        self.field = field
        self.value = value
        self.holder_id = holder_id
        super().__init__(message, **kw)  # type: ignore[arg-type]


class SetupError(SyncdError):
    """The installation is set up wrongly in a way no retry fixes (e.g. a token key that does not fit the
    store): reported before anything is written, with exit status 2 like a configuration error."""
