"""Logging: one structured line per event, secrets redacted wherever they appear."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from syncd.logs import REDACTED, add_secret, configure_logging, get_logger


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    yield stream
    root.handlers[:], level = saved
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_with_context(log_stream: io.StringIO) -> None:
    configure_logging("info", "json", stream=log_stream)
    get_logger("syncd.test").info("batch_written", connection="hubspot", records=100)
    (line,) = lines(log_stream)
    assert line["event"] == "batch_written"
    assert line["connection"] == "hubspot" and line["records"] == 100
    assert line["level"] == "info" and "timestamp" in line


def test_known_secrets_never_reach_the_output(log_stream: io.StringIO) -> None:
    configure_logging("debug", "json", stream=log_stream, secrets=["config-secret-123"])
    add_secret("fresh-access-token-456")
    log = get_logger("syncd.test")
    log.info("token refreshed", access_token="fresh-access-token-456", note="used config-secret-123 to refresh")
    log.info("request", headers={"Authorization": "Zoho-oauthtoken fresh-access-token-456", "Accept": "json"})
    log.warning("vendor said: bad token fresh-access-token-456 for client_secret=unregistered-789")
    logging.getLogger("aiohttp.client").error("GET /x?refresh_token=also-secret-000 failed: config-secret-123")
    try:
        raise RuntimeError("boom with fresh-access-token-456")
    except RuntimeError:
        log.exception("call_failed")
    output = log_stream.getvalue()
    for secret in ("config-secret-123", "fresh-access-token-456", "unregistered-789", "also-secret-000"):
        assert secret not in output
    parsed = lines(log_stream)
    assert len(parsed) == 5
    assert parsed[0]["access_token"] == REDACTED
    assert parsed[1]["headers"] == {"Authorization": REDACTED, "Accept": "json"}
    assert parsed[3]["logger"] == "aiohttp.client"
    assert "RuntimeError" in str(parsed[4]["exception"])


def test_console_format_is_readable(log_stream: io.StringIO) -> None:
    configure_logging("info", "console", stream=log_stream)
    get_logger("syncd.test").info("started", port=8080)
    text = log_stream.getvalue()
    assert "started" in text and "port=8080" in text and not text.startswith("{")


def test_level_filters(log_stream: io.StringIO) -> None:
    configure_logging("warning", "json", stream=log_stream)
    get_logger("syncd.test").info("quiet")
    get_logger("syncd.test").warning("loud")
    assert [line["event"] for line in lines(log_stream)] == ["loud"]
