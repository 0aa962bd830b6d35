"""Engine fixtures: a migrated SQLite store in a real file, the sandbox's three systems behind the real
connectors, and a reconciler over them. Tests act as the systems' users through the connectors (or the
vendor API for what a connector does not do, like a HubSpot merge) and read state back the same way."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import aiohttp
import pytest
from sqlalchemy import MetaData, select

from syncd.connectors.base import Connector, Create, FieldValue, Record, Update
from syncd.connectors.hubspot import HubSpotConnector
from syncd.connectors.hubspot.settings import HubSpotConnection
from syncd.connectors.ratelimit import Budget, RateLimiter
from syncd.connectors.registry import build_connector
from syncd.connectors.salesforce.settings import SalesforceConnection
from syncd.connectors.zohobooks.settings import ZohoBooksConnection
from syncd.engine.context import PipelineHooks, Stores
from syncd.engine.reconcile import ActiveMapping, Reconciler
from syncd.mapping.loader import SHIPPED_MAPPINGS_DIR, load_mapping
from syncd.sandbox.runner import Sandbox
from syncd.store import Database
from syncd.store.schema import upgrade_database

# Budgets far above what a test spends, so that pacing never slows a scenario down (the limits themselves
# are tested with the connectors).
GENEROUS = {"window_s": 1.0, "window_max": 100_000}
SANDBOX_LIMITS: dict[str, dict[str, Any]] = {
    "hubspot": {"window_s": 1.0, "window_max": 100_000, "search_per_s": 10_000},
    "salesforce": {"window_s": 1.0, "window_max": 100_000},
    "zohobooks": {"window_s": 1.0, "window_max": 100_000, "daily_cap": 10_000_000},
}
# Vendor calls that read although they are not GETs (HubSpot reads in batches and searches with POST).
READ_ROUTES = ("/search", "/batch/read", "/oauth/v1/token", "/oauth/v2/token", "/services/oauth2/token",
               "/query", "/oauth2/v1/tokens/bearer")
ID_KEYS = {
    "contacts": "contact_id",
    "invoices": "invoice_id",
    "customerpayments": "payment_id",
    "items": "item_id",
    "Contacts": "ContactID",
    "Invoices": "InvoiceID",
    "Payments": "PaymentID",
    "Items": "ItemID",
}


@pytest.fixture(scope="session")
async def sandbox(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Sandbox]:
    """All three simulators on free loopback ports for the whole session (state not saved)."""
    async with Sandbox.running(
        workdir=tmp_path_factory.mktemp("engine-sandbox")
    ) as running:
        yield running


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated store in a fresh SQLite file."""
    database = await Database.open(f"sqlite:///{tmp_path / 'syncd.db'}")
    await upgrade_database(database)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
