"""The end-state audit of a chaos run: every system read through its control plane, syncd's store read from its
SQLite file, and every invariant checked: no duplicate, nobody missing, no lost edit, every link consistent,
conflicts exactly where a field was changed differently on both sides, one invoice per deal won."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import phonenumbers

from tests.chaos.edits import FIELD_KEYS, Editor
from tests.chaos.population import CONTACT_OBJECTS, DEAL_OBJECTS, Population, email_of, is_gone, record_id, zoho_primary
from tests.chaos.processes import SandboxProcess

MAPPINGS = {"hubspot": "hubspot-zohobooks", "salesforce": "salesforce-zohobooks"}


@dataclass
class AuditResult:
    """What the audit found: figures, and every broken invariant in words."""

    counts: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every invariant held."""
        return not self.violations

    def by_kind(self) -> dict[str, int]:
        """How many violations of each kind (the words before the first colon)."""
        return dict(Counter(v.split(":", 1)[0] for v in self.violations))


def canonical(name: str, value: Any) -> str:
    """A value as syncd compares it: phones in E.164, e-mails lower-cased, text trimmed."""
    text = "" if value is None else str(value).strip()
    if name == "phone" and text:
        try:
            return phonenumbers.format_number(phonenumbers.parse(text, "US"), phonenumbers.PhoneNumberFormat.E164)
        except phonenumbers.NumberParseException:
            return text
    return text.lower() if name == "email" else text


def field_value(system: str, record: dict[str, Any], name: str) -> str:
    """A person field as one system holds it (Zoho Books: the primary contact's, the billing city)."""
    key = FIELD_KEYS[name][system]
    if system == "hubspot":
        raw = record["properties"].get(key)
    elif system == "salesforce":
        raw = record.get(key)
    elif name == "city":
        raw = (record.get("billing_address") or {}).get("city")
    else:
        raw = zoho_primary(record).get(key.split(".", 1)[1])
    return canonical(name, raw)


@dataclass(frozen=True)
class StoreRows:
    """What syncd's store holds, read straight from its SQLite file."""

    links: list[sqlite3.Row]
    open_conflicts: list[sqlite3.Row]
    audit: list[sqlite3.Row]
    dead_letters: list[sqlite3.Row]

    @classmethod
    def read(cls, database: Path) -> StoreRows:
        """Read the tables the audit needs (syncd is not running)."""
        connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        connection.row_factory = sqlite3.Row
        try:
            return cls(
                links=connection.execute("SELECT * FROM link").fetchall(),
                open_conflicts=connection.execute(
                    "SELECT conflict.*, link.mapping, link.object, link.crm_id, link.acc_id FROM conflict "
                    "JOIN link ON link.id = conflict.link_id WHERE conflict.status = 'open'"
                ).fetchall(),
                audit=connection.execute("SELECT * FROM audit").fetchall(),
                dead_letters=connection.execute("SELECT * FROM dead_letter").fetchall(),
            )
        finally:
            connection.close()


async def audit(sandbox: SandboxProcess, database: Path, population: Population, editor: Editor) -> AuditResult:
    """Check every invariant on the settled end state."""
    result = AuditResult()
    store = StoreRows.read(database)
    people: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    live_ids: dict[str, set[str]] = {}
    for system, obj in CONTACT_OBJECTS.items():
        live = [r for r in await sandbox.records(system, obj) if not is_gone(r)]
        live_ids[system] = {record_id(system, r) for r in live}
        result.counts[f"{system} contacts"] = len(live)
        for record in live:
            people[email_of(system, record).lower()][system].append(record)
    _people(result, people, population, store)
    links = [r for r in store.links if r["state"] == "linked"]
    result.counts["links"] = len(links)
    result.counts["dead letters"] = len(store.dead_letters)
    result.counts["open conflicts"] = len(store.open_conflicts)
    for row in store.links:
        if row["state"] == "pending":
            result.violations.append(f"pending link: {_describe(row)} left unfinished after the passes settled")
    statuses = Counter(row["status"] for row in store.audit)
    result.counts["writes recovered"] = statuses["recovered"]
    result.counts["writes unconfirmed"] = statuses["unconfirmed"]
    if statuses["pending"]:
        result.violations.append(f"{statuses['pending']} journalled writes left pending after the passes settled")
    await _customer_links(result, sandbox, links, people, live_ids)
    await _invoices(result, sandbox, links, population, editor, people)
    await _payments(result, sandbox)
    _edits(result, editor, people, store)
    _clashes(result, editor, people, store)
    return result


def _describe(row: sqlite3.Row) -> str:
    return f"{row['mapping']} {row['object']} #{row['id']} (crm {row['crm_id']}, acc {row['acc_id']})"


