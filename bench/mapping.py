"""Mapping + diff alone on one core: HubSpot contacts and their Zoho Books customers through the shipped
mapping's filters, canonical values and the three-way field plan, with no I/O at all.

Run as `python -m bench mapping [--records N]`."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from syncd.connectors.base import Record
from syncd.engine.context import LifecyclePolicy
from syncd.engine.fields import plan_fields
from syncd.mapping.compiled import ObjectMapper
from syncd.mapping.loader import load_mapping

REPO = Path(__file__).resolve().parents[1]
MAPPING = REPO / "mappings" / "hubspot-zohobooks.toml"
FIRST = ("Ana", "Ben", "Chloé", "Dmitri", "Eve", "Farah", "Gus", "Hana", "Ivan", "Jo", "Kofi", "Lena")
LAST = ("Smith", "García", "Nguyen", "Okafor", "Müller", "Rossi", "Kim", "Silva", "Cohen", "Ivanova")
CITIES = ("Berlin", "Austin", "Lagos", "Lyon", "Osaka", "Porto", " Denver ", "Quito")


@dataclass(frozen=True)
class MappingResult:
    """What one run measured."""

    records: int
    seconds: float

    @property
    def per_second(self) -> float:
        """Pairs mapped and planned per second of CPU time."""
        return self.records / self.seconds


def customer_mapper() -> ObjectMapper:
    """The shipped HubSpot ↔ Zoho Books customer mapping, compiled."""
    compiled = load_mapping(MAPPING)
    return compiled.objects["customer"]


def pairs(count: int, seed: int = 7) -> list[tuple[Record, Record, dict[str, object]]]:
    """Linked contact pairs with a base: most unchanged, some edited on one side, a few on both."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 5, 9, tzinfo=UTC)
    out: list[tuple[Record, Record, dict[str, object]]] = []
    for n in range(count):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        email = f"{first}.{last}{n % 997}@Example.com"
        phone = f"(415) 555-{rng.randrange(10_000):04d}"
        city = rng.choice(CITIES)
        crm = {"email": email, "firstname": first, "lastname": last, "phone": phone,
               "company": f"{last} GmbH", "city": city}  # fmt: skip
        acc = {"contact_type": "customer", "primary_contact.email": email.lower(),
               "primary_contact.first_name": first, "primary_contact.last_name": last,
               "primary_contact.phone": phone, "company_name": f"{last} GmbH",
               "billing_address.city": city.strip()}  # fmt: skip
        base: dict[str, object] = {"email": email.lower(), "first_name": first, "last_name": last,
                                   "phone": None, "company": f"{last} GmbH", "city": city.strip()}  # fmt: skip
        kind = n % 10
        if kind == 1:
            crm["lastname"] = last + "-Lee"
        elif kind == 2:
            acc["billing_address.city"] = "Madrid"
        elif kind == 3:
            crm["company"], acc["company_name"] = "Acme", "Acme Ltd"
        moment = start + timedelta(seconds=n)
        out.append((
            Record("hubspot", "contacts", str(1000 + n), crm, moment),
            Record("zohobooks", "contacts", str(460000000010001 + n), acc, moment),
            base,
        ))  # fmt: skip
    return out


def run(count: int = 20_000) -> MappingResult:
    """Filter, map and plan `count` pairs; CPU time of this process only (one core)."""
    mapper = customer_mapper()
    policy = LifecyclePolicy()
    work = pairs(count)
    started = time.process_time()
    for crm, acc, base in work:
        if mapper.accepts_crm(crm) and mapper.accepts_acc(acc):
            mapper.match_key("crm", crm)
            plan_fields(mapper, policy, crm, acc, base, {})  # type: ignore[arg-type]
    return MappingResult(count, time.process_time() - started)


def main(argv: list[str]) -> int:
    """`python -m bench mapping [--records N]`: print pairs per second (target ≥ 20,000 on one core)."""
    count = int(argv[argv.index("--records") + 1]) if "--records" in argv else 20_000
    result = run(count)
    print(f"mapping + diff: {result.records:,} pairs in {result.seconds:.2f} s CPU = "
          f"{result.per_second:,.0f} records/s on one core (target >= 20,000)")
    return 0


__all__ = ["MappingResult", "main", "run"]
