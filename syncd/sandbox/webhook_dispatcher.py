"""Batched, signed, retried (at-least-once) webhook deliveries of a simulator."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout

from syncd.sandbox.faults import Faults
from syncd.sandbox.stats import Stats

Event = dict[str, Any]


class WebhookDispatcher:
    """Batched, signed, retried (at-least-once) webhook deliveries to every target URL."""

    def __init__(
        self,
        *,
        stats: Stats,
        faults: Faults,
        encode: Callable[[list[Event]], bytes],
        sign: Callable[[str, str, bytes], dict[str, str]],
        max_batch: int = 100,
        flush_interval_s: float = 0.05,
        max_attempts: int = 10,
        retry_base_s: float = 0.2,
        retry_max_s: float = 30.0,
        request_timeout_s: float = 10.0,
        content_type: str = "application/json",
        rng: random.Random | None = None,
    ) -> None:
        self.stats = stats
        self.faults = faults
        self.encode = encode
        self.sign = sign
        self.max_batch = max_batch
        self.flush_interval_s = flush_interval_s
        self.max_attempts = max_attempts
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self.request_timeout_s = request_timeout_s
        self.content_type = content_type
        self.rng = rng or random.Random()
        self.targets: list[str] = []
        self._queue: list[Event] = []
        self._deliveries: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        # Set whenever nothing is queued or in flight; drain() waits on it.
        self._idle = asyncio.Event()
        self._idle.set()
        self._worker: asyncio.Task[None] | None = None
        self._session: ClientSession | None = None

    def emit(self, event: Event) -> None:
        """Queue one event; it goes out with the next batch."""
        if not self.targets:
            return  # nobody subscribed: the real services send nothing either
        self._queue.append(event)
        self._idle.clear()
        self._wake.set()

    @property
    def pending(self) -> int:
        """Events queued plus deliveries in flight (including those waiting to retry)."""
        return len(self._queue) + len(self._deliveries)

    async def start(self) -> None:
        """Open the HTTP session and start the flushing task."""
        if self._worker is not None:
            return
        # Fresh events: they bind to the loop that first waits on them, which may be a new one.
        self._wake, self._idle = asyncio.Event(), asyncio.Event()
        if self._queue:
            self._wake.set()
        self._note_if_idle()
        self._session = ClientSession(timeout=ClientTimeout(total=self.request_timeout_s))
        self._worker = asyncio.create_task(self._run(), name="webhook-dispatcher")

    async def stop(self) -> None:
        """Cancel the flushing task and every delivery in flight, then close the session."""
        tasks = [t for t in (self._worker, *self._deliveries) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._worker = None
        self._deliveries.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def drain(self, timeout_s: float) -> None:
        """Wait until nothing is queued or in flight; TimeoutError past timeout_s."""
        if self._queue and self._worker is None:
            raise RuntimeError("webhook dispatcher not started")
        async with asyncio.timeout(timeout_s):
            while self.pending:
                self._idle.clear()
                await self._idle.wait()

    def clear(self) -> None:
        """Drop queued events and cancel deliveries in flight, retries included."""
        self._queue.clear()
        for task in list(self._deliveries):
            task.cancel()
        self._note_if_idle()

    def _note_if_idle(self) -> None:
        if self.pending == 0:
            self._idle.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            # Give concurrent emits a moment to join the batch, as the real senders do.
            await asyncio.sleep(self.flush_interval_s)
            self._wake.clear()
            while self._queue:
                batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
                if self.faults.reorder_webhooks:
                    self.rng.shuffle(batch)
                for url in list(self.targets):
                    copies = 2 if self.rng.random() < self.faults.duplicate_webhooks else 1
                    for _ in range(copies):
                        task = asyncio.create_task(self._deliver(url, batch))
                        self._deliveries.add(task)
                        task.add_done_callback(self._delivery_done)
            self._note_if_idle()

    def encode_attempt(self, batch: list[Event], attempt: int) -> bytes:
        """The body of delivery attempt `attempt` (1-based); override to number attempts in the body."""
        return self.encode(batch)

    def _delivery_done(self, task: asyncio.Task[None]) -> None:
        self._deliveries.discard(task)
        self._note_if_idle()

    async def _deliver(self, url: str, batch: list[Event]) -> None:
        assert self._session is not None
        for attempt in range(1, self.max_attempts + 1):
            if attempt > 1:
                self.stats.webhooks_retried += 1
                # Exponential backoff between attempts is the simulated sender's own pacing.
                await asyncio.sleep(min(self.retry_max_s, self.retry_base_s * 2 ** (attempt - 2)))
            body = self.encode_attempt(batch, attempt)
            headers = {"Content-Type": self.content_type, **self.sign("POST", url, body)}
            try:
                async with self._session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if 200 <= response.status < 300:
                        self.stats.webhooks_sent += 1
                        return
            except (ClientError, TimeoutError, OSError):
                pass  # connection refused, reset or timed out: retried like a 5xx
        self.stats.webhooks_failed += 1
