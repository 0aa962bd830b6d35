"""What every Books handler works with: the ledger, the clock, the organisation and the change feed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from aiohttp import web

from syncd.sandbox.zohobooks.ledger import BooksLedger
from syncd.sandbox.zohobooks.money import dumps
from syncd.sandbox.zohobooks.timestamps import format_timestamp, today

# (module, action, entity JSON), e.g. ("invoice", "updated", {...}); feeds the webhooks.
ChangeListener = Callable[[str, str, dict[str, Any]], None]


@dataclass
class BooksContext:
    """Shared state of the Books handlers; `ledger` is swapped wholesale on reset or state load."""

    ledger: BooksLedger
    clock: Callable[[], float]
    organization_id: str
    notify: ChangeListener

    def now(self) -> float:
        """Epoch seconds now, on the simulator's clock."""
        return self.clock()

    def today(self) -> date:
        """The organisation's date today."""
        return today(self.clock())

    def stamp(self, epoch: float) -> str:
        """A timestamp in Zoho's format."""
        return format_timestamp(epoch)


def answer(payload: dict[str, Any], status: int = 200) -> web.Response:
    """A Books success answer (`code` 0 first, amounts as JSON numbers)."""
    return web.Response(status=status, text=dumps(payload), content_type="application/json")
