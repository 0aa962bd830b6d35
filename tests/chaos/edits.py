"""The people using the systems during a chaos run: they edit contacts and win deals through the vendor APIs
(by syncd's own connectors, each with its own grant, as the engine tests act as users), and the harness keeps
what each of those edits should leave behind.

Every (person, field) the background editor touches is edited in one system only, and only once syncd has
linked that person in every mapping (the records then share a base), so its last edit must reach every system.
(An edit landing before the first link is a first-sync difference: without a base, a `manual` field rightly
becomes a conflict, which this harness could not predict without knowing the moment of the link.)

Clashes (the same field changed differently on a CRM and in Zoho Books) are made only while no syncd process
runs, so syncd is certain to see both changes at once: a `manual` field must then be an open conflict, an
`accounting` field must end as Zoho Books has it."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from faker import Faker

from syncd.connectors.base import Connector, FieldValue, Update
from syncd.connectors.hubspot import HubSpotConnector
from syncd.connectors.hubspot.settings import HubSpotConnection
from syncd.connectors.ratelimit import Budget, RateLimiter
from syncd.connectors.registry import build_connector
from syncd.connectors.salesforce.settings import SalesforceConnection
from syncd.connectors.zohobooks.settings import ZohoBooksConnection
from syncd.errors import SyncdError
from tests.chaos.population import CONTACT_OBJECTS, DEAL_OBJECTS, WON, Deal, Person, Population, mixed_case
from tests.chaos.processes import CONNECTION_LIMIT, SandboxProcess

# A field as each system names it in a write (Zoho Books' person fields are its primary contact's).
FIELD_KEYS: dict[str, dict[str, str]] = {
    "first_name": {"hubspot": "firstname", "salesforce": "FirstName", "zohobooks": "primary_contact.first_name"},
    "last_name": {"hubspot": "lastname", "salesforce": "LastName", "zohobooks": "primary_contact.last_name"},
    "phone": {"hubspot": "phone", "salesforce": "Phone", "zohobooks": "primary_contact.phone"},
    "city": {"hubspot": "city", "salesforce": "MailingCity", "zohobooks": "billing_address.city"},
}
EMAIL_KEYS = {"hubspot": "email", "salesforce": "Email", "zohobooks": "primary_contact.email"}
# Real US area codes, no 555 exchange: every number is valid for the phone transform.
AREA_CODES = ("212", "312", "415", "617", "206", "303", "512", "404")
WIN_SHARE = 0.12  # of the editor's steps that win a deal rather than edit a person
MIXED_CASE_SHARE = 0.3  # of the people seeded in all three systems whose e-mail is retyped before the run


@dataclass(frozen=True)
class FieldEdit:
    """The last confirmed edit of one field of one person."""

    system: str
    value: str


@dataclass(frozen=True)
class Win:
    """A deal won during the run: exactly one invoice must come of it."""

    deal: Deal
    closed: date


@dataclass(frozen=True)
class Clash:
    """One field changed differently on a CRM and in Zoho Books while syncd was down."""

    person: str
    field: str
    crm: str  # the CRM system
    crm_value: str
    acc_value: str


@dataclass
class _Pending:
    system: str
    obj: str
    record: str
    values: dict[str, FieldValue]
    done: Any  # called with nothing once the write is confirmed


def connection(sandbox: SandboxProcess, system: str, refresh_token: str | None = None
               ) -> HubSpotConnection | SalesforceConnection | ZohoBooksConnection:
    """Connection settings as the sandbox describes the system, the harness's own grant."""
    described = dict(sandbox.descriptor[system])
    if refresh_token is not None:
        described["refresh_token"] = refresh_token
    common: dict[str, Any] = {"timeout_s": 10.0, "rate_limit": CONNECTION_LIMIT}
    keys: tuple[str, ...]
    if system == "hubspot":
        keys = ("base_url", "client_id", "client_secret", "refresh_token", "app_secret")
        return HubSpotConnection(system="hubspot", **{k: described[k] for k in keys}, **common)
    if system == "salesforce":
        keys = ("base_url", "instance_url", "ca_cert", "client_id", "client_secret", "refresh_token")
        return SalesforceConnection(system="salesforce", **{k: described[k] for k in keys}, **common)
    keys = ("base_url", "accounts_url", "client_id", "client_secret", "refresh_token", "organization_id")
    return ZohoBooksConnection(system="zohobooks", **{k: described[k] for k in keys}, **common)


