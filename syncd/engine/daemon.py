"""The daemon behind `syncd run`: the engine, scheduled polling, the webhook receiver feeding the inbox, and
the admin listener, with an explicit start/stop lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Sequence
from datetime import timedelta

from aiohttp import web

from syncd.connectors.base import Connector
from syncd.connectors.storage import VaultTokenStorage
from syncd.connectors.tokens import TokenManager
from syncd.engine.context import side_object
from syncd.engine.inbox import InboxDispatcher
from syncd.engine.notifications import Notifier, StoreWatcher
from syncd.engine.plan import SyncReport
from syncd.engine.reconcile import ActiveMapping, read_sides
from syncd.engine.scheduler import MappingLocks, PollJob, PollScheduler, poll_jobs
from syncd.engine.signals import announce_reauthorisation
from syncd.engine.wiring import Engine, active_mappings, check_mapping_names, missing_connections, open_engine
from syncd.errors import MappingError, SyncdError
from syncd.logs import get_logger
from syncd.settings import Settings
from syncd.store import ConnectionStore, InboxStore, TokenVault
from syncd.store.columns import utcnow
from syncd.store.inbox import InboxRetryPolicy
from syncd.web.admin import build_admin_app
from syncd.web.metrics import Metrics
from syncd.web.receiver import build_webhook_app, webhook_url
from syncd.web.server import Listener, serve

log = get_logger(__name__)

# Closing connectors and the store after the grace period is quick unless a call is stuck: a little extra.
CLOSE_MARGIN_S = 2.0


def system_objects(mappings: Sequence[ActiveMapping]) -> dict[tuple[str, str], tuple[str, str]]:
    """(mapping, mapped object) → (CRM object, accounting object), for the review pages' links into the systems."""
    return {
        (active.name, name): (mapper.crm_object, mapper.acc_object)
        for active in mappings
        for name, mapper in active.mapping.objects.items()
    }


class DaemonError(SyncdError):
    """The daemon cannot start (e.g. a listener's port is taken)."""


