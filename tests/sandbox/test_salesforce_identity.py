"""The Salesforce simulator's identity service: the `id` URL of a token response and OpenID Connect userinfo
name the org's integration user and the REST URLs, for a live session only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from simple_salesforce.api import Salesforce

from tests.sandbox.test_salesforce import Org, call, served

__all__ = ["served"]


@pytest.fixture
def org(served: Org) -> Org:
    """The module's simulator with default grants."""
    served.simulator.restore_defaults()
    return served


@pytest.fixture
def session(org: Org) -> Iterator[requests.Session]:
    """A requests session that trusts the sandbox certificate."""
    with org.session() as opened:
        yield opened


async def test_the_token_s_identity_url_and_userinfo_describe_the_user(org: Org, session: requests.Session) -> None:
    credentials = org.simulator.credentials(org.url)
    grant = await call(session.post, f"{org.url}/services/oauth2/token", data={
        "grant_type": "refresh_token", "client_id": credentials["client_id"],
        "client_secret": credentials["client_secret"], "refresh_token": credentials["refresh_token"]})
    token = grant.json()
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    identity = await call(session.get, token["id"], headers=bearer)
    assert identity.status_code == 200, identity.text
    who = identity.json()
    assert who["id"] == token["id"] and who["urls"]["rest"] == f"{org.url}/services/data/v59.0/"
    sf: Any = Salesforce(instance_url=org.url, session_id=token["access_token"], session=session, version="59.0")
    info = await call(sf.oauth2, "userinfo")
    assert (info["sub"], info["user_id"], info["organization_id"]) == (token["id"], who["user_id"],
                                                                       who["organization_id"])
    # The REST URL it names answers for the same session.
    assert (await call(session.get, who["urls"]["sobjects"], headers=bearer)).status_code == 200
    org.simulator.tokens.expire_all()
    refused = await call(session.get, token["id"], headers=bearer)
    assert (refused.status_code, refused.text) == (403, "Bad_OAuth_Token")
    assert (await call(session.get, f"{org.url}/services/oauth2/userinfo", headers=bearer)).status_code == 403