async def open_connector(sandbox: SandboxProcess, system: str, refresh_token: str | None = None) -> Connector:
    """A started connector acting as one of the system's users."""
    connector = build_connector(f"chaos-{system}", connection(sandbox, system, refresh_token))
    if isinstance(connector, HubSpotConnector):
        connector.transport.search_limiter = RateLimiter("hubspot/search", Budget(1.0, 10_000))
    await connector.start()
    return connector


class Editor:
    """Edits people and wins deals, in the background and on demand, remembering what must come of it."""

    def __init__(self, sandbox: SandboxProcess, population: Population, rng: random.Random) -> None:
        self.sandbox = sandbox
        self.population = population
        self.rng = rng
        self.fake = Faker("en_US")
        self.fake.seed_instance(rng.randrange(1 << 30))
        self.connectors: dict[str, Connector] = {}
        self.paused: set[str] = set()  # systems whose grant is revoked: no edits there until restored
        self.expected: dict[tuple[str, str], FieldEdit] = {}
        self.wins: list[Win] = []
        self.clashes: list[Clash] = []
        self.edits = 0
        self.failed_writes = 0
        self._origin: dict[tuple[str, str], str] = {}
        self._pending: list[_Pending] = []
        self._busy: set[tuple[str, str]] = set()  # fields with a write under way or waiting to be retried
        everyone = list(population.people.values())
        rng.shuffle(everyone)
        # People kept for clashes are never edited in the background: what they end with depends on the clash.
        reserved = {p.email for p in population.in_all_three()[::6]}
        self.clashable = [p for p in everyone if p.email in reserved]
        self.editable = [p for p in everyone if p.email not in reserved]
        self.open_deals = list(population.open_deals)
        rng.shuffle(self.open_deals)
        self.linked: set[str] = set()  # e-mails of the people linked in every mapping, refreshed by the harness

    async def start(self) -> None:
        """Sign in to every system."""
        for system in CONTACT_OBJECTS:
            self.connectors[system] = await open_connector(self.sandbox, system)

    async def close(self) -> None:
        """Sign out."""
        for connector in self.connectors.values():
            await connector.close()

    async def regrant(self, system: str, refresh_token: str) -> None:
        """After a revoke was undone: a connector on the new grant, and edits there resume."""
        await self.connectors[system].close()
        self.connectors[system] = await open_connector(self.sandbox, system, refresh_token)
        self.paused.discard(system)

    async def retype_emails(self) -> int:
        """Before the run: some shared people's e-mails retyped in mixed case in Salesforce or Zoho Books."""
        people = self.population.in_all_three()
        chosen = people[:: max(1, round(1 / MIXED_CASE_SHARE))]
        for n, person in enumerate(chosen):
            system = ("salesforce", "zohobooks")[n % 2]
            await self._write_now(system, CONTACT_OBJECTS[system], person.ids[system],
                                  {EMAIL_KEYS[system]: mixed_case(person.email)})  # fmt: skip
        return len(chosen)

    async def run(self, stop: asyncio.Event, pace_s: float, workers: int = 3) -> None:
        """Edit until `stop` is set: `workers` people at once, each making a change every ~`pace_s` seconds (a
        write held up by a system's Retry-After holds up only its own worker)."""

        async def worker() -> None:
            while not stop.is_set():
                await self.step()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.rng.uniform(0.5, 1.5) * pace_s)

        await asyncio.gather(*(worker() for _ in range(workers)))

    async def step(self) -> None:
        """One change: first a write that failed before, else a deal won or a field edited."""
        if self._pending:
            pending = self._pending.pop(0)
            await self._attempt(pending)
            return
        if self.open_deals and self.rng.random() < WIN_SHARE:
            deal = self.open_deals[-1]
            if deal.system in self.paused:
                return
            self.open_deals.pop()
            today = date.today()
            won: dict[str, FieldValue] = (
                {"dealstage": WON["hubspot"], "closedate": today} if deal.system == "hubspot"
                else {"StageName": WON["salesforce"], "CloseDate": today}
            )  # fmt: skip
            await self._attempt(_Pending(deal.system, DEAL_OBJECTS[deal.system], deal.id, won,
                                         lambda: self.wins.append(Win(deal, today))))  # fmt: skip
            return
        ready = [p for p in self.editable if p.email in self.linked]
        if not ready:
            return
        person = self.rng.choice(ready)
        name = self.rng.choice(tuple(FIELD_KEYS))
        key = (person.email, name)
        origin = self._origin.setdefault(key, self.rng.choice(sorted(person.ids)))
        if origin in self.paused or key in self._busy:
            return  # one write at a time per field: the order they land in is the order they were made
        self._busy.add(key)
        value = self.value(name)
        edit = FieldEdit(origin, value)

        def confirmed() -> None:
            self.expected[key] = edit
            self.edits += 1
            self._busy.discard(key)

        await self._attempt(_Pending(origin, CONTACT_OBJECTS[origin], person.ids[origin],
                                     {FIELD_KEYS[name][origin]: value}, confirmed))  # fmt: skip

    async def finish(self) -> None:
        """Land every write that failed so far (the systems answer again by now)."""
        for _ in range(50):
            if not self._pending:
                return
            await self._attempt(self._pending.pop(0))
        raise RuntimeError(f"{len(self._pending)} edits could not be written after 50 attempts")

    async def clash(self, person: Person, name: str, crm: str) -> Clash:
        """Change one field differently on `crm` and in Zoho Books (syncd is down: it sees both at once)."""
        crm_value, acc_value = self.value(name), self.value(name)
        while acc_value == crm_value:
            acc_value = self.value(name)
        await self._write_now(crm, CONTACT_OBJECTS[crm], person.ids[crm], {FIELD_KEYS[name][crm]: crm_value})
        await self._write_now("zohobooks", "contacts", person.ids["zohobooks"],
                              {FIELD_KEYS[name]["zohobooks"]: acc_value})  # fmt: skip
        made = Clash(person.email, name, crm, crm_value, acc_value)
        self.clashes.append(made)
        self.clashable.remove(person)
        return made

    def value(self, name: str) -> str:
        """A new realistic value for a field."""
        if name == "phone":
            exchange = self.rng.randrange(200, 1000)
            exchange = 556 if exchange == 555 else exchange
            return f"+1{self.rng.choice(AREA_CODES)}{exchange:03d}{self.rng.randrange(10_000):04d}"
        if name == "city":
            return str(self.fake.city())
        return str(self.fake.first_name() if name == "first_name" else self.fake.last_name())

    async def _write_now(self, system: str, obj: str, record: str, values: Mapping[str, FieldValue]) -> None:
        """A write that must land now (retried through the injected faults)."""
        for _ in range(30):
            if await self._write(system, obj, record, values):
                return
        raise RuntimeError(f"{system} {obj} {record}: write still refused after 30 attempts")

    async def _attempt(self, pending: _Pending) -> None:
        if pending.system in self.paused or not await self._write(
            pending.system, pending.obj, pending.record, pending.values
        ):
            # Its outcome may be unknown (a timeout): the same value is written again until it is confirmed,
            # so what the record ends with is known either way.
            self._pending.append(pending)
            return
        pending.done()

    async def _write(self, system: str, obj: str, record: str, values: Mapping[str, FieldValue]) -> bool:
        try:
            [outcome] = await self.connectors[system].update_many(obj, [Update(record, dict(values))])
        except SyncdError:
            self.failed_writes += 1
            return False
        if not outcome.ok:
            self.failed_writes += 1
        return outcome.ok


def clash_fields() -> Sequence[str]:
    """The fields clashes are made on: `phone` (rule `manual`: a conflict) and `city` (rule `accounting`)."""
    return ("phone", "city")
