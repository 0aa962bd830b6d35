"""Xero's one registry line names loadable pieces: settings model, connector, simulator, lifecycle in Xero's words."""

from __future__ import annotations

from syncd.connectors.base import Connector
from syncd.settings import ConnectionBase
from syncd.systems import load_object, registration


def test_registration_names_loadable_pieces() -> None:
    xero = registration("xero")
    settings = load_object(xero.settings)
    assert issubclass(settings, ConnectionBase)
    connection = settings.model_validate({"system": "xero", "client_id": "id", "client_secret": "secret"})
    assert connection.max_concurrency == 5 and connection.base_url == "https://api.xero.com/api.xro/2.0"
    connector = load_object(xero.connector)("books", connection)
    assert isinstance(connector, Connector) and tuple(connector.objects()) == xero.objects
    assert load_object(xero.simulator or "").name == "xero"
    assert xero.invoices is not None and xero.invoices.void_status == "voided"
    assert xero.invoices.editable == {"draft", "submitted"} and xero.invoices.object in xero.objects
