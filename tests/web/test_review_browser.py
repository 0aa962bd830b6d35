"""The review page in a real browser (headless Chromium through Selenium): sign in, filter, resolve a phone number
changed differently in HubSpot and Zoho Books by clicking, and see the chosen number reach Zoho Books on the next
pass. Screenshots of the list and the detail view are kept under test-artifacts/review/."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import tomli_w
from cryptography.fernet import Fernet

from syncd.connectors.base import Connector, Create, Update
from syncd.engine.daemon import system_objects
from syncd.engine.wiring import Engine, open_engine
from syncd.mapping.loader import SHIPPED_MAPPINGS_DIR
from syncd.sandbox.runner import Sandbox
from syncd.settings import load_settings
from syncd.store import ConflictStore, LinkStore
from syncd.store.schema import upgrade
from syncd.web.admin import build_admin_app
from syncd.web.metrics import Metrics
from syncd.web.server import Listener, serve

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
TOKEN = "browser-review-token-5150"
ARTIFACTS = Path(os.environ.get("SYNCD_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"))
WAIT_S = 20

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
        reason="needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver); "
        ".ci/run installs them: apt-get install chromium chromium-driver",
    ),
]


@pytest.fixture(scope="module")
async def sandbox(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Sandbox]:
    """The simulators on free loopback ports, Zoho's budget raised so the test takes seconds."""
    async with Sandbox.running(workdir=tmp_path_factory.mktemp("review-sandbox")) as running:
        running.zohobooks.apply_limits({"window_s": 1, "window_max": 1000})
        yield running


def mapping_with_manual_company(folder: Path) -> Path:
    """The shipped HubSpot ↔ Zoho Books file, with company names also left to a person (so that there are two
    kinds of conflict to filter)."""
    text = (SHIPPED_MAPPINGS_DIR / "hubspot-zohobooks.toml").read_text()
    marker = '[objects.customer.fields.company]\n'
    assert marker in text
    path = folder / "hubspot-zohobooks.toml"
    path.write_text(text.replace(marker, marker + 'conflict = "manual"\n'))
    return path


@pytest.fixture
async def engine(sandbox: Sandbox, tmp_path: Path) -> AsyncIterator[Engine]:
    """A config on the sandbox as `syncd sandbox --write-config` would give, its store migrated, opened as
    `syncd sync --once` opens it."""
    hub, zoho = sandbox.descriptor["hubspot"], sandbox.descriptor["zohobooks"]
    config = {
        "store": {"url": f"sqlite:///{tmp_path / 'syncd.db'}"},
        "security": {"token_key": Fernet.generate_key().decode()},
        "admin": {"host": "127.0.0.1", "port": 0, "token": TOKEN},
        "mappings": {"active": [str(mapping_with_manual_company(tmp_path))]},
        "connections": {
            "hub": {"system": "hubspot", **{k: hub[k] for k in ("base_url", "client_id", "client_secret",
                                                                "refresh_token")},
                    "record_urls": {"contacts": f"{hub['base_url']}/contacts/record/{{id}}"}},
            "books": {"system": "zohobooks", **{k: zoho[k] for k in ("base_url", "accounts_url", "client_id",
                                                                    "client_secret", "refresh_token",
                                                                    "organization_id")},
                      "rate_limit": {"window_s": 1, "window_max": 1000}},
        },
    }
    path = tmp_path / "syncd.toml"
    path.write_bytes(tomli_w.dumps(config).encode())
    await upgrade(config["store"]["url"])
    async with open_engine(load_settings(path)) as opened:
        yield opened


@pytest.fixture
async def admin(engine: Engine, tmp_path: Path) -> AsyncIterator[Listener]:
    """The real admin listener on loopback over the same store."""
    settings = load_settings(tmp_path / "syncd.toml")
    app = build_admin_app(db=engine.db, settings=settings, metrics=Metrics(),
                          objects=system_objects(engine.reconciler.mappings))
    listener = await serve(app, "127.0.0.1", 0, name="admin")
    try:
        yield listener
    finally:
        await listener.stop()


@pytest.fixture
def artifacts() -> Iterator[Path]:
    """Where the screenshots go (printed, so a CI log says where to find them)."""
    folder = ARTIFACTS / "review"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    yield folder
    print(f"review page screenshots: {folder}")


async def edit(connector: Connector, obj: str, record_id: str, fields: dict[str, Any]) -> None:
    """Change a record as a user of that system would."""
    [done] = await connector.update_many(obj, [Update(record_id, fields)])
    assert done.ok, done.error


async def zoho_contact(http: aiohttp.ClientSession, sandbox: Sandbox, contact_id: str) -> dict[str, Any]:
    """A Zoho Books contact as the simulator stores it (control plane)."""
    async with http.get(f"{sandbox.control_url('zohobooks')}/_sandbox/records/contacts") as response:
        response.raise_for_status()
        records = (await response.json())["records"]
    [found] = [r for r in records if str(r["contact_id"]) == contact_id]
    return dict(found)


async def zoho_writes(http: aiohttp.ClientSession, sandbox: Sandbox) -> dict[str, int]:
    """Zoho Books requests that changed something, by route (control plane)."""
    async with http.get(f"{sandbox.control_url('zohobooks')}/_sandbox/stats") as response:
        requests: dict[str, int] = (await response.json())["requests"]
    return {k: n for k, n in requests.items() if not k.startswith("GET") and "/_sandbox/" not in k
            and "/oauth/" not in k}


