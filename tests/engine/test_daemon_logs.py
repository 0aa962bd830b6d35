"""The daemon's log, as an operator tails it: one JSON line per meaningful event. A poll that did something is a
line; a poll that found nothing is none; the libraries' routine lines (APScheduler's per job run, Alembic's per
schema check behind `/readyz`) are not passed on."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from syncd.engine.daemon import Daemon
from syncd.engine.scheduler import did_something
from syncd.logs import configure_logging
from syncd.sandbox.runner import Sandbox
from tests.engine.test_daemon import (  # noqa: F401  (fixtures: clean, http, sandbox)
    clean,
    create_hubspot_contact,
    eventually,
    http,
    sandbox,
    settings_for,
    zoho_customers,
)


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """The daemon's log as JSON lines (as off a terminal) into a buffer; the root logger restored afterwards."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    yield stream
    root.handlers[:], level = saved
    root.setLevel(level)


def read_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    """Every line logged since the last call: each one must be a JSON object."""
    text = stream.getvalue()
    stream.seek(0)
    stream.truncate()
    return [json.loads(line) for line in text.splitlines()]


async def run_once_through(daemon: Daemon, http: aiohttp.ClientSession) -> None:  # noqa: F811
    """Start the daemon, let every polling job run its start-up run, ask `/readyz` a few times, stop."""
    try:
        await daemon.start()
        jobs = len(daemon.scheduler.jobs)
        await eventually(lambda: daemon.scheduler.runs_completed >= jobs, "the start-up polls")
        assert daemon.admin_listener is not None
        for _ in range(3):
            async with http.get(f"{daemon.admin_listener.url}/readyz") as response:
                assert response.status == 200, await response.text()
    finally:
        await daemon.stop()


async def test_a_poll_that_did_something_is_one_line_and_an_idle_one_none(
    tmp_path: Path, clean: Sandbox, http: aiohttp.ClientSession, log_stream: io.StringIO  # noqa: F811
) -> None:
    for email, first in (("Ada.Lovelace@Example.com", "Ada"), ("ada.lovelace@analytical.test", "Ada")):
        await create_hubspot_contact(http, clean, email=email, firstname=first, lastname="Lovelace")
    # Polls every hour: each job runs once at start, so what each run did is its job's last report.
    settings = await settings_for(tmp_path, clean, interval_s=3600, webhooks=False)

    busy = Daemon(settings, inbox_interval_s=0.5, health_interval_s=0.5)
    await run_once_through(busy, http)
    assert len(zoho_customers(clean, "ada.lovelace@example.com")) == 1
    lines = read_lines(log_stream)
    polls = {line["job"]: line for line in lines if line["event"] == "poll done"}
    assert set(polls) == {job for job, report in busy.scheduler.last_reports.items() if did_something(report)}
    customers = polls["poll:hubspot-zohobooks:customer:crm"]
    assert customers["counts"] == {"create": 2} and customers["errors"] == 0
    assert len(polls) == len([line for line in lines if line["event"] == "poll done"])  # one line each

    # Restarted with nothing new: every job polls again, and none of them says anything.
    idle = Daemon(settings, inbox_interval_s=0.5, health_interval_s=0.5)
    await run_once_through(idle, http)
    assert idle.scheduler.runs_completed >= len(idle.scheduler.jobs)
    assert not any(did_something(report) for report in idle.scheduler.last_reports.values())
    quiet = read_lines(log_stream)
    assert [line for line in quiet if "poll" in line["event"]] == []
    assert {line["event"] for line in quiet} >= {"daemon started", "daemon stopped"}

    # Neither run passed on APScheduler's line per job run nor Alembic's two per `/readyz`.
    for line in lines + quiet:
        assert not str(line.get("logger", "")).startswith(("apscheduler", "alembic")), line
        assert not line["event"].startswith(("Added job", "Running job", "Job ", "Context impl", "Will assume"))
    assert len(quiet) < 20, [line["event"] for line in quiet]  # lifecycle lines, however many chores ran