class Daemon:
    """Keeps the systems in step until stopped: `await start()`, then `await stop()` (safe to call twice)."""

    def __init__(
        self,
        settings: Settings,
        *,
        metrics: Metrics | None = None,
        inbox_interval_s: float = 5.0,
        inbox_retry: InboxRetryPolicy | None = None,
        health_interval_s: float = 30.0,
        prune_interval_s: float = 3600.0,
        stop_grace_s: float | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self._inbox_interval_s = inbox_interval_s
        self._inbox_retry = inbox_retry
        self._health_interval_s = health_interval_s
        self._prune_interval_s = prune_interval_s
        self._stop_grace_s = settings.daemon.stop_grace_s if stop_grace_s is None else stop_grace_s
        self.abandoned_calls = False
        self._exit = contextlib.AsyncExitStack()
        self._engine: Engine | None = None
        self._scheduler: PollScheduler | None = None
        self._dispatcher: InboxDispatcher | None = None
        self._webhooks: Listener | None = None
        self._admin: Listener | None = None
        self._registration: asyncio.Task[None] | None = None
        self._unusable: frozenset[str] = frozenset()
        self._notifier: Notifier | None = None
        self._watcher: StoreWatcher | None = None
        self._started = False
        self._objects: dict[tuple[str, str], tuple[str, str]] = {}  # what the review pages link, kept current
        self._reloading = asyncio.Lock()

    # --- what tests and operators may look at -----------------------------------------------------------
    async def webhooks_registered(self) -> None:
        """Wait until the start-up webhook registration (run in the background) is over, however it went."""
        if self._registration is not None:
            await asyncio.wait([self._registration])

    @property
    def webhook_listener(self) -> Listener | None:
        """The webhook receiver's listener (None when `[webhooks].enabled` is false)."""
        return self._webhooks

    @property
    def admin_listener(self) -> Listener | None:
        """The admin listener (None when `[admin].enabled` is false)."""
        return self._admin

    @property
    def scheduler(self) -> PollScheduler:
        """The polling scheduler (once started)."""
        assert self._scheduler is not None, "the daemon is not started"
        return self._scheduler

    @property
    def dispatcher(self) -> InboxDispatcher:
        """The inbox dispatcher (once started)."""
        assert self._dispatcher is not None, "the daemon is not started"
        return self._dispatcher

    @property
    def unusable_connections(self) -> frozenset[str]:
        """Connections that need re-authorisation; their jobs and webhook events wait."""
        return self._unusable

    # --- lifecycle ---------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the engine, start the listeners, the inbox and polling, then register webhooks in the background."""
        if self._started:
            return
        self._started = True
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        settings = self.settings
        engine = await self._exit.enter_async_context(open_engine(settings))
        self._engine = engine
        reconciler = engine.reconciler
        states = ConnectionStore(engine.db)
        for connector in engine.connectors.values():
            await states.ensure(connector.name, connector.system)
        for name in await self._refresh_connections():
            state = await states.get(name)
            announce_reauthorisation(name, state.system if state else "?", state.last_error if state else None)
        self._notifier = Notifier.from_settings(settings.notifications)
        if self._notifier is not None:
            self._notifier.start()
            self._watcher = StoreWatcher(engine.db, self._notifier)
            await self._watcher.start()
        self._objects.update(system_objects(reconciler.mappings))
        locks = MappingLocks()
        self._dispatcher = InboxDispatcher(
            engine.db, reconciler, locks, usable=self._usable, interval_s=self._inbox_interval_s,
            after_round=self._check_connections, metrics=self.metrics, retry=self._inbox_retry,
        )
        self._scheduler = PollScheduler(reconciler, poll_jobs(settings, reconciler), locks,
                                        after_poll=self._after_poll, metrics=self.metrics)
        if settings.admin.enabled:
            self._admin = await self._listen(
                build_admin_app(db=engine.db, settings=settings, metrics=self.metrics,
                                on_requeue=self._dispatcher.wake, objects=self._objects),
                settings.admin.host, settings.admin.port, "admin", settings.admin.read_timeout_s,
            )
        if settings.webhooks.enabled:
            by_name = {c.name: c for c in engine.connectors.values()}
            app = build_webhook_app(
                db=engine.db,
                connectors=by_name,
                on_event=self._dispatcher.wake,
                metrics=self.metrics,
                public_url=settings.webhooks.public_url,
            )
            self._webhooks = await self._listen(app, settings.webhooks.host, settings.webhooks.port, "webhooks",
                                                settings.webhooks.read_timeout_s)
        # The inbox is drained even with webhooks off: events stored before a restart must not be stranded.
        self._dispatcher.start()
        self._scheduler.start(unusable=self._unusable)
        # Polls notice a grant dying; this notices one coming back (`syncd auth`) while its jobs are paused.
        self._scheduler.add_housekeeping("connections", self._check_connections, self._health_interval_s)
        # Once now (a daemon restarted daily must still prune), then hourly.
        await self._prune_inbox()
        self._scheduler.add_housekeeping("inbox pruning", self._prune_inbox, self._prune_interval_s)
        if self._webhooks is not None:
            # In the background: a portal's subscriptions take many one-at-a-time calls, and polling (started
            # above) covers changes until they are in place.
            self._registration = asyncio.create_task(
                self._register_webhooks(settings.webhooks.public_url or self._webhooks.url),
                name="webhook registration")
        log.info("daemon started", jobs=len(self._scheduler.jobs),
                 webhooks=self._webhooks.url if self._webhooks else None,
                 admin=self._admin.url if self._admin else None)

    async def reload_mappings(self) -> bool:
        """Read the active mapping files again (SIGHUP) and sync by them from now on, if all of them are valid
        and can run here (their systems connected, their names owning the store's links); otherwise log every
        problem and keep the running mappings. Polling jobs follow (new objects polled at once), work in
        progress finishes under the mappings it started with, and webhook subscriptions are brought up to
        date. Returns whether the new mappings were taken. The config file itself is not read again."""
        async with self._reloading:
            if self._engine is None or not self._started:
                log.warning("mapping reload ignored: the daemon is not running")
                return False
            files = [str(path) for path in self.settings.mappings.active]
            try:
                mappings = active_mappings(self.settings)
                await check_mapping_names(self._engine.db, mappings)
            except MappingError as exc:
                log.error("mapping files refused; the running mappings stay", files=files,
                          problems=[str(problem) for problem in exc.problems])
                return False
            missing = missing_connections(mappings, self._engine.connectors)
            if missing:
                log.error("mapping files refused; the running mappings stay", files=files, problems=missing)
                return False
            reconciler = self._engine.reconciler
            reconciler.mappings = mappings
            self._objects.clear()
            self._objects.update(system_objects(mappings))
            if self._scheduler is not None:
                self._scheduler.replace_jobs(poll_jobs(self.settings, reconciler))
            if self._webhooks is not None:
                previous, self._registration = self._registration, None
                if previous is not None:
                    previous.cancel()
                    await asyncio.wait([previous])
                self._registration = asyncio.create_task(
                    self._register_webhooks(self.settings.webhooks.public_url or self._webhooks.url),
                    name="webhook registration")
            log.info("mappings reloaded", mappings=[m.name for m in mappings],
                     jobs=len(self._scheduler.jobs) if self._scheduler is not None else 0)
            return True

    async def stop(self) -> None:
        """Stop taking webhooks, let the running poll and inbox round finish within the grace period
        (`[daemon].stop_grace_s`), cancel what is still waiting on a system after it, then close everything.
        `abandoned_calls` is then True if calls in worker threads (the vendor SDKs block) were left running."""
        if not self._started:
            return
        self._started = False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._stop_grace_s

        def left() -> float:
            return max(0.0, deadline - loop.time())

        try:
            registration, self._registration = self._registration, None
            if registration is not None:
                # Unfinished registration is simply resumed at the next start: it keeps what exists.
                registration.cancel()
                await asyncio.wait([registration])
            if self._webhooks is not None:
                await self._bounded("the webhook listener", self._webhooks.stop(), left())
                self._webhooks = None
            if self._scheduler is not None:
                await self._scheduler.stop(left())
            if self._dispatcher is not None:
                await self._dispatcher.stop(left())
            if self._admin is not None:
                await self._bounded("the admin listener", self._admin.stop(), left())
                self._admin = None
            if self._notifier is not None:
                await self._notifier.stop()
                self._notifier = self._watcher = None
        finally:
            # Closing a connector waits for its calls in flight; one stuck on an unreachable system is left.
            self.abandoned_calls = not await self._bounded("the connectors and the store", self._exit.aclose(),
                                                           left() + CLOSE_MARGIN_S)
            self._engine = None
            log.info("daemon stopped")

    @staticmethod
    async def _bounded(what: str, step: Awaitable[None], timeout_s: float) -> bool:
        """Run one shutdown step for at most `timeout_s`; False (logged, step cancelled) if it took longer."""
        try:
            await asyncio.wait_for(step, max(timeout_s, 0.01))
        except TimeoutError:
            log.warning("shutdown: stopped waiting", step=what, timeout_s=round(timeout_s, 2))
            return False
        return True

    async def _prune_inbox(self) -> None:
        """Delete inbox events processed more than `[webhooks].keep_processed_days` ago."""
        assert self._engine is not None
        keep = timedelta(days=self.settings.webhooks.keep_processed_days)
        pruned = await InboxStore(self._engine.db).prune_processed(utcnow() - keep)
        if pruned:
            log.info("inbox pruned", events=pruned, kept_days=self.settings.webhooks.keep_processed_days)

    # --- pieces --------------------------------------------------------------------------------------------
    async def _listen(self, app: web.Application, host: str, port: int, name: str, read_timeout_s: float
                      ) -> Listener:
        try:
            return await serve(app, host, port, name=name, read_timeout_s=read_timeout_s)
        except OSError as exc:
            raise DaemonError(f"cannot listen for {name} on {host}:{port}: {exc.strerror or exc}") from exc

    async def _register_webhooks(self, public_url: str) -> None:
        """Point each system's webhooks at us where its API allows; name the ones an admin must set up.

        Each connector is told what the active mappings read from it: for every mapped object whose changes on
        that connection are copied (its direction reads that side), the system object and the mapper's read
        fields there (`ObjectMapper.read_fields`: mapped fields, references, filters, extra fields, the create
        reference). A deal's line items count as its `line_items` field, as CRM connectors name it."""
        assert self._engine is not None
        mappings = self._engine.reconciler.mappings

        async def register(connector: Connector) -> None:
            url = webhook_url(public_url, connector.name)
            fields: dict[str, set[str]] = {}
            for active in mappings:
                for mapper in active.mapping.objects.values():
                    for side in read_sides(mapper):
                        system = active.mapping.crm_system if side == "crm" else active.mapping.acc_system
                        if system == connector.system:
                            fields.setdefault(side_object(mapper, side), set()).update(mapper.read_fields(side))
            try:
                registered = await connector.register_webhooks(url, fields)
            except SyncdError as exc:
                # Polling covers the gap; the operator sees why the webhooks are not there.
                log.warning("webhook registration failed; polling continues", connection=connector.name,
                            url=url, error=str(exc))
                return
            except Exception as exc:
                # A background task: an unexpected failure would otherwise go unseen until stop().
                log.exception("webhook registration failed unexpectedly; polling continues",
                              connection=connector.name, url=url, error=repr(exc))
                return
            if registered:
                log.info("webhooks registered", connection=connector.name, url=url)
            else:
                log.warning("webhooks must be set up by hand in the system's settings; polling covers "
                            "until then", connection=connector.name, system=connector.system, url=url)

        # Side by side: one portal's many subscription calls need not hold up another system's one call.
        await asyncio.gather(*(register(connector) for connector in self._engine.connectors.values()))

    def _usable(self, connection: str) -> bool:
        return connection not in self._unusable

    async def _refresh_connections(self) -> frozenset[str]:
        """Read which connections need re-authorisation; returns them."""
        assert self._engine is not None
        names = {c.name for c in self._engine.connectors.values()}
        states = await ConnectionStore(self._engine.db).list()
        self._unusable = frozenset(s.name for s in states if s.name in names and s.status == "needs_reauth")
        return self._unusable

    async def _after_poll(self, job: PollJob, report: SyncReport) -> None:
        """After every poll: stop (or restart) only the jobs of connections whose grant died (or came back)."""
        await self._check_connections()

    async def _check_connections(self) -> None:
        """Pause the jobs of connections needing re-authorisation (saying so once, and how to fix it), resume
        those authorised again; then notify what is new in the store (when notifications are configured)."""
        before = self._unusable
        unusable = await self._refresh_connections()
        for name in before - unusable:
            await self._take_new_grant(name)
        for name in sorted(unusable - before):
            assert self._engine is not None
            state = await ConnectionStore(self._engine.db).get(name)
            system, reason = (state.system, state.last_error) if state is not None else ("?", None)
            announce_reauthorisation(name, system, reason)
            if self._watcher is not None:
                self._watcher.reauthorisation_needed(name, system, reason)
        if self._scheduler is not None and unusable != before:
            self._scheduler.set_unusable(unusable)
        if self._watcher is not None:
            await self._watcher.check()

    @property
    def notifier(self) -> Notifier | None:
        """The outgoing notifier (None unless `[notifications] url` is set)."""
        return self._notifier

    async def _take_new_grant(self, connection: str) -> None:
        """`syncd auth` (another process) stored a new grant: hand it to our connector, whose token manager
        otherwise keeps refusing after the grant it had died."""
        assert self._engine is not None
        key = self.settings.security.key_bytes()
        connector = next(c for c in self._engine.connectors.values() if c.name == connection)
        tokens = getattr(connector, "tokens", None)
        if key is None or not isinstance(tokens, TokenManager):
            return
        storage = VaultTokenStorage(TokenVault(self._engine.db, key), ConnectionStore(self._engine.db),
                                    systems={connection: connector.system})
        grant = await storage.load_grant(connection)
        if grant is not None:
            tokens.reauthorised(grant)
            # Webhook events that failed while the grant was dead need not sit out their back-off.
            due = await self._dispatcher.grant_restored(connection) if self._dispatcher is not None else 0
            log.info("connection re-authorised; its jobs resume", connection=connection, inbox_events_due=due)
