"""Structured logging: JSON lines off a terminal, readable lines on one, secrets always redacted."""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

REDACTED = "[redacted]"

# Keys whose values are secret whatever they hold.
_SENSITIVE_KEY = re.compile(
    r"(secret|password|passwd|token|authorization|api[_-]?key|cookie|signature|code_verifier)", re.I
)
# Credentials that can appear inside free text (URLs, headers, vendor messages).
_INLINE_SECRETS = (
    # `oauthtoken` also finds a vendor's `<name>-oauthtoken` scheme, whose prefix is kept as it is.
    re.compile(r"(?i)(bearer|oauthtoken)\s+[A-Za-z0-9._~+/=\-]+"),
    re.compile(r"(?i)((?:access|refresh)_token|client_secret|code)=([^&\s\"']+)"),
)
_MIN_SECRET_LEN = 6
# Libraries whose INFO lines are routine, not events: APScheduler says "Added job", "Running job" and "executed
# successfully" for every poll, Alembic "Context impl" and "Will assume ..." for every schema check (each
# `/readyz`). Their warnings and errors still come through; at level debug everything does.
_ROUTINE_LOGGERS = ("apscheduler", "alembic")


class SecretRegistry:
    """The exact secret values known to this process (config secrets, tokens), to scrub from any log text."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()
        self._pattern: re.Pattern[str] | None = None

    def add(self, *values: str | None) -> None:
        """Remember values to redact; short values are ignored so ordinary words are not mangled."""
        with self._lock:
            for value in values:
                if value and len(value) >= _MIN_SECRET_LEN:
                    self._values.add(value)
            ordered = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def scrub(self, text: str) -> str:
        """Replace every known secret and inline credential in `text`."""
        pattern = self._pattern
        if pattern is not None:
            text = pattern.sub(REDACTED, text)
        text = _INLINE_SECRETS[0].sub(lambda m: f"{m.group(1)} {REDACTED}", text)
        return _INLINE_SECRETS[1].sub(lambda m: f"{m.group(1)}={REDACTED}", text)


SECRETS = SecretRegistry()


def add_secret(*values: str | None) -> None:
    """Register secret values (e.g. a token just obtained) so they never reach a log line."""
    SECRETS.add(*values)


def _redact_value(key: str, value: Any) -> Any:
    if _SENSITIVE_KEY.search(key) and value not in (None, "", 0):
        return REDACTED
    if isinstance(value, str):
        return SECRETS.scrub(value)
    if isinstance(value, dict):
        return {str(k): _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(key, v) for v in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return SECRETS.scrub(str(value))


def redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: blank sensitive keys and scrub known secrets from every value."""
    for key in list(event):
        if key in ("event",):
            event[key] = SECRETS.scrub(str(event[key]))
        elif key not in ("level", "timestamp", "logger"):
            event[key] = _redact_value(key, event[key])
    return event


def configure_logging(
    level: str = "info",
    fmt: str = "auto",
    stream: TextIO | None = None,
    secrets: Iterable[str] = (),
) -> None:
    """Route syncd's and libraries' logs through one redacting pipeline to `stream` (stderr by default)."""
    out = stream if stream is not None else sys.stderr
    add_secret(*secrets)
    as_json = fmt == "json" or (fmt == "auto" and not (hasattr(out, "isatty") and out.isatty()))
    renderer: Any = (
        structlog.processors.JSONRenderer(sort_keys=False)
        if as_json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in _ROUTINE_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if level == "debug" else logging.WARNING)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A logger for one part of syncd; log one line per meaningful event with key=value context."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
