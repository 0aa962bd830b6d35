"""The daemon against the sandbox with the real connectors: webhooks into the inbox, scheduled polling,
duplicate deliveries, a dead grant stopping only its own jobs, and `syncd run` as a process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import tomli_w
from cryptography.fernet import Fernet
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from structlog.testing import capture_logs

from syncd.connectors.base import ChangeEvent
from syncd.connectors.storage import VaultTokenStorage
from syncd.connectors.tokens import Grant
from syncd.engine.daemon import Daemon
from syncd.mapping.loader import SHIPPED_MAPPINGS_DIR
from syncd.sandbox.runner import Sandbox
from syncd.settings import Settings, load_settings
from syncd.store import ConnectionStore, Database, InboxStore, TokenVault
from syncd.store.columns import utcnow
from syncd.store.inbox import InboxRetryPolicy
from syncd.store.schema import upgrade
from syncd.web.events import event_payload

DEADLINE_S = 20.0
FAST_ZOHO = {"window_s": 1, "window_max": 1000}


async def eventually(condition: Callable[[], Any], what: str, timeout: float = DEADLINE_S) -> Any:
    """Poll `condition` (sync or async) until it is truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.fixture(scope="module")
async def sandbox(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Sandbox]:
    """The three simulators on free loopback ports for this module."""
    async with Sandbox.running(workdir=tmp_path_factory.mktemp("daemon-sandbox")) as running:
        yield running


@pytest.fixture
def clean(sandbox: Sandbox) -> Sandbox:
    """The sandbox emptied, faults off, grants live, no webhook targets; Zoho's budget raised from 100 a
    minute (which the connector spends evenly, 0.6 s a call) so that a test takes seconds."""
    sandbox.restore_defaults()
    sandbox.zohobooks.apply_limits(FAST_ZOHO)
    return sandbox


def config_dict(tmp_path: Path, sandbox: Sandbox, *, interval_s: float, webhooks: bool,
                salesforce: bool = False, hubspot_app: bool = False) -> dict[str, Any]:
    """A config on the sandbox: HubSpot ↔ Zoho Books (and Salesforce ↔ Zoho Books), listeners on port 0;
    `hubspot_app` adds the app id and developer API key with which the daemon registers HubSpot's webhooks."""
    hub, zoho = sandbox.descriptor["hubspot"], sandbox.descriptor["zohobooks"]
    mappings = [str(SHIPPED_MAPPINGS_DIR / "hubspot-zohobooks.toml")]
    connections: dict[str, Any] = {
        "hub": {"system": "hubspot", **{k: hub[k] for k in ("base_url", "client_id", "client_secret",
                                                            "refresh_token", "app_secret")}},
        "books": {"system": "zohobooks", **{k: zoho[k] for k in ("base_url", "accounts_url", "client_id",
                                                                "client_secret", "refresh_token",
                                                                "organization_id", "webhook_secret")},
                  "rate_limit": FAST_ZOHO},
    }
    if hubspot_app:
        connections["hub"].update(app_id=int(hub["app_id"]), developer_api_key=hub["developer_api_key"])
    if salesforce:
        sf = sandbox.descriptor["salesforce"]
        mappings.append(str(SHIPPED_MAPPINGS_DIR / "salesforce-zohobooks.toml"))
        connections["sf"] = {"system": "salesforce", **{k: sf[k] for k in (
            "base_url", "instance_url", "client_id", "client_secret", "refresh_token", "ca_cert")}}
    return {
        "store": {"url": f"sqlite:///{tmp_path / 'syncd.db'}"},
        "security": {"token_key": Fernet.generate_key().decode()},
        "logging": {"format": "json"},
        "polling": {"interval_s": interval_s, "overlap_s": 5},
        "webhooks": {"enabled": webhooks, "host": "127.0.0.1", "port": 0},
        "admin": {"enabled": True, "host": "127.0.0.1", "port": 0},
        "mappings": {"active": mappings},
        "connections": connections,
    }


