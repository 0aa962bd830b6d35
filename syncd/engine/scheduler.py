"""Polling on a schedule: one APScheduler job per mapping × object × side read, each on its connection's
interval, never two at once for one mapping, and paused while a connection it uses needs re-authorisation."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobSubmissionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from syncd.connectors.budget import PriorityLock
from syncd.engine.context import side_object
from syncd.engine.plan import SyncReport
from syncd.engine.reconcile import Reconciler, read_sides
from syncd.logs import get_logger
from syncd.mapping.spec import Side
from syncd.settings import Settings
from syncd.web.metrics import Metrics

log = get_logger(__name__)


class _SkippedRunFilter(logging.Filter):
    """Drops APScheduler's warning for every run skipped while the previous one still runs: a long poll
    (a first backfill) would repeat it each interval; `PollScheduler` logs the streak once instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in str(record.msg)


_SKIPPED_RUN_FILTER = _SkippedRunFilter()


@dataclass(frozen=True)
class PollJob:
    """What one polling job reads: one side of one mapped object, through `connection`, every `interval_s`."""

    mapping: str
    object: str
    side: Side
    system_object: str  # the object's name on the polled system (`contacts`, `Contact`, `invoices`...)
    connection: str  # the connection polled
    uses: frozenset[str]  # every connection the job reads or writes through (both sides of the mapping)
    interval_s: float

    @property
    def id(self) -> str:
        """The job's id in the scheduler."""
        return f"poll:{self.mapping}:{self.object}:{self.side}"


def poll_jobs(settings: Settings, reconciler: Reconciler) -> list[PollJob]:
    """A job per active mapping × object × side it copies from, in dependency order."""
    names = {connector.system: connector.name for connector in reconciler.connectors.values()}
    jobs = []
    for active in reconciler.mappings:
        crm, acc = names[active.mapping.crm_system], names[active.mapping.acc_system]
        for object_name in active.mapping.order:
            mapper = active.mapping.objects[object_name]
            for side in read_sides(mapper):
                connection = crm if side == "crm" else acc
                interval = settings.connections[connection].poll_interval_s or settings.polling.interval_s
                jobs.append(
                    PollJob(
                        active.name,
                        object_name,
                        side,
                        side_object(mapper, side),
                        connection,
                        frozenset({crm, acc}),
                        interval,
                    )
                )
    return jobs


def did_something(report: SyncReport) -> bool:
    """Whether a run changed or found anything a person may want to know of: any action but a record skipped
    (a filter or `sync_from` leaving it out, said again each time it is read), or any error."""
    return report.error_count > 0 or any(kind != "skip" for kind in report.counts())


class MappingLocks:
    """One lock per mapping: its polling jobs and its inbox processing never run at the same time, because
    they would read and commit the same links and cursors. Webhook work waiting for it goes before the next
    poll (`webhook_work`)."""

    def __init__(self) -> None:
        self._locks: dict[str, PriorityLock] = {}

    def of(self, mapping: str) -> PriorityLock:
        """The lock of `mapping` (created on first use)."""
        return self._locks.setdefault(mapping, PriorityLock())


#: Called after every job run with the job and its report (the daemon checks connection health there).
AfterPoll = Callable[[PollJob, SyncReport], Awaitable[None]]


