"""A chaos run: the sandbox in its own process, seeded; `syncd run` (or `syncd sync --once` in a loop) started
and SIGKILLed at seeded random moments while people edit all three systems; optionally 5xx, 429s, timeouts,
duplicated and reordered webhooks, tokens expiring every few seconds and one grant revoked and restored; then
passes until nothing is left to write, and the audit of every system."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tests.chaos.audit import AuditResult, StoreRows, audit, field_value
from tests.chaos.edits import Editor, clash_fields
from tests.chaos.population import CONTACT_OBJECTS, Person, Population, is_gone, record_id, seed
from tests.chaos.processes import (
    SANDBOX_LIMITS,
    SYSTEMS,
    Child,
    SandboxProcess,
    free_port,
    hubspot_grant,
    reauthorise,
    run_syncd,
    write_config,
)

Mode = Literal["run", "once"]
FAULTS = {"error_rate": 0.2, "rate_limit_rate": 0.1, "timeout_rate": 0.02, "duplicate_webhooks": 1.0,
          "reorder_webhooks": True}  # fmt: skip
TOKEN_LIFETIME_S = 5
REVOKED = "hubspot"  # the connection whose grant is revoked mid-run (restored by `syncd auth hubspot`)
SETTLE_PASSES = 12


@dataclass(frozen=True)
class Plan:
    """What to run: how many people, how many SIGKILLs, which process, with or without faults."""

    people: int
    kills: int
    mode: Mode = "run"
    faults: bool = False
    seed: int = 1
    kill_after_s: tuple[float, float] = (3.0, 12.0)  # a SIGKILL lands this long after each (re)start
    edit_pace_s: float = 0.3
    clashes_per_gap: int = 2
    # The kills go on (past `kills`) until this many edits were confirmed on linked people, or `longest_s` is
    # up: under faults the first links come late, and edits must still arrive during the crashes.
    min_edits: int = 10
    longest_s: float = 300.0
    final_clashes: int = 6
    poll_interval_s: float = 5.0


@dataclass
class Outcome:
    """What happened, for the summary and the tests."""

    plan: Plan
    kills: int = 0
    exits: list[int] = field(default_factory=list)  # exit codes of processes that ended by themselves
    passes: int = 0  # sync --once passes that finished (chaos phase and settling)
    settle_passes: list[dict[str, Any]] = field(default_factory=list)
    settled: bool = False
    mixed_case_emails: int = 0
    revoked_at_s: float | None = None
    restored_at_s: float | None = None
    token_expiries: int = 0
    editor_failed_writes: int = 0
    wins: int = 0
    seconds: float = 0.0
    audit: AuditResult = field(default_factory=AuditResult)

    def summary(self) -> str:
        """The figures in a few lines."""
        plan = self.plan
        lines = [
            f"chaos run: {plan.people} people, `syncd {'run' if plan.mode == 'run' else 'sync --once'}`, "
            f"faults {'on' if plan.faults else 'off'}, seed {plan.seed}, {self.seconds:.0f} s",
            f"  SIGKILLs: {self.kills}; processes that ended by themselves: {len(self.exits)} "
            f"(exit codes {sorted(set(self.exits))}); sync passes: {self.passes}",
            f"  settled after {len(self.settle_passes)} final passes: {'yes' if self.settled else 'NO'}",
            f"  edits: {self.audit.counts.get('edits', 0)} confirmed on {self.audit.counts.get('edited fields', 0)} "
            f"fields ({self.editor_failed_writes} refused by faults and written again), {self.wins} deals won, "
            f"{self.audit.counts.get('clashes', 0)} clashes, {self.mixed_case_emails} e-mails retyped in mixed case",
        ]
        if plan.faults:
            lines.append(f"  faults: {json.dumps(FAULTS)}; tokens live {TOKEN_LIFETIME_S} s and were expired "
                         f"{self.token_expiries} times; {REVOKED} revoked at {self.revoked_at_s:.0f} s, restored "
                         f"by `syncd auth` at {self.restored_at_s:.0f} s; faults off for the final passes")  # fmt: skip
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.audit.counts.items()))
        lines.append(f"  final counts: {counts}")
        if self.audit.ok:
            lines.append("  audit: every invariant held")
        else:
            lines.append(f"  audit: {len(self.audit.violations)} violations {self.audit.by_kind()}")
            lines.extend(f"    {v}" for v in self.audit.violations[:40])
        return "\n".join(lines)


class Run:
    """One chaos run over its own working folder."""

    def __init__(self, plan: Plan, workdir: Path) -> None:
        self.plan = plan
        self.workdir = workdir
        self.rng = random.Random(plan.seed)
        self.outcome = Outcome(plan)
        self.log = workdir / "syncd.log"
        self.started = time.monotonic()

    async def execute(self) -> Outcome:
        """Run the whole thing; the sandbox is stopped whatever happens."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        sandbox = await SandboxProcess.start(self.workdir)
        try:
            return await self._with(sandbox)
        finally:
            await sandbox.stop()

    def _elapsed(self) -> float:
        return time.monotonic() - self.started

    async def _with(self, sandbox: SandboxProcess) -> Outcome:
        plan = self.plan
        for system in SYSTEMS:
            await sandbox.control(system, "limits", SANDBOX_LIMITS[system])
        population = await seed(sandbox, plan.people, plan.seed)
        editor = Editor(sandbox, population, self.rng)
        await editor.start()
        try:
            self.outcome.mixed_case_emails = await editor.retype_emails()
            webhook_port = free_port()
            config = write_config(sandbox, self.workdir, webhook_port, plan.poll_interval_s)
            code, _ = await run_syncd(config, "db", "upgrade", log=self.log)
            assert code == 0, f"syncd db upgrade failed; see {self.log}"
            if plan.mode == "run":
                # Salesforce's change feed and Zoho Books' workflow rules post to the daemon; HubSpot's
                # subscriptions are registered by the daemon itself.
                for system in ("salesforce", "zohobooks"):
                    await sandbox.control(system, "webhooks",
                                          {"urls": [f"http://127.0.0.1:{webhook_port}/webhooks/{system}"]})  # fmt: skip
            if plan.faults:
                await sandbox.everywhere("faults", FAULTS)
                await sandbox.everywhere("limits", {"token_lifetime_s": TOKEN_LIFETIME_S})
            stop = asyncio.Event()
            background = [asyncio.create_task(editor.run(stop, plan.edit_pace_s)),
                          asyncio.create_task(self._follow_links(editor, population, stop))]
            if plan.faults:
                background.append(asyncio.create_task(self._expire_tokens(sandbox, stop)))
            try:
                await self._kill_loop(sandbox, config, editor, population)
            finally:
                stop.set()
                await asyncio.gather(*background)
            if REVOKED in editor.paused:
                await self._restore(sandbox, config, editor)
            if plan.faults:
                # The clean finish: the systems answer normally again (Zoho Books' 429 asks for a 60 s pause,
                # so settling 2,000 people under 10% of them would take hours, and prove nothing more).
                await sandbox.everywhere("faults", {})
            await editor.finish()
            await self._settle(config)
            # One more round of clashes on settled people, then the last passes: every clash is checked even
            # when the kills came before the first sync had linked anyone.
            await self._clash(sandbox, config, editor, plan.final_clashes)
            await self._settle(config)
            self.outcome.wins = len(editor.wins)
            self.outcome.editor_failed_writes = editor.failed_writes
            self.outcome.audit = await audit(sandbox, self.workdir / "syncd.db", population, editor)
            if not self.outcome.settled:
                self.outcome.audit.violations.append(
                    f"not settled: {SETTLE_PASSES} passes of `syncd sync --once` still found work to do"
                )
        finally:
            await editor.close()
        self.outcome.seconds = self._elapsed()
        # Every violation in full (the summary shows the first 40), for the post-mortem.
        (self.workdir / "violations.txt").write_text("".join(f"{v}\n" for v in self.outcome.audit.violations))
        return self.outcome

    async def _kill_loop(self, sandbox: SandboxProcess, config: Path, editor: Editor, population: Population) -> None:
        """Start syncd, SIGKILL it at a random moment, clash in the gap, start it again; `kills` times."""
        plan = self.plan
        args = ("run",) if plan.mode == "run" else ("sync", "--once", "--json")
        revoke_at, restore_at = plan.kills // 3, (2 * plan.kills) // 3
        while self.outcome.kills < plan.kills or (editor.edits < plan.min_edits
                                                   and self._elapsed() < plan.longest_s):
            deadline = time.monotonic() + self.rng.uniform(*plan.kill_after_s)
            while True:
                child = await Child.start(config, args, self.log)
                if await child.exited_within(max(0.0, deadline - time.monotonic())):
                    code = child.process.returncode
                    assert code is not None
                    if plan.mode == "once":
                        self.outcome.passes += 1
                    else:
                        self.outcome.exits.append(code)  # the daemon is not meant to end by itself
                    if plan.mode == "run" or time.monotonic() >= deadline:
                        break
                    continue
                await child.kill()
                self.outcome.kills += 1
                break
            # syncd is down: whatever is changed now, it sees together.
            await self._clash(sandbox, config, editor, plan.clashes_per_gap)
            if plan.faults and self.outcome.kills == revoke_at and REVOKED not in editor.paused \
                    and self.outcome.revoked_at_s is None:
                editor.paused.add(REVOKED)
                await sandbox.control(REVOKED, "revoke", {})
                self.outcome.revoked_at_s = self._elapsed()
            if plan.faults and self.outcome.kills == restore_at and REVOKED in editor.paused:
                await self._restore(sandbox, config, editor)

    async def _restore(self, sandbox: SandboxProcess, config: Path, editor: Editor) -> None:
        """`syncd auth` stores a new grant for syncd; the harness's own user signs in again too."""
        await reauthorise(config, REVOKED, self.log)
        await editor.regrant(REVOKED, await hubspot_grant(sandbox))
        self.outcome.restored_at_s = self._elapsed()

    async def _follow_links(self, editor: Editor, population: Population, stop: asyncio.Event) -> None:
        """Tell the editor, every second or so, who is linked in every mapping by now (from syncd's store)."""
        while not stop.is_set():
            editor.linked = _fully_linked(population, _linked_pairs(self.workdir / "syncd.db"))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)

    async def _expire_tokens(self, sandbox: SandboxProcess, stop: asyncio.Event) -> None:
        """Every few seconds every access token everywhere stops working."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.rng.uniform(2.0, 6.0))
            if not stop.is_set():
                await sandbox.everywhere("expire-tokens", {})
                self.outcome.token_expiries += 1

    async def _settle(self, config: Path) -> None:
        """`syncd sync --once` until a pass has nothing to write and no error."""
        self.outcome.settled = False
        for _ in range(SETTLE_PASSES):
            code, out = await run_syncd(config, "sync", "--once", "--json", log=self.log)
            self.outcome.passes += 1
            try:
                report = json.loads(out)
            except ValueError:
                report = {"settled": False, "error_count": -1, "counts": {}, "errors": [out[-500:]]}
            self.outcome.settle_passes.append(
                {"exit": code, "settled": report["settled"], "errors": report["error_count"],
                 "counts": report["counts"]}
            )  # fmt: skip
            if report["settled"] and report["error_count"] == 0:
                self.outcome.settled = True
                return

    async def _clash(self, sandbox: SandboxProcess, config: Path, editor: Editor, count: int) -> None:
        """Up to `count` clashes on people linked everywhere whose three records agree (syncd is down)."""
        if count <= 0 or not editor.clashable:
            return
        linked = _linked_pairs(self.workdir / "syncd.db")
        records = {s: {record_id(s, r): r for r in await sandbox.records(s, obj) if not is_gone(r)}
                   for s, obj in CONTACT_OBJECTS.items()}  # fmt: skip
        crms = [s for s in ("hubspot", "salesforce") if s not in editor.paused]
        made = 0
        for person in list(editor.clashable):
            if made >= count or not crms:
                return
            name = clash_fields()[len(editor.clashes) % len(clash_fields())]
            if _settled_person(person, name, linked, records):
                await editor.clash(person, name, crms[len(editor.clashes) % len(crms)])
                made += 1


def _linked_pairs(database: Path) -> set[tuple[str, str, str]]:
    """(mapping, crm id, acc id) of every linked customer."""
    if not database.exists():
        return set()
    try:
        rows = StoreRows.read(database).links
    except sqlite3.OperationalError:
        return set()  # the schema is not there yet
    return {(r["mapping"], r["crm_id"], r["acc_id"]) for r in rows if r["object"] == "customer"
            and r["state"] == "linked"}  # fmt: skip


def _fully_linked(population: Population, linked: set[tuple[str, str, str]]) -> set[str]:
    """E-mails of the people whose seeded record is linked to a Zoho Books customer that both mappings link."""
    acc_of: dict[tuple[str, str], str] = {}
    mappings_of: dict[str, set[str]] = {}
    for mapping, crm_id, acc_id in linked:
        acc_of[(mapping, crm_id)] = acc_id
        mappings_of.setdefault(acc_id, set()).add(mapping)
    ready: set[str] = set()
    for person in population.people.values():
        acc = person.ids.get("zohobooks")
        for system, mapping in (("hubspot", "hubspot-zohobooks"), ("salesforce", "salesforce-zohobooks")):
            if acc is None and system in person.ids:
                acc = acc_of.get((mapping, person.ids[system]))
        if acc is not None and mappings_of.get(acc, set()) == {"hubspot-zohobooks", "salesforce-zohobooks"}:
            ready.add(person.email)
    return ready


def _settled_person(person: Person, name: str, linked: set[tuple[str, str, str]],
                    records: dict[str, dict[str, dict[str, Any]]]) -> bool:
    """Linked in both mappings, and the field the same in all three systems."""
    acc = person.ids["zohobooks"]
    if ("hubspot-zohobooks", person.ids["hubspot"], acc) not in linked:
        return False
    if ("salesforce-zohobooks", person.ids["salesforce"], acc) not in linked:
        return False
    found = [records[s].get(person.ids[s]) for s in CONTACT_OBJECTS]
    if any(r is None for r in found):
        return False
    values = {field_value(s, r, name) for s, r in zip(CONTACT_OBJECTS, found, strict=True) if r is not None}
    return len(values) == 1 and "" not in values


async def run_plan(plan: Plan, workdir: Path) -> Outcome:
    """Run one plan in `workdir` and return what happened."""
    return await Run(plan, workdir).execute()


__all__: Sequence[str] = ("FAULTS", "Outcome", "Plan", "Run", "run_plan")
