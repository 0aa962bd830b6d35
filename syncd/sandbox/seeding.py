"""A deterministic, realistic universe of people, companies, deals, invoices and payments for seeding."""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal

from faker import Faker

DEAL_STAGES = (
    "appointmentscheduled",
    "qualifiedtobuy",
    "presentationscheduled",
    "decisionmakerboughtin",
    "contractsent",
    "closedwon",
    "closedlost",
)
PAYMENT_MODES = ("banktransfer", "creditcard", "check", "cash")
PEOPLE_PER_COMPANY = 5
# Real US area codes and no 555 exchanges, so that phonenumbers accepts every number as valid.
_AREA_CODES = ("212", "312", "415", "617", "206", "303", "512", "404", "702", "213", "646", "305")
_PRODUCTS = (
    ("Implementation package", Decimal("1500.00")),
    ("Annual licence", Decimal("4800.00")),
    ("Support plan", Decimal("900.00")),
    ("Training day", Decimal("650.00")),
    ("Extra seats (10)", Decimal("1200.00")),
    ("Data migration", Decimal("2250.00")),
    ("Premium onboarding", Decimal("3100.00")),
    ("API add-on", Decimal("450.00")),
)
_EPOCH = dt.date(2025, 1, 6)
CENT = Decimal("0.01")


@dataclass(frozen=True)
class SeedCounts:
    """How many of each object a simulator should create from a world."""

    contacts: int = 0
    companies: int = 0
    deals: int = 0
    invoices: int = 0
    payments: int = 0

    @property
    def size(self) -> int:
        """The world size these counts need (the largest count)."""
        return max(self.contacts, self.companies, self.deals, self.invoices, self.payments)


@dataclass(frozen=True)
class SeedCompany:
    """An organisation: a CRM's company or account, the company of an accounting system's customer."""

    name: str
    domain: str
    phone: str
    street: str
    city: str
    zip: str
    country: str


@dataclass(frozen=True)
class SeedPerson:
    """A person: a CRM's contact, an accounting system's contact person. `company` indexes SeedWorld.companies."""

    first_name: str
    last_name: str
    email: str
    phone: str
    company: int
    title: str


@dataclass(frozen=True)
class SeedLine:
    """One line of a deal or invoice."""

    name: str
    quantity: int
    unit_price: Decimal

    @property
    def amount(self) -> Decimal:
        """quantity × unit price, in cents."""
        return (self.unit_price * self.quantity).quantize(CENT)


@dataclass(frozen=True)
class SeedDeal:
    """A deal/opportunity of a person at a company; amount is the sum of its lines."""

    name: str
    person: int
    company: int
    amount: Decimal
    stage: str
    close_date: dt.date
    currency: str
    lines: tuple[SeedLine, ...]


@dataclass(frozen=True)
class SeedInvoice:
    """The invoice made from deal `deal` (invoice i from deal i), billed to the deal's person and company."""

    number: str
    deal: int
    person: int
    company: int
    date: dt.date
    due_date: dt.date
    currency: str
    lines: tuple[SeedLine, ...]
    total: Decimal
    status: str  # "sent": every seeded invoice can take its payment


@dataclass(frozen=True)
class SeedPayment:
    """A payment against invoice `invoice` (payment i pays invoice i, in full or in part)."""

    invoice: int
    amount: Decimal
    date: dt.date
    mode: str
    reference: str


@dataclass(frozen=True)
class SeedWorld:
    """Every list has `size` items; simulators take the first n of each, so two systems seeded alike overlap.

    Cross references (person.company, deal.person/company, invoice.deal, payment.invoice) may point past
    what a simulator created when its counts differ; simulators skip those links.
    """

    seed: int
    people: tuple[SeedPerson, ...]
    companies: tuple[SeedCompany, ...]
    deals: tuple[SeedDeal, ...]
    invoices: tuple[SeedInvoice, ...]
    payments: tuple[SeedPayment, ...]

    @classmethod
    def build(cls, seed: int, size: int) -> SeedWorld:
        """The same (seed, size) always gives the same world; a bigger size extends a smaller one."""
        return _build(seed, _round_up(size))._prefix(size)

    def _prefix(self, size: int) -> SeedWorld:
        return SeedWorld(
            self.seed,
            self.people[:size],
            self.companies[:size],
            self.deals[:size],
            self.invoices[:size],
            self.payments[:size],
        )