def _people(result: AuditResult, people: dict[str, dict[str, list[dict[str, Any]]]], population: Population,
            store: StoreRows) -> None:
    """Everyone once in every system: no duplicate, nobody missing, nobody unknown."""
    parked = {row["record_id"]: f"{row['error_class']} {row['error_code']}: {row['error_message']}"
              for row in store.dead_letters}  # fmt: skip
    for email, systems in sorted(people.items()):
        if email not in population.people:
            result.violations.append(f"unknown person: {email} in {sorted(systems)} was never seeded")
        for system, records in systems.items():
            if len(records) > 1:
                ids = [record_id(system, r) for r in records]
                result.violations.append(f"duplicate: {email} is {len(records)} {system} contacts {ids}")
    for email, person in sorted(population.people.items()):
        for system in CONTACT_OBJECTS:
            if not people.get(email, {}).get(system):
                why = "; ".join(f"parked {parked[i]}" for i in person.ids.values() if i in parked)
                result.violations.append(f"missing: {email} (seeded in {sorted(person.ids)}) never reached "
                                         f"{system}{'; ' + why if why else ''}")  # fmt: skip


async def _customer_links(result: AuditResult, sandbox: SandboxProcess, links: list[sqlite3.Row],
                          people: dict[str, dict[str, list[dict[str, Any]]]], live_ids: dict[str, set[str]]) -> None:
    """Each customer link joins two live records of the same person; each person linked once per mapping."""
    email_by_id = {(s, record_id(s, r)): e for e, systems in people.items() for s, rs in systems.items() for r in rs}
    per_person: Counter[tuple[str, str]] = Counter()
    for row in (r for r in links if r["object"] == "customer"):
        crm = row["crm_system"]
        if row["crm_id"] not in live_ids[crm] or row["acc_id"] not in live_ids["zohobooks"]:
            result.violations.append(f"dangling link: {_describe(row)} names a record that does not exist")
            continue
        crm_email, acc_email = email_by_id[(crm, row["crm_id"])], email_by_id[("zohobooks", row["acc_id"])]
        if crm_email != acc_email:
            result.violations.append(f"wrong link: {_describe(row)} joins {crm_email} and {acc_email}")
        per_person[(row["mapping"], crm_email)] += 1
    for email in people:
        for mapping in MAPPINGS.values():
            if per_person[(mapping, email)] != 1:
                result.violations.append(f"link count: {email} has {per_person[(mapping, email)]} {mapping} "
                                         f"customer links")  # fmt: skip


async def _invoices(result: AuditResult, sandbox: SandboxProcess, links: list[sqlite3.Row], population: Population,
                    editor: Editor, people: dict[str, dict[str, list[dict[str, Any]]]]) -> None:
    """One invoice per deal won during the run, for that person and amount; none for history; none twice."""
    invoices = {str(r["invoice_id"]): r for r in await sandbox.records("zohobooks", "invoices") if not is_gone(r)}
    result.counts["zoho invoices"] = len(invoices)
    expected = population.seeded_invoices + len(editor.wins)
    if len(invoices) != expected:
        result.violations.append(f"invoice count: {len(invoices)} invoices in Zoho Books, expected {expected} "
                                 f"({population.seeded_invoices} seeded + {len(editor.wins)} deals won)")  # fmt: skip
    # The references syncd writes (its create references) are one per deal; the seeded history's are the deal's
    # name, which two people's deals share ("Smith – Extra seats (10)"), so those are no sign of a duplicate.
    references = Counter(str(r.get("reference_number") or "") for r in invoices.values())
    for reference, n in references.items():
        if reference.startswith("syncd-") and n > 1:
            result.violations.append(f"duplicate: {n} invoices carry reference {reference!r}")
    deals = {s: {record_id(s, r): r for r in await sandbox.records(s, obj)} for s, obj in DEAL_OBJECTS.items()}
    invoice_links: dict[tuple[str, str], list[sqlite3.Row]] = defaultdict(list)
    for row in (r for r in links if r["object"] == "invoice"):
        invoice_links[(row["crm_system"], row["crm_id"])].append(row)
        if row["crm_id"] not in deals[row["crm_system"]] or row["acc_id"] not in invoices:
            result.violations.append(f"dangling link: {_describe(row)} names a record that does not exist")
    customer_of = {(row["mapping"], row["crm_id"]): row["acc_id"] for row in links if row["object"] == "customer"}
    crm_id_of = {(s, e): record_id(s, rs[0]) for e, systems in people.items() for s, rs in systems.items() if rs}
    for win in editor.wins:
        deal = win.deal
        found = invoice_links.get((deal.system, deal.id), [])
        if len(found) != 1:
            result.violations.append(f"won deal: {deal.system} deal {deal.id} of {deal.person} (won {win.closed}) "
                                     f"has {len(found)} invoice links")  # fmt: skip
            continue
        invoice = invoices.get(found[0]["acc_id"])
        if invoice is None:
            continue
        customer = customer_of.get((MAPPINGS[deal.system], crm_id_of.get((deal.system, deal.person))))
        if invoice.get("customer_id") != customer or _money(invoice.get("total")) != _money(deal.amount):
            result.violations.append(
                f"wrong invoice: {deal.system} deal {deal.id} of {deal.person} ({deal.amount}) has invoice "
                f"{invoice.get('invoice_id')} of customer {invoice.get('customer_id')} (expected {customer}) "
                f"for {invoice.get('total')}"
            )


