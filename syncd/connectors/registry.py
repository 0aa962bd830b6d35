"""Build a connector from its connection settings, by the registration of the connection's system."""

from __future__ import annotations

from syncd.connectors.base import Connector
from syncd.connectors.tokens import TokenStorage
from syncd.settings import ConnectionBase
from syncd.systems import load_object, registration


def build_connector(name: str, settings: ConnectionBase, storage: TokenStorage | None = None) -> Connector:
    """The connector for one configured connection (its class imported only now: each pulls in its vendor SDK)."""
    connector_class = load_object(registration(settings.system).connector)
    connector = connector_class(name, settings, storage=storage)
    if not isinstance(connector, Connector):
        raise TypeError(f"{registration(settings.system).connector} built no Connector")
    return connector
