"""A throw-away system, "toybooks", written the way a new system is added: its settings model, its connector and
its simulator here, and its registration; `tests/test_registry.py` lists it in the registry for one test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, ClassVar, Literal

from syncd.connectors.base import (
    ActionField,
    ChangeEvent,
    Create,
    Deletion,
    FieldInfo,
    Page,
    Record,
    Update,
    WebhookRequest,
    WriteOutcome,
)
from syncd.connectors.tokens import TokenStorage
from syncd.errors import FatalError
from syncd.settings import ConnectionBase
from syncd.systems import InvoiceLifecycle, SystemRegistration
from tests.sandbox.test_base import ToySimulator

NAME = "toybooks"


class ToyBooksConnection(ConnectionBase):
    """A Toy Books ledger."""

    system: Literal["toybooks"]
    base_url: str
    ledger: str


class ToyBooksConnector:
    """Enough of a connector to be built and started; its reads find nothing and its writes are refused."""

    action_fields: Mapping[str, ActionField] = MappingProxyType({})

    def __init__(self, name: str, settings: ToyBooksConnection, *, storage: TokenStorage | None = None) -> None:
        self.name, self.system, self.settings, self.storage = name, NAME, settings, storage

    async def start(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to release."""

    def objects(self) -> Sequence[str]:
        return ("contacts", "invoices")

    async def changes(
        self, object: str, since: datetime | None, overlap: timedelta, expected: int = 0
    ) -> AsyncIterator[Page]:
        for page in ():
            yield page

    async def get_many(self, object: str, ids: Sequence[str]) -> Mapping[str, Record]:
        return {}

    def _refuse(self) -> FatalError:
        return FatalError("toybooks takes no writes", connection=self.name)

    async def create_many(self, object: str, items: Sequence[Create]) -> Sequence[WriteOutcome]:
        raise self._refuse()

    async def update_many(self, object: str, items: Sequence[Update]) -> Sequence[WriteOutcome]:
        raise self._refuse()

    async def delete_many(self, object: str, ids: Sequence[str]) -> Sequence[WriteOutcome]:
        raise self._refuse()

    async def find_by_field(self, object: str, field: str, values: Sequence[str]) -> Mapping[str, list[Record]]:
        return {value: [] for value in values}

    async def deletions(self, object: str, since: datetime) -> Sequence[Deletion] | None:
        return None

    async def describe(self, object: str) -> Mapping[str, FieldInfo]:
        return {}

    async def act(self, object: str, id: str, action: str) -> None:
        raise self._refuse()

    def verify_webhook(self, request: WebhookRequest) -> None:
        raise self._refuse()

    def parse_webhook(self, request: WebhookRequest) -> Sequence[ChangeEvent]:
        return ()

    async def register_webhooks(self, url: str, fields: Mapping[str, Collection[str]]) -> bool:
        return False


class ToyBooksSimulator(ToySimulator):
    """The toy service of the sandbox tests, describing itself as a Toy Books connection."""

    name: ClassVar[str] = NAME

    def credentials(self, base: str) -> dict[str, Any]:
        return {"base_url": base, "client_id": self.tokens.client_id, "client_secret": self.tokens.client_secret,
                "refresh_token": self.tokens.refresh_token, "ledger": "main"}


REGISTRATION = SystemRegistration(
    name=NAME,
    label="Toy Books",
    role="accounting",
    settings="tests.plugin_system:ToyBooksConnection",
    connector="tests.plugin_system:ToyBooksConnector",
    simulator="tests.plugin_system:ToyBooksSimulator",
    default_port=8999,
    objects=("contacts", "invoices"),
    invoices=InvoiceLifecycle(object="invoices", status_field="state", editable=frozenset({"open"}),
                              void_status="cancelled", void_action="cancel"),
)