class PollScheduler:
    """An `AsyncIOScheduler` (in-memory job store) running `PollJob`s through the reconciler."""

    def __init__(
        self,
        reconciler: Reconciler,
        jobs: Collection[PollJob],
        locks: MappingLocks,
        *,
        after_poll: AfterPoll | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._reconciler = reconciler
        self._jobs = {job.id: job for job in jobs}
        self._locks = locks
        self._after_poll = after_poll
        self._metrics = metrics
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._paused: set[str] = set()  # job ids paused because a connection they use needs re-authorisation
        self._unusable: frozenset[str] = frozenset()  # the connections needing re-authorisation
        self._running = 0
        self._idle = asyncio.Condition()
        self.runs_completed = 0
        self.last_reports: dict[str, SyncReport] = {}  # by job id: what its latest finished run did
        self.runs_by_job: Counter[str] = Counter()
        # Jobs whose runs outlast their interval: logged when the streak starts and when a run fits again.
        self._overrunning: set[str] = set()
        self._skipped_meanwhile: set[str] = set()  # jobs with a run skipped during their current run

    @property
    def jobs(self) -> Mapping[str, PollJob]:
        """Every polling job by id."""
        return self._jobs

    @property
    def paused(self) -> frozenset[str]:
        """Ids of the jobs paused for a connection that needs re-authorisation."""
        return frozenset(self._paused)

    def start(self, *, unusable: Collection[str] = ()) -> None:
        """Schedule every job to run now (to catch up after downtime) and then on its interval; jobs using an
        `unusable` connection start paused."""
        for job in self._jobs.values():
            self._add(job)
        scheduler_log = logging.getLogger("apscheduler.scheduler")
        if _SKIPPED_RUN_FILTER not in scheduler_log.filters:
            scheduler_log.addFilter(_SKIPPED_RUN_FILTER)
        self._scheduler.add_listener(self._run_skipped, EVENT_JOB_MAX_INSTANCES)
        self._scheduler.start()
        self.set_unusable(unusable)

    def _add(self, job: PollJob) -> None:
        """Schedule `job` to run now and then every `interval_s`."""
        self._scheduler.add_job(
            self._run,
            "interval",
            seconds=job.interval_s,
            args=(job,),
            id=job.id,
            name=job.id,
            next_run_time=datetime.now(UTC),
            max_instances=1,
            coalesce=True,
            # A job late because the loop was busy still runs (once, thanks to coalesce), never skipped.
            misfire_grace_time=None,
        )

    def replace_jobs(self, jobs: Collection[PollJob]) -> None:
        """Poll `jobs` from now on (the mapping files were reloaded): jobs no longer wanted stop (a run in
        progress finishes), new ones run at once, kept ones keep their schedule (rescheduled if their interval
        changed); those using a connection that needs re-authorisation stay paused."""
        wanted = {job.id: job for job in jobs}
        running = self._scheduler.running
        for job_id in set(self._jobs) - set(wanted):
            if running:
                self._scheduler.remove_job(job_id)
            self._paused.discard(job_id)
            self._overrunning.discard(job_id)
            self._skipped_meanwhile.discard(job_id)
        for job_id, job in wanted.items():
            old = self._jobs.get(job_id)
            if not running or old == job:
                continue
            if old is None:
                self._add(job)
            elif old.interval_s != job.interval_s:
                self._scheduler.modify_job(job_id, args=(job,))
                self._scheduler.reschedule_job(job_id, trigger="interval", seconds=job.interval_s)
            else:
                self._scheduler.modify_job(job_id, args=(job,))
        self._jobs = wanted
        self.set_unusable(self._unusable)

    def _run_skipped(self, event: JobSubmissionEvent) -> None:
        """A run came due while the job's previous run still goes on: it is skipped (the next run reads from
        the cursor anyway); said once per streak, and counted."""
        if event.job_id not in self._jobs:
            return  # a housekeeping chore: no poll, no streak
        if self._metrics is not None:
            self._metrics.count_poll(event.job_id, "skipped")
        self._skipped_meanwhile.add(event.job_id)
        if event.job_id not in self._overrunning:
            self._overrunning.add(event.job_id)
            log.warning("poll runs longer than its interval; runs due meanwhile are skipped", job=event.job_id)

    def _end_streak(self, job_id: str) -> None:
        """A run ended: if nothing was skipped during it, a streak of overlong runs is over."""
        if job_id in self._skipped_meanwhile:
            self._skipped_meanwhile.discard(job_id)
        elif job_id in self._overrunning:
            self._overrunning.discard(job_id)
            log.info("poll fits its interval again", job=job_id)

    def add_housekeeping(self, name: str, func: Callable[[], Awaitable[None]], interval_s: float) -> None:
        """A periodic chore beside the polls (not under any mapping's lock)."""
        self._scheduler.add_job(self._chore, "interval", seconds=interval_s, args=(name, func),
                                id=f"housekeeping:{name}", name=name, max_instances=1, coalesce=True,
                                misfire_grace_time=None)

    def set_unusable(self, connections: Collection[str]) -> None:
        """Pause the jobs that use any of `connections` and resume those that no longer do."""
        self._unusable = frozenset(connections)
        if not self._scheduler.running:
            return  # `start` applies the daemon's current set
        for job in self._jobs.values():
            blocked = job.uses & set(connections)
            if blocked and job.id not in self._paused:
                self._scheduler.pause_job(job.id)
                self._paused.add(job.id)
                log.warning("polling paused: connection needs re-authorisation", job=job.id,
                            connections=sorted(blocked))
            elif not blocked and job.id in self._paused:
                self._scheduler.resume_job(job.id)
                # Run at once: changes piled up while the connection was stopped.
                self._scheduler.modify_job(job.id, next_run_time=datetime.now(UTC))
                self._paused.discard(job.id)
                log.info("polling resumed", job=job.id)

    async def stop(self, timeout_s: float) -> None:
        """Fire nothing more, let running jobs finish (cancelled after `timeout_s`), then shut down."""
        if not self._scheduler.running:
            return
        self._scheduler.pause()
        try:
            async with self._idle:
                await asyncio.wait_for(self._idle.wait_for(lambda: self._running == 0), timeout_s)
        except TimeoutError:
            log.error("polling did not finish in time; cancelling it", timeout_s=timeout_s)
        # The scheduler cancels whatever is still running, and its shutdown runs as a loop callback:
        # yielding once lets that callback run before the loop may be closed.
        self._scheduler.shutdown(wait=False)
        await asyncio.sleep(0)

    async def _chore(self, name: str, func: Callable[[], Awaitable[None]]) -> None:
        """One run of a housekeeping chore, counted as running so that stop waits for it too."""
        async with self._idle:
            self._running += 1
        try:
            await func()
        except Exception as exc:
            log.exception("housekeeping failed", chore=name, error=str(exc))
        finally:
            async with self._idle:
                self._running -= 1
                self._idle.notify_all()

    async def _run(self, job: PollJob) -> None:
        """One run of a job under its mapping's lock; never raises (a failure is logged, the job stays)."""
        if self._jobs.get(job.id) != job:
            return  # submitted just before a reload replaced or dropped it
        async with self._idle:
            self._running += 1
        try:
            async with self._locks.of(job.mapping):
                report = await self._reconciler.run_object(job.mapping, job.object, (job.side,))
            # One line per poll that did something; an idle poll every interval is no event.
            say = log.info if did_something(report) else log.debug
            say("poll done", job=job.id, counts=report.counts(), errors=report.error_count)
            if self._metrics is not None:
                self._metrics.count_poll(job.id, "ok")
                self._metrics.count_sync("poll", job.mapping, job.object,
                                         report.tallied(), report.error_count)
            self.runs_completed += 1
            self.runs_by_job[job.id] += 1
            self.last_reports[job.id] = report
        except Exception as exc:
            # A bug or an outage in one run must not stop the schedule: the next run tries again.
            log.exception("poll failed", job=job.id, error=str(exc))
            if self._metrics is not None:
                self._metrics.count_poll(job.id, "failed")
        else:
            if self._after_poll is not None:
                # Not the poll's failure if this fails: logged on its own, the run stays counted as done.
                try:
                    await self._after_poll(job, report)
                except Exception as exc:
                    log.exception("after-poll check failed", job=job.id, error=str(exc))
        finally:
            self._end_streak(job.id)
            async with self._idle:
                self._running -= 1
                self._idle.notify_all()