async def control_session() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain HTTP session for the control planes (the Salesforce simulator's certificate is self-signed)."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False), trust_env=False) as session:
        yield session


class System:
    """One running simulator as its users and testers see it: its API through our connector, its control plane."""

    def __init__(self, name: str, connector: Connector, session: aiohttp.ClientSession, root: str) -> None:
        self.name = name
        self.connector = connector
        self._session = session
        self._root = root

    # --- acting as a user of the system ---
    async def put(self, obj: str, fields: Mapping[str, FieldValue], record_id: str | None = None) -> str:
        """Create a record (or edit one) as a user of the system would; returns its id."""
        if record_id is not None:
            await self.update(obj, record_id, fields)
            return record_id
        [made] = await self.connector.create_many(obj, [Create(f"user-{uuid4().hex[:12]}", fields)])
        assert made.ok and made.id is not None, made.error
        return made.id

    async def update(self, obj: str, record_id: str, fields: Mapping[str, FieldValue]) -> None:
        """Edit a record."""
        [done] = await self.connector.update_many(obj, [Update(record_id, fields)])
        assert done.ok, done.error

    async def remove(self, obj: str, record_id: str) -> None:
        """Delete (archive) a record."""
        [done] = await self.connector.delete_many(obj, [record_id])
        assert done.ok, done.error

    # --- reading state back ---
    async def get(self, obj: str, record_id: str) -> dict[str, Any]:
        """One record's fields as the connector reads them (with `id`)."""
        found = await self.connector.get_many(obj, [record_id])
        assert record_id in found, f"{self.name} {obj} {record_id} does not exist"
        return {"id": record_id, **found[record_id].fields}

    async def all(self, obj: str) -> list[dict[str, Any]]:
        """Every live record of an object as the connector reads it (with `id`), in creation order."""
        records: list[Record] = []
        async for page in self.connector.changes(obj, None, timedelta(0)):
            records.extend(r for r in page.records if not r.deleted)
        ids = [str(row[self._id_key(obj)]) for row in await self.raw(obj) if not self._gone(row)]
        by_id = {r.id: r for r in records}
        # List answers may leave fields out (Zoho Books addresses, HubSpot deal associations): read them in full.
        partial = [r.id for r in records if r.missing]
        if partial:
            by_id.update(await self.connector.get_many(obj, partial))
        return [{"id": i, **by_id[i].fields} for i in ids if i in by_id]

    async def raw(self, obj: str) -> list[dict[str, Any]]:
        """Every record of an object as the simulator stores it, deleted ones included (control plane)."""
        return list((await self._control("GET", f"records/{obj}"))["records"])

    async def count(self, obj: str) -> int:
        """How many records of an object were ever created (deleted and archived ones included)."""
        return len(await self.raw(obj))

    async def stats(self) -> dict[str, Any]:
        """The simulator's request counters."""
        return dict(await self._control("GET", "stats"))

    async def writes(self) -> int:
        """API requests that changed something: every non-GET request except the ones that only read."""
        requests: Mapping[str, int] = (await self.stats())["requests"]
        return sum(
            n
            for key, n in requests.items()
            if not key.startswith(("GET ", "HEAD "))
            and "/_sandbox/" not in key
            and not key.rstrip("/").endswith(READ_ROUTES)
        )

    async def _control(self, method: str, path: str, body: Any = None) -> Any:
        async with self._session.request(method, f"{self._root}/_sandbox/{path}", json=body) as response:
            response.raise_for_status()
            return await response.json()

    def _id_key(self, obj: str) -> str:
        return {"hubspot": "id", "salesforce": "Id", "quickbooks": "Id"}.get(self.name) or ID_KEYS[obj]

    @staticmethod
    def _gone(row: Mapping[str, Any]) -> bool:
        return bool(row.get("deleted") or row.get("archived") or row.get("IsDeleted"))


@dataclass
class World:
    """The sandbox's systems, the store and a way to build reconcilers over them."""

    db: Database
    sandbox: Sandbox
    hubspot: System
    salesforce: System
    zoho: System

    @property
    def stores(self) -> Stores:
        """The store's repositories."""
        return Stores.on(self.db)

    @property
    def connectors(self) -> dict[str, Connector]:
        """The real connectors by system name."""
        return {s.name: s.connector for s in (self.hubspot, self.salesforce, self.zoho)}

    def reconciler(
        self, *files: str | Path, hooks: PipelineHooks | None = None, **options: Any
    ) -> Reconciler:
        """A reconciler over the given mapping files (shipped ones by stem), all three systems connected."""
        mappings = []
        for f in files or ("hubspot-zohobooks",):
            path = Path(f) if Path(f).suffix else SHIPPED_MAPPINGS_DIR / f"{f}.toml"
            compiled = load_mapping(path)
            mappings.append(ActiveMapping(compiled.name, compiled))
        return Reconciler(self.db, mappings, self.connectors, hooks=hooks or PipelineHooks(), **options)

    async def tables(self) -> dict[str, list[Any]]:
        """Every row of every table, to prove a dry run wrote nothing."""
        metadata = MetaData()
        async with self.db.engine.connect() as conn:
            await conn.run_sync(metadata.reflect)
            return {
                name: [tuple(r) for r in (await conn.execute(select(table))).all()]
                for name, table in sorted(metadata.tables.items())
            }

    async def writes(self) -> int:
        """Writing API requests served by all three systems so far."""
        return sum([await s.writes() for s in (self.hubspot, self.salesforce, self.zoho)])

    async def everything(self, objects: Mapping[str, Sequence[str]]) -> dict[str, list[dict[str, Any]]]:
        """The simulators' stored records of the given objects, for before/after comparisons."""
        systems = {"hubspot": self.hubspot, "salesforce": self.salesforce, "zohobooks": self.zoho}
        return {f"{name} {obj}": await systems[name].raw(obj) for name, objs in objects.items() for obj in objs}


def _connection(sandbox: Sandbox, system: str) -> HubSpotConnection | SalesforceConnection | ZohoBooksConnection:
    """Connection settings as `syncd sandbox` describes the system, with a generous budget."""
    described = sandbox.descriptor[system]
    common = {"timeout_s": 5.0, "rate_limit": GENEROUS}
    keys: tuple[str, ...]
    if system == "hubspot":
        keys = ("base_url", "client_id", "client_secret", "refresh_token", "app_secret")
        return HubSpotConnection(system="hubspot", **{k: described[k] for k in keys}, **common)
    if system == "salesforce":
        keys = ("base_url", "instance_url", "ca_cert", "client_id", "client_secret", "refresh_token")
        return SalesforceConnection(system="salesforce", **{k: described[k] for k in keys}, **common)
    keys = ("base_url", "accounts_url", "client_id", "client_secret", "refresh_token", "organization_id")
    return ZohoBooksConnection(system="zohobooks", **{k: described[k] for k in keys}, **common)


@pytest.fixture
async def world(
    sandbox: Sandbox, db: Database, control_session: aiohttp.ClientSession
) -> AsyncIterator[World]:
    """Empty systems (the session sandbox restored) behind freshly started real connectors, over a new store."""
    sandbox.restore_defaults()
    connectors: dict[str, Connector] = {}
    try:
        for system in ("hubspot", "salesforce", "zohobooks"):
            async with control_session.post(
                f"{sandbox.control_url(system)}/_sandbox/limits", json=SANDBOX_LIMITS[system]
            ) as response:
                response.raise_for_status()
            connector = build_connector(system[:4], _connection(sandbox, system))
            if isinstance(connector, HubSpotConnector):
                # CRM search has its own 4/s budget built into the connector; the sandbox's was raised above.
                connector.transport.search_limiter = RateLimiter("hubspot/search", Budget(1.0, 10_000))
            await connector.start()
            connectors[system] = connector
        systems = {
            name: System(name, connector, control_session, sandbox.control_url(name))
            for name, connector in connectors.items()
        }
        yield World(db, sandbox, systems["hubspot"], systems["salesforce"], systems["zohobooks"])
    finally:
        for connector in connectors.values():
            await connector.close()