async def settings_for(tmp_path: Path, sandbox: Sandbox, **options: Any) -> Settings:
    """Write the config, migrate its store and load it as `syncd run` would."""
    path = tmp_path / "syncd.toml"
    path.write_bytes(tomli_w.dumps(config_dict(tmp_path, sandbox, **options)).encode())
    await upgrade(f"sqlite:///{tmp_path / 'syncd.db'}")
    return load_settings(path)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain HTTP client, as a person using the systems' APIs would have."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False), trust_env=False) as session:
        yield session


async def hubspot_token(http: aiohttp.ClientSession, sandbox: Sandbox) -> str:
    """An access token for the HubSpot sandbox from its OAuth endpoint."""
    hub = sandbox.descriptor["hubspot"]
    form = {"grant_type": "refresh_token", "client_id": hub["client_id"], "client_secret": hub["client_secret"],
            "refresh_token": hub["refresh_token"]}
    async with http.post(f"{hub['base_url']}/oauth/v1/token", data=form) as response:
        response.raise_for_status()
        return str((await response.json())["access_token"])


async def create_hubspot_contact(http: aiohttp.ClientSession, sandbox: Sandbox, **properties: str) -> str:
    """Create a contact through HubSpot's API, as someone working in HubSpot would; returns its id."""
    token = await hubspot_token(http, sandbox)
    async with http.post(f"{sandbox.descriptor['hubspot']['base_url']}/crm/v3/objects/contacts",
                         json={"properties": properties}, headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 201, await r.text()
        return str((await r.json())["id"])


async def update_hubspot_contact(http: aiohttp.ClientSession, sandbox: Sandbox, contact_id: str,
                                 **properties: str) -> None:
    """Edit a contact through HubSpot's API."""
    token = await hubspot_token(http, sandbox)
    async with http.patch(f"{sandbox.descriptor['hubspot']['base_url']}/crm/v3/objects/contacts/{contact_id}",
                          json={"properties": properties}, headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 200, await r.text()


def zoho_customers(sandbox: Sandbox, email: str) -> list[dict[str, Any]]:
    """Live Zoho Books customers whose primary contact has `email`."""
    return [c for c in sandbox.zohobooks.records("contacts") or []
            if c["email"] == email and not c["deleted"] and c["contact_type"] == "customer"]


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Callable[[Settings], Any]]:
    """Starts daemons for a test and always stops them."""
    daemons: list[Daemon] = []

    async def start(settings: Settings, **options: Any) -> Daemon:
        daemon = Daemon(settings, **{"inbox_interval_s": 0.5, "health_interval_s": 0.5, **options})
        daemons.append(daemon)
        await daemon.start()
        return daemon

    yield start
    for daemon in daemons:
        await daemon.stop()


async def settled_start(daemon: Daemon) -> int:
    """Wait until every polling job ran its catch-up run at start and the webhooks are registered; returns the
    runs so far."""
    jobs = len(daemon.scheduler.jobs)
    await eventually(lambda: daemon.scheduler.runs_completed >= jobs, "the start-up polls")
    await asyncio.wait_for(daemon.webhooks_registered(), DEADLINE_S)
    return daemon.scheduler.runs_completed


async def test_a_hubspot_contact_reaches_zoho_through_the_webhook_before_any_poll(
    tmp_path: Path, clean: Sandbox, http: aiohttp.ClientSession, running: Callable[[Settings], Any]
) -> None:
    daemon: Daemon = await running(await settings_for(tmp_path, clean, interval_s=3600, webhooks=True))
    polls = await settled_start(daemon)
    assert daemon.webhook_listener is not None
    clean.hubspot.set_webhook_targets([daemon.webhook_listener.url + "/webhooks/hub"])

    contact_id = await create_hubspot_contact(http, clean, email="ada@example.com", firstname="Ada",
                                              lastname="Lovelace")
    [customer] = await eventually(lambda: zoho_customers(clean, "ada@example.com"), "the Zoho customer")
    assert customer["first_name"] == "Ada" and customer["last_name"] == "Lovelace"

    # An edit travels the same way; the daemon's own write to Zoho echoes back as a Zoho webhook and is
    # recognised as no change.
    await update_hubspot_contact(http, clean, contact_id, firstname="Augusta")
    await eventually(lambda: [c for c in zoho_customers(clean, "ada@example.com") if c["first_name"] == "Augusta"],
                     "the edit in Zoho")
    assert daemon.scheduler.runs_completed == polls, "a poll ran: the change did not come by webhook alone"
    assert len(zoho_customers(clean, "ada@example.com")) == 1
    # What an operator's scrape shows: one create and one update, both brought by webhooks.
    assert daemon.admin_listener is not None
    async with http.get(daemon.admin_listener.url + "/metrics") as r:
        scraped = await r.text()
    writes = {
        (sample.labels["kind"], sample.labels["via"]): sample.value
        for family in text_string_to_metric_families(scraped)
        for sample in family.samples
        if sample.name == "syncd_sync_actions_total" and sample.labels["kind"] in ("create", "update")
    }
    assert writes == {("create", "webhook"): 1.0, ("update", "webhook"): 1.0}


async def test_hubspot_webhooks_registered_by_the_daemon_bring_a_contact_before_any_poll(
    tmp_path: Path, clean: Sandbox, http: aiohttp.ClientSession, running: Callable[[Settings], Any]
) -> None:
    # Nothing points the sandbox at the daemon by hand: with the app id and developer key configured, the
    # daemon sets the app's target URL and subscriptions itself, through HubSpot's Webhooks API, in the
    # background once it has started (its log says when they are in place).
    with capture_logs() as logs:
        daemon: Daemon = await running(await settings_for(tmp_path, clean, interval_s=3600, webhooks=True,
                                                          hubspot_app=True))
        polls = await settled_start(daemon)
        await eventually(lambda: any(e["event"] == "webhooks registered" and e.get("connection") == "hub"
                                     for e in logs), "the HubSpot webhook registration")
    assert daemon.webhook_listener is not None
    hub = clean.descriptor["hubspot"]
    developer = {"hapikey": hub["developer_api_key"]}
    async with http.get(f"{hub['base_url']}/webhooks/v3/{hub['app_id']}/settings", params=developer) as r:
        assert r.status == 200 and (await r.json())["targetUrl"] == daemon.webhook_listener.url + "/webhooks/hub"
    async with http.get(f"{hub['base_url']}/webhooks/v3/{hub['app_id']}/subscriptions", params=developer) as r:
        subscribed = {(s["eventType"], s.get("propertyName")) for s in (await r.json())["results"]}
    # Only what the shipped mapping reads: contacts and deals, not companies; mapped properties, not all.
    assert ("contact.creation", None) in subscribed and ("contact.propertyChange", "email") in subscribed
    assert not any(event.startswith("company.") for event, _ in subscribed)
    assert ("contact.propertyChange", "lastmodifieddate") not in subscribed

    await create_hubspot_contact(http, clean, email="barbara@example.com", firstname="Barbara", lastname="Liskov")
    [customer] = await eventually(lambda: zoho_customers(clean, "barbara@example.com"), "the Zoho customer")
    assert customer["first_name"] == "Barbara" and customer["last_name"] == "Liskov"
    assert daemon.scheduler.runs_completed == polls, "a poll ran: the change did not come by webhook alone"


async def test_duplicate_deliveries_change_nothing_more(
    tmp_path: Path, clean: Sandbox, http: aiohttp.ClientSession, running: Callable[[Settings], Any]
) -> None:
    async with http.post(f"{clean.control_url('hubspot')}/_sandbox/faults", json={"duplicate_webhooks": 1.0}) as r:
        r.raise_for_status()
    settings = await settings_for(tmp_path, clean, interval_s=3600, webhooks=True)
    daemon: Daemon = await running(settings)
    await settled_start(daemon)
    assert daemon.webhook_listener is not None
    clean.hubspot.set_webhook_targets([daemon.webhook_listener.url + "/webhooks/hub"])
    # Zoho Books' webhooks come from a workflow rule an admin makes; here the sandbox's side sets them.
    clean.zohobooks.set_webhook_targets([daemon.webhook_listener.url + "/webhooks/books"])

    await create_hubspot_contact(http, clean, email="grace@example.com", firstname="Grace", lastname="Hopper")
    await eventually(lambda: zoho_customers(clean, "grace@example.com"), "the Zoho customer")
    await clean.hubspot.drain_webhooks(10)
    await clean.zohobooks.drain_webhooks(10)
    await eventually(lambda: (daemon.metrics.registry.get_sample_value(
        "syncd_webhooks_received_total", {"connection": "hub", "outcome": "duplicate"}) or 0) >= 1,
        "a duplicate delivery answered as such")

    db = await Database.open(settings.store.url)
    try:
        await eventually(lambda: _no_pending(db), "the inbox to empty")
    finally:
        await db.close()
    assert len(zoho_customers(clean, "grace@example.com")) == 1
    # Every delivery came twice, and our create echoed back from Zoho: still exactly one write to Zoho.
    writes = {k: n for k, n in clean.zohobooks.stats.requests.items()
              if not k.startswith(("GET ", "POST /_sandbox", "POST /oauth"))}
    assert sum(writes.values()) == 1, writes
    assert clean.zohobooks.stats.webhooks_sent >= 1


async def _no_pending(db: Database) -> bool:
    return not await InboxStore(db).pending()


async def test_a_failed_webhook_event_stays_pending_and_is_applied_after_reauthorisation(
    tmp_path: Path, clean: Sandbox, http: aiohttp.ClientSession, running: Callable[[Settings], Any]
) -> None:
    settings = await settings_for(tmp_path, clean, interval_s=3600, webhooks=True)
    # A failed event would wait an hour: only re-authorising can bring it within the test's deadline.
    hour = InboxRetryPolicy(first_delay_s=3600, max_delay_s=3600)
    daemon: Daemon = await running(settings, inbox_retry=hour)
    await settled_start(daemon)
    assert daemon.webhook_listener is not None
    clean.hubspot.set_webhook_targets([daemon.webhook_listener.url + "/webhooks/hub"])
    clean.zohobooks.revoke_tokens()  # the Zoho grant dies while the daemon holds a token

    await create_hubspot_contact(http, clean, email="mary@example.com", firstname="Mary", lastname="Jackson")
    await eventually(lambda: "books" in daemon.unusable_connections, "the dead Zoho grant to be noticed")
    db = await Database.open(settings.store.url)
    try:
        # Stored, not processed, and backing off (so not due now: look an hour ahead).
        [event] = await eventually(lambda: InboxStore(db).pending(now=utcnow() + timedelta(hours=1)),
                                   "the event to stay pending")
        assert event.attempts >= 1 and "re-authorisation" in (event.last_error or "")
        assert daemon.scheduler.paused == set(daemon.scheduler.jobs)  # every job of the mapping uses Zoho

        for tokens in clean.zohobooks.token_stores:
            tokens.reinstate()
        await store_new_grant(settings, "books", "zohobooks", clean.descriptor["zohobooks"])
        # Re-authorising makes the backed-off event due at once (it does not sit out its back-off).
        await eventually(lambda: zoho_customers(clean, "mary@example.com"), "the Zoho customer")
        await eventually(lambda: _no_pending(db), "the inbox to empty")
    finally:
        await db.close()


async def test_with_webhooks_off_polling_alone_brings_the_change(
    tmp_path: Path, clean: Sandbox, http: aiohttp.ClientSession, running: Callable[[Settings], Any]
) -> None:
    daemon: Daemon = await running(await settings_for(tmp_path, clean, interval_s=0.5, webhooks=False))
    assert daemon.webhook_listener is None
    polls = await settled_start(daemon)

    await create_hubspot_contact(http, clean, email="alan@example.com", firstname="Alan", lastname="Turing")
    await eventually(lambda: zoho_customers(clean, "alan@example.com"), "the Zoho customer")
    # The write lands before its run is counted as finished: wait for the count an operator scrapes.
    await eventually(
        lambda: daemon.metrics.value("syncd_sync_actions_total", mapping="hubspot-zohobooks", object="customer",
                                     kind="create", via="poll") == 1,
        "the polling run that created it to be counted",
    )
    assert daemon.scheduler.runs_completed > polls


async def test_a_create_zoho_refuses_is_counted_as_an_error_once_not_as_a_create(
    tmp_path: Path, clean: Sandbox, http: aiohttp.ClientSession, running: Callable[[Settings], Any]
) -> None:
    daemon: Daemon = await running(await settings_for(tmp_path, clean, interval_s=0.5, webhooks=False))
    await settled_start(daemon)
    # Zoho Books keeps first names to 100 characters; HubSpot does not.
    await create_hubspot_contact(http, clean, email="Max.Mitchell@example.com", firstname="Maximiliana" * 10,
                                 lastname="Mitchell")
    labels = {"mapping": "hubspot-zohobooks", "object": "customer", "via": "poll"}
    await eventually(lambda: daemon.metrics.value("syncd_sync_errors_total", **labels) == 1,
                     "the refused create to be counted as an error")
    # Later polls re-read the contact (the overlap window) but do not try it again: still one error, no create.
    runs = daemon.scheduler.runs_completed
    await eventually(lambda: daemon.scheduler.runs_completed >= runs + 2 * len(daemon.scheduler.jobs),
                     "more polls")
    assert daemon.metrics.value("syncd_sync_errors_total", **labels) == 1
    assert daemon.metrics.value("syncd_sync_actions_total", kind="error", **labels) == 1
    assert daemon.metrics.value("syncd_sync_actions_total", kind="create", **labels) == 0
    assert not [c for c in clean.zohobooks.records("contacts") or [] if "Mitchell" in str(c.get("contact_name"))]


async def test_a_revoked_grant_stops_only_its_own_jobs(
    tmp_path: Path, clean: Sandbox, http: aiohttp.ClientSession, running: Callable[[Settings], Any]
) -> None:
    settings = await settings_for(tmp_path, clean, interval_s=1.0, webhooks=False, salesforce=True)
    clean.salesforce.revoke_tokens()
    daemon: Daemon = await running(settings)
    await eventually(lambda: "sf" in daemon.unusable_connections, "the Salesforce grant to be found dead")
    sf_jobs = {j.id for j in daemon.scheduler.jobs.values() if j.mapping == "salesforce-zohobooks"}
    await eventually(lambda: daemon.scheduler.paused == sf_jobs, "Salesforce's jobs to pause")

    # HubSpot ↔ Zoho Books goes on syncing.
    await create_hubspot_contact(http, clean, email="katherine@example.com", firstname="Katherine",
                                 lastname="Johnson")
    await eventually(lambda: zoho_customers(clean, "katherine@example.com"), "the Zoho customer")
    assert daemon.admin_listener is not None
    async with http.get(daemon.admin_listener.url + "/readyz") as r:
        assert r.status == 200 and (await r.json())["needs_reauth"] == ["sf"]

    # A person re-authorises (what `syncd auth sf` stores, from another process): the jobs come back.
    for tokens in clean.salesforce.token_stores:
        tokens.reinstate()
    await store_new_grant(settings, "sf", "salesforce", clean.descriptor["salesforce"])
    await eventually(lambda: not daemon.scheduler.paused, "Salesforce's jobs to resume")
    runs = dict(daemon.scheduler.runs_by_job)
    await eventually(lambda: all(daemon.scheduler.runs_by_job[j] > runs.get(j, 0) for j in sf_jobs),
                     "every Salesforce job to run again")
    assert all(not daemon.scheduler.last_reports[j].errors for j in sf_jobs)
    assert "sf" not in daemon.unusable_connections


async def store_new_grant(settings: Settings, connection: str, system: str, creds: dict[str, str]) -> None:
    """Save a grant for `connection` the way `syncd auth` does (a stale access token, a live refresh token)."""
    key = settings.security.key_bytes()
    assert key is not None
    db = await Database.open(settings.store.url)
    try:
        storage = VaultTokenStorage(TokenVault(db, key), ConnectionStore(db), systems={connection: system})
        extras = {"instance_url": creds["instance_url"]} if "instance_url" in creds else {}
        await storage.save_grant(connection, Grant("stale", datetime(2000, 1, 1, tzinfo=UTC),
                                                   creds["refresh_token"], extras))
    finally:
        await db.close()


async def test_syncd_run_answers_healthz_and_exits_0_on_sigterm(tmp_path: Path, clean: Sandbox,
                                                                  http: aiohttp.ClientSession) -> None:
    await settings_for(tmp_path, clean, interval_s=3600, webhooks=True)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "syncd", "run", "--config", str(tmp_path / "syncd.toml"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ},
    )
    try:
        admin_url = await asyncio.wait_for(_admin_url(proc), timeout=DEADLINE_S)
        async with http.get(admin_url + "/healthz") as r:
            assert r.status == 200 and (await r.json())["status"] == "ok"
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), timeout=DEADLINE_S)
        assert proc.returncode == 0, err.decode()
        assert b"daemon stopped" in err
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def _admin_url(proc: asyncio.subprocess.Process) -> str:
    """Read the daemon's JSON log lines until the admin listener says where it listens."""
    assert proc.stderr is not None
    while line := await proc.stderr.readline():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("listener") == "admin" and "url" in entry:
            return str(entry["url"])
    raise AssertionError("syncd run exited before listening")


