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


async def test_setup_checks_scopes_and_lists_the_webhook_to_register() -> None:
    from syncd.connectors.setup import NeededField, SystemNeeds
    from syncd.connectors.xero.setup import set_up

    xero = registration("xero")
    settings = load_object(xero.settings)
    needs = SystemNeeds("xero")
    needs.add("Contacts", NeededField("ContactNumber", reference=True, writes=True))
    needs.add("Payments", NeededField("Amount"))
    connector = load_object(xero.connector)("books", settings.model_validate(
        {"system": "xero", "client_id": "id", "client_secret": "secret"}))
    defaults = await set_up(connector, connector.settings, needs)
    assert [i.status for i in defaults] == ["present", "check"]
    narrow = settings.model_validate({"system": "xero", "client_id": "id", "client_secret": "s",
                                      "scopes": ["offline_access"]})
    [missing, _webhook] = await set_up(connector, narrow, needs)
    assert missing.status == "todo"
    assert "accounting.contacts" in missing.what and "accounting.transactions" in missing.what