def drive(url: str, artifacts: Path, contact_email: str) -> tuple[str, str]:
    """What a reviewer does in the browser; returns the phone numbers the detail view showed (CRM, accounting)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.wait import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)  # the system browser: Selenium Manager has nothing to look up
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--no-proxy-server",
                     "--window-size=1400,1000"):
        options.add_argument(argument)
    browser = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    wait = WebDriverWait(browser, WAIT_S)
    try:
        browser.get(f"{url}/review")
        wait.until(ec.presence_of_element_located((By.ID, "sign-in")))
        browser.find_element(By.ID, "who").send_keys("Dana Reviewer")
        browser.find_element(By.ID, "token").send_keys(TOKEN)
        browser.find_element(By.ID, "sign-in").click()
        wait.until(ec.presence_of_element_located((By.ID, "filters")))
        assert len(browser.find_elements(By.CSS_SELECTOR, "tr[id^=conflict-]")) == 2
        # Choosing a field applies the filter at once (the page's small script submits the form).
        Select(browser.find_element(By.ID, "filter-field")).select_by_value("phone")
        wait.until(ec.url_contains("field=phone"))
        [row] = browser.find_elements(By.CSS_SELECTOR, "tr[id^=conflict-]")
        assert row.get_attribute("data-field") == "phone" and contact_email in row.text
        browser.save_screenshot(str(artifacts / "conflict-list.png"))
        row.find_element(By.CSS_SELECTOR, "a.button").click()
        wait.until(ec.presence_of_element_located((By.ID, "keep-crm")))
        crm, acc = browser.find_element(By.ID, "crm-value").text, browser.find_element(By.ID, "acc-value").text
        browser.save_screenshot(str(artifacts / "conflict-detail.png"))
        browser.find_element(By.ID, "keep-crm").click()
        wait.until(ec.presence_of_element_located((By.ID, "notice")))
        assert "written to both sides on the next sync pass" in browser.find_element(By.ID, "notice").text
        left = browser.find_elements(By.CSS_SELECTOR, "tr[id^=conflict-]")
        assert [r.get_attribute("data-field") for r in left] == ["company"]  # Ann Leigh's waits for a person
        return crm, acc
    finally:
        browser.quit()


async def test_a_reviewer_resolves_a_phone_conflict_in_the_browser_and_it_reaches_zoho_books(
    sandbox: Sandbox, engine: Engine, admin: Listener, artifacts: Path
) -> None:
    sandbox.restore_defaults()
    sandbox.zohobooks.apply_limits({"window_s": 1, "window_max": 1000})
    hubspot, zoho = engine.connectors["hubspot"], engine.connectors["zohobooks"]
    people = [
        {"email": "Ann.Lee@Example.com", "firstname": "Ann", "lastname": "Lee", "phone": "+15125550100",
         "company": "Lee & Co"},
        {"email": "ann.leigh@other.example", "firstname": "Ann", "lastname": "Leigh", "phone": "+15125550200",
         "company": "Other Lee"},
    ]
    made = await hubspot.create_many("contacts", [Create(f"user-{i}", p) for i, p in enumerate(people)])
    first, second = (m.id for m in made)
    assert first is not None and second is not None
    await engine.reconciler.run_pass()
    links = LinkStore(engine.db)
    ann = await links.lookup_crm("hubspot-zohobooks", "customer", "hubspot", first)
    other = await links.lookup_crm("hubspot-zohobooks", "customer", "hubspot", second)
    assert ann is not None and ann.acc_id is not None and other is not None and other.acc_id is not None
    # The same field edited differently on both sides: Ann Lee's phone, Ann Leigh's company.
    await edit(hubspot, "contacts", first, {"phone": "+15125550111"})
    await edit(zoho, "contacts", ann.acc_id, {"primary_contact.phone": "+15125550122"})
    await edit(hubspot, "contacts", second, {"company": "Other Lee Holdings"})
    await edit(zoho, "contacts", other.acc_id, {"company_name": "Other Lee Ltd"})
    await engine.reconciler.run_pass()
    assert {c.field for c in await ConflictStore(engine.db).list()} == {"phone", "company"}

    crm, acc = await asyncio.to_thread(drive, admin.url, artifacts, "Ann Lee <ann.lee@example.com>")
    assert (crm, acc) == ("+15125550111", "+15125550122")
    [resolved] = await ConflictStore(engine.db).list(status="resolved")
    assert (resolved.field, resolved.resolved_by, resolved.resolved_value) == ("phone", "Dana Reviewer", "+15125550111")

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False), trust_env=False) as http:
        before = await zoho_writes(http, sandbox)
        report = await engine.reconciler.run_pass()
        assert not report.errors
        contact = await zoho_contact(http, sandbox, ann.acc_id)
        after = await zoho_writes(http, sandbox)
    assert [p["phone"] for p in contact["contact_persons"] if p.get("is_primary_contact")] == ["+15125550111"]
    # One write carried it: an update of that one contact, nothing else.
    grown = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    assert grown == {"PUT /books/v3/contacts/{contact_id}": 1}, grown
    assert (await ConflictStore(engine.db).get(resolved.id)).applied_at is not None
    assert {c.field for c in await ConflictStore(engine.db).list()} == {"company"}  # the other stays open
    assert (artifacts / "conflict-list.png").stat().st_size > 0
    assert (artifacts / "conflict-detail.png").stat().st_size > 0