async def test_an_event_requeued_through_the_admin_api_is_taken_at_once(
    tmp_path: Path, clean: Sandbox, http: aiohttp.ClientSession
) -> None:
    settings = await settings_for(tmp_path, clean, interval_s=3600, webhooks=True)
    settings = settings.model_copy(update={"admin": settings.admin.model_copy(update={"token": SecretStr("t0ken")})})
    # The inbox's safety round is an hour away and no poll runs: only the requeue's wake-up can bring it.
    daemon = Daemon(settings, inbox_interval_s=3600, health_interval_s=0.5)
    await daemon.start()
    db = await Database.open(settings.store.url)
    try:
        polls = await settled_start(daemon)
        contact_id = await create_hubspot_contact(http, clean, email="dorothy@example.com", firstname="Dorothy",
                                                  lastname="Vaughan")
        # Its webhook was given up on (say, during an outage that outlasted every retry).
        event = ChangeEvent("evt-dorothy", "contacts", contact_id, "created", datetime.now(UTC))
        inbox = InboxStore(db)
        assert await inbox.put("hub", event.event_id, event_payload(event))
        [stored] = await inbox.pending()
        await inbox.give_up(stored.id, "HubSpot 503 for an hour")

        assert daemon.admin_listener is not None
        async with http.post(f"{daemon.admin_listener.url}/api/inbox/{stored.id}/retry",
                             headers={"Authorization": "Bearer t0ken"}) as r:
            assert r.status == 200, await r.text()
        await eventually(lambda: zoho_customers(clean, "dorothy@example.com"), "the Zoho customer")
        assert daemon.scheduler.runs_completed == polls
    finally:
        await db.close()
        await daemon.stop()