def _round_up(size: int) -> int:
    # Building in blocks keeps the cache small and makes a world of size n a prefix of one of size m > n.
    block = 256
    return max(block, -(-size // block) * block)


def _ascii_slug(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "", plain)


@functools.lru_cache(maxsize=8)
def _build(seed: int, size: int) -> SeedWorld:
    # Each list gets its own generator so that growing one list never shifts another.
    companies = _companies(Faker("en_US"), seed, size)
    people = _people(Faker("en_US"), seed, size, companies)
    deals = _deals(Faker("en_US"), seed, size, people)
    invoices = tuple(_invoice(i, deal) for i, deal in enumerate(deals))
    payments = tuple(_payment(i, invoice) for i, invoice in enumerate(invoices))
    return SeedWorld(seed, people, companies, deals, invoices, payments)


def _phone(fake: Faker) -> str:
    area = fake.random_element(_AREA_CODES)
    exchange = fake.random_int(200, 999)
    if exchange % 100 == 55 and exchange // 100 == 5:
        exchange = 556
    return f"+1{area}{exchange:03d}{fake.random_int(0, 9999):04d}"


def _companies(fake: Faker, seed: int, size: int) -> tuple[SeedCompany, ...]:
    fake.seed_instance(seed * 7 + 1)
    used: set[str] = set()
    out: list[SeedCompany] = []
    for i in range(size):
        name = fake.company()
        slug = _ascii_slug(name)[:24] or "company"
        domain = f"{slug}.example.com" if slug not in used else f"{slug}{i}.example.com"
        used.add(slug)
        out.append(
            SeedCompany(
                name=name,
                domain=domain,
                phone=_phone(fake),
                street=fake.street_address(),
                city=fake.city(),
                zip=fake.zipcode(),
                country="US",
            )
        )
    return tuple(out)


def _people(fake: Faker, seed: int, size: int, companies: tuple[SeedCompany, ...]) -> tuple[SeedPerson, ...]:
    fake.seed_instance(seed * 7 + 2)
    out: list[SeedPerson] = []
    for i in range(size):
        first, last = fake.first_name(), fake.last_name()
        company = i // PEOPLE_PER_COMPANY
        # The index in the local part keeps e-mails unique whatever names come up twice.
        email = f"{_ascii_slug(first)}.{_ascii_slug(last)}{i}@{companies[company].domain}"
        out.append(SeedPerson(first, last, email, _phone(fake), company, fake.job()))
    return tuple(out)


def _deals(fake: Faker, seed: int, size: int, people: tuple[SeedPerson, ...]) -> tuple[SeedDeal, ...]:
    fake.seed_instance(seed * 7 + 3)
    out: list[SeedDeal] = []
    for i in range(size):
        person = people[i]
        picks = fake.random_elements(_PRODUCTS, length=fake.random_int(1, 3), unique=True)
        lines = tuple(SeedLine(name, fake.random_int(1, 5), price) for name, price in picks)
        amount = sum((line.amount for line in lines), Decimal("0.00"))
        out.append(
            SeedDeal(
                name=f"{person.last_name} – {lines[0].name}",
                person=i,
                company=person.company,
                amount=amount,
                stage=fake.random_element(DEAL_STAGES),
                close_date=_EPOCH + dt.timedelta(days=fake.random_int(0, 300)),
                currency="USD",
                lines=lines,
            )
        )
    return tuple(out)


def _invoice(i: int, deal: SeedDeal) -> SeedInvoice:
    return SeedInvoice(
        number=f"INV-{i + 1:06d}",
        deal=i,
        person=deal.person,
        company=deal.company,
        date=deal.close_date,
        due_date=deal.close_date + dt.timedelta(days=30),
        currency=deal.currency,
        lines=deal.lines,
        total=deal.amount,
        status="sent",
    )


def _payment(i: int, invoice: SeedInvoice) -> SeedPayment:
    # Two payments in three settle the invoice; the third pays half, leaving a balance to sync.
    amount = invoice.total if i % 3 != 2 else (invoice.total / 2).quantize(CENT)
    return SeedPayment(
        invoice=i,
        amount=amount,
        date=invoice.date + dt.timedelta(days=7 + i % 20),
        mode=PAYMENT_MODES[i % len(PAYMENT_MODES)],
        reference=f"PAY-{i + 1:06d}",
    )