def _money(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        return None


async def _payments(result: AuditResult, sandbox: SandboxProcess) -> None:
    """No payment written twice to an opportunity."""
    payments = [r for r in await sandbox.records("salesforce", "Payment__c") if not is_gone(r)]
    result.counts["salesforce payments"] = len(payments)
    seen = Counter((r.get("Opportunity__c"), r.get("Reference__c"), str(r.get("Amount__c"))) for r in payments)
    for key, n in seen.items():
        if n > 1:
            result.violations.append(f"duplicate: {n} Payment__c records for opportunity/reference/amount {key}")


def _conflicts_of(store: StoreRows, people: dict[str, dict[str, list[dict[str, Any]]]], email: str,
                  name: str) -> list[str]:
    ids = {record_id(s, rs[0]) for s, rs in people.get(email, {}).items() if rs}
    return [f"{c['mapping']} #{c['id']}" for c in store.open_conflicts if c["field"] == name and c["crm_id"] in ids]


def _edits(result: AuditResult, editor: Editor, people: dict[str, dict[str, list[dict[str, Any]]]],
           store: StoreRows) -> None:
    """The last edit of every (person, field) the background editor touched is in every system."""
    result.counts["edits"] = editor.edits
    result.counts["edited fields"] = len(editor.expected)
    for (email, name), edit in sorted(editor.expected.items()):
        want = canonical(name, edit.value)
        for system, records in people.get(email, {}).items():
            held = field_value(system, records[0], name) if records else None
            if held != want:
                conflicts = _conflicts_of(store, people, email, name)
                result.violations.append(
                    f"lost edit: {email} {name} = {want!r} (edited in {edit.system}) but {system} holds {held!r}"
                    f"{'; open conflicts ' + ', '.join(conflicts) if conflicts else ''}"
                )


def _clashes(result: AuditResult, editor: Editor, people: dict[str, dict[str, list[dict[str, Any]]]],
             store: StoreRows) -> None:
    """A `manual` clash is an open conflict with both sides kept; an `accounting` clash ends as Zoho Books has
    it, the CRM's value dropped by the rule with an audit row saying so; no other conflict is open."""
    result.counts["clashes"] = len(editor.clashes)
    expected_conflicts: set[tuple[str, str, str]] = set()
    for clash in editor.clashes:
        records = {s: rs[0] for s, rs in people.get(clash.person, {}).items() if rs}
        if set(records) != set(CONTACT_OBJECTS):
            continue  # reported as missing already
        held = {s: field_value(s, r, clash.field) for s, r in records.items()}
        crm_value, acc_value = canonical(clash.field, clash.crm_value), canonical(clash.field, clash.acc_value)
        other = "salesforce" if clash.crm == "hubspot" else "hubspot"
        crm_id = record_id(clash.crm, records[clash.crm])
        if clash.field == "phone":
            expected_conflicts.add((MAPPINGS[clash.crm], crm_id, clash.field))
            want = {clash.crm: crm_value, "zohobooks": acc_value, other: acc_value}
            if not any(c["mapping"] == MAPPINGS[clash.crm] and c["crm_id"] == crm_id and c["field"] == "phone"
                       for c in store.open_conflicts):  # fmt: skip
                result.violations.append(f"missing conflict: {clash.person} phone changed to {crm_value!r} in "
                                         f"{clash.crm} and {acc_value!r} in Zoho Books, no conflict open; "
                                         f"held {held}")  # fmt: skip
        else:
            want = dict.fromkeys(CONTACT_OBJECTS, acc_value)
            if not any(a["system"] == clash.crm and a["record_id"] == crm_id
                       and crm_value in {canonical(clash.field, v) for v in _values(a["fields_before"])}
                       and acc_value in {canonical(clash.field, v) for v in _values(a["fields_after"])}
                       for a in store.audit):  # fmt: skip
                result.violations.append(
                    f"unaudited rule: {clash.person} {clash.field} {crm_value!r} in {clash.crm} replaced by the "
                    f"accounting rule without an audit row"
                )
        for system, value in want.items():
            if held[system] != value:
                result.violations.append(f"lost edit: clash on {clash.person} {clash.field}: {system} holds "
                                         f"{held[system]!r}, expected {value!r} (crm {crm_value!r} in "
                                         f"{clash.crm}, accounting {acc_value!r})")  # fmt: skip
    for conflict in store.open_conflicts:
        if (conflict["mapping"], conflict["crm_id"], conflict["field"]) not in expected_conflicts:
            result.violations.append(
                f"unexpected conflict: {conflict['mapping']} {conflict['object']} crm {conflict['crm_id']} / acc "
                f"{conflict['acc_id']} field {conflict['field']} (base {conflict['base_value']}, crm "
                f"{conflict['crm_value']}, acc {conflict['acc_value']}) although one side only was changed"
            )


def _values(raw: Any) -> list[Any]:
    data = json.loads(raw) if isinstance(raw, str) else raw
    return list(data.values()) if isinstance(data, dict) else []