async def test_polls_outlasting_their_interval_are_said_once_counted_and_not_stacked(
    tmp_path: Path, clean: Sandbox, http: aiohttp.ClientSession, running: Callable[[Settings], Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # HubSpot answers slowly: every poll of the mapping outlasts its one-second interval.
    async with http.post(f"{clean.control_url('hubspot')}/_sandbox/faults", json={"latency_ms": [700, 800]}) as r:
        r.raise_for_status()
    job = "poll:hubspot-zohobooks:customer:crm"
    with capture_logs() as logs:
        daemon: Daemon = await running(await settings_for(tmp_path, clean, interval_s=1.0, webhooks=False))
        await eventually(lambda: daemon.metrics.value("syncd_poll_runs_total", job=job, outcome="skipped") >= 2,
                         "runs of the slow job to be skipped")
        async with http.post(f"{clean.control_url('hubspot')}/_sandbox/faults", json={"latency_ms": [0, 0]}) as r:
            r.raise_for_status()
        await eventually(lambda: any(e["event"] == "poll fits its interval again" and e.get("job") == job
                                     for e in logs), "the slow streak to end")
    said = [e for e in logs if e["event"].startswith("poll runs longer than its interval") and e["job"] == job]
    assert len(said) == 1, said  # once for the streak, however many runs were skipped
    # APScheduler's own line for every skipped run is not passed on.
    assert not [r for r in caplog.records if "maximum number of running instances" in r.getMessage()]
