"""The people of a chaos run, seeded through the control plane: overlapping across HubSpot, Salesforce and
Zoho Books (some in all three, some in two, some in one), names that repeat, and won deals with and without
their invoice already in the books; then read back as one index of who is where."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from tests.chaos.processes import SandboxProcess

CONTACT_OBJECTS = {"hubspot": "contacts", "salesforce": "Contact", "zohobooks": "contacts"}
DEAL_OBJECTS = {"hubspot": "deals", "salesforce": "Opportunity"}
WON = {"hubspot": "closedwon", "salesforce": "Closed Won"}


@dataclass(frozen=True)
class Shares:
    """How a population of `people` distinct persons is spread over the systems (world A, B and C are three
    seeded worlds, so their people never coincide; each system takes a prefix of a world's lists)."""

    people: int
    hubspot: int  # world A people 0..n: HubSpot contacts with their deals
    salesforce: int  # world A people 0..n (a prefix of HubSpot's): Salesforce contacts and opportunities
    zoho: int  # world A people 0..n (a prefix of Salesforce's): Zoho Books customers
    invoices: int  # world A invoices 0..n: deal i's invoice, already in the books (history)
    payments: int  # world A payments on those invoices
    salesforce_only: int  # world B people: only in Salesforce
    zoho_only: int  # world C people: only in Zoho Books (without invoices: a second world's invoice numbers
    # would repeat the first's, which the books refuse)

    @classmethod
    def of(cls, people: int) -> Shares:
        """A population of `people` persons: 65% in HubSpot, of whom 35% also in Salesforce and 25% in all
        three; 15% only in Salesforce, 20% only in Zoho Books."""
        hubspot = round(people * 0.65)
        salesforce_only = round(people * 0.15)
        return cls(
            people=people, hubspot=hubspot, salesforce=round(people * 0.35), zoho=round(people * 0.25),
            invoices=round(people * 0.12), payments=round(people * 0.06), salesforce_only=salesforce_only,
            zoho_only=people - hubspot - salesforce_only,
        )  # fmt: skip

    @staticmethod
    def _companies(people: int) -> int:
        return math.ceil(people / 5)  # five people a company, as the seeded world has it

    def seed_bodies(self, seed: int) -> dict[str, list[dict[str, int]]]:
        """The control-plane `seed` bodies for each system, in order."""
        return {
            "hubspot": [{"seed": seed, "contacts": self.hubspot, "companies": self._companies(self.hubspot),
                         "deals": self.hubspot}],
            "salesforce": [
                {"seed": seed, "contacts": self.salesforce, "companies": self._companies(self.salesforce),
                 "deals": self.salesforce},
                {"seed": seed + 1, "contacts": self.salesforce_only,
                 "companies": self._companies(self.salesforce_only), "deals": self.salesforce_only},
            ],
            "zohobooks": [
                {"seed": seed, "contacts": self.zoho, "invoices": self.invoices, "payments": self.payments},
                {"seed": seed + 2, "contacts": self.zoho_only},
            ],
        }  # fmt: skip


@dataclass
class Person:
    """One person, keyed by e-mail (lower case), with their record id in each system they were seeded in."""

    email: str
    ids: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Deal:
    """A CRM deal/opportunity that is not won yet: the harness wins some of them during the run."""

    system: str
    id: str
    person: str  # e-mail
    amount: str


@dataclass
class Population:
    """Who was seeded where, and the open deals that may be won."""

    shares: Shares
    people: dict[str, Person]
    open_deals: list[Deal]
    seeded_invoices: int

    def in_all_three(self) -> list[Person]:
        """People seeded in every system (world A's first `zoho`)."""
        return [p for p in self.people.values() if len(p.ids) == 3]


def zoho_primary(record: dict[str, Any]) -> dict[str, Any]:
    """A Zoho Books customer's primary contact person (where its e-mail, names and phone live)."""
    persons = record.get("contact_persons") or []
    return next((p for p in persons if p.get("is_primary_contact")), persons[0] if persons else {})


def email_of(system: str, record: dict[str, Any]) -> str:
    """A contact record's e-mail, as the system stores it."""
    if system == "hubspot":
        return str(record["properties"].get("email") or "")
    if system == "salesforce":
        return str(record.get("Email") or "")
    return str(zoho_primary(record).get("email") or record.get("email") or "")


def is_gone(record: dict[str, Any]) -> bool:
    """Archived (HubSpot), deleted (Salesforce, Zoho Books) or merged away."""
    return bool(record.get("archived") or record.get("IsDeleted") or record.get("deleted")
                or record.get("merged_into"))  # fmt: skip


def record_id(system: str, record: dict[str, Any]) -> str:
    """The id of a contact record."""
    return str(record.get("id") or record.get("Id") or record.get("contact_id"))


async def seed(sandbox: SandboxProcess, people: int, seed_number: int) -> Population:
    """Seed every system and read the result back."""
    shares = Shares.of(people)
    for system, bodies in shares.seed_bodies(seed_number).items():
        for body in bodies:
            await sandbox.control(system, "seed", body)
    index: dict[str, Person] = {}
    contact_ids: dict[str, dict[str, str]] = {}
    for system, obj in CONTACT_OBJECTS.items():
        contact_ids[system] = {}
        for record in await sandbox.records(system, obj):
            email = email_of(system, record).lower()
            index.setdefault(email, Person(email)).ids[system] = record_id(system, record)
            contact_ids[system][record_id(system, record)] = email
    open_deals: list[Deal] = []
    for record in await sandbox.records("hubspot", "deals"):
        props = record["properties"]
        contacts = record.get("associations", {}).get("contacts", [])
        if props.get("dealstage") != WON["hubspot"] and contacts:
            person = contact_ids["hubspot"].get(str(contacts[0]), "")
            if "salesforce" in index[person].ids:
                continue  # the same deal is an opportunity there: one CRM wins it, so one invoice is expected
            open_deals.append(Deal("hubspot", str(record["id"]), person, str(props.get("amount"))))
    for record in await sandbox.records("salesforce", "Opportunity"):
        if record.get("StageName") != WON["salesforce"] and record.get("ContactId"):
            person = contact_ids["salesforce"].get(str(record["ContactId"]), "")
            open_deals.append(Deal("salesforce", str(record["Id"]), person, str(record.get("Amount"))))
    invoices = len(await sandbox.records("zohobooks", "invoices"))
    return Population(shares, index, open_deals, invoices)


def mixed_case(email: str) -> str:
    """The same address as a person might type it: `Sara.Fry0@SANCHEZPLC.example.com`."""
    local, _, domain = email.partition("@")
    head, _, rest = domain.partition(".")
    return f"{'.'.join(part.capitalize() for part in local.split('.'))}@{head.upper()}.{rest}"
