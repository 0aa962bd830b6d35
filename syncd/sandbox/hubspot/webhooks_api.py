"""The Webhooks v3 management API: the app's settings (target URL, throttling) and its event subscriptions,
authenticated with the developer account's API key (`hapikey`), as HubSpot's Webhooks spec says."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiohttp import web

from syncd.sandbox.hubspot.catalog import resolve_object_type
from syncd.sandbox.hubspot.errors import HubSpotError, json_response, not_found, standard_error, validation_error
from syncd.sandbox.hubspot.values import iso_ms
from syncd.sandbox.hubspot.webhooks import AppSettings

if TYPE_CHECKING:
    from syncd.sandbox.hubspot.app import HubSpotSimulator

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_CRM_KINDS = ("creation", "deletion", "propertyChange", "associationChange", "merge", "restore")
# The `eventType` enum of SubscriptionCreateRequest (48 values). All are accepted; the simulator produces events
# for contacts, companies, deals and line items.
EVENT_TYPES = frozenset(
    [f"{obj}.{kind}" for obj in ("contact", "company", "deal", "line_item", "ticket", "object") for kind in _CRM_KINDS]
    + [f"product.{kind}" for kind in _CRM_KINDS if kind != "associationChange"]
    + ["contact.privacyDeletion", "conversation.creation", "conversation.deletion", "conversation.newMessage",
       "conversation.privacyDeletion", "conversation.propertyChange", "event.completed"]
)
# HubSpot's answers to a missing and to a wrong developer key (category INVALID_AUTHENTICATION).
MISSING_KEY = ("Authentication credentials not found. This API supports both API Key and OAuth 2.0 authentication "
               "and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview")
INVALID_KEY = "The API key provided is invalid. View or manage your API key here: https://app.hubspot.com/l/api-key/"


def check_developer_key(request: web.Request, sim: HubSpotSimulator) -> None:
    """401 unless the `hapikey` query parameter is the developer account's API key.

    A portal's OAuth access token is not a developer credential, so a Bearer header alone is refused too."""
    given = request.query.get("hapikey", "")
    if not given:
        raise HubSpotError(401, MISSING_KEY, "INVALID_AUTHENTICATION")
    if not secrets.compare_digest(given.encode(), sim.developer_api_key.encode()):
        raise HubSpotError(401, INVALID_KEY, "INVALID_AUTHENTICATION")


def _int_path(request: web.Request, name: str) -> int:
    raw = request.match_info[name]
    if not raw.isdigit():
        raise validation_error(f"Unable to parse {name} {raw!r}: expected an integer.")
    return int(raw)


def _object_body(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise validation_error("Invalid input JSON: the body must be an object.")
    return body


def add_webhooks_routes(app: web.Application, sim: HubSpotSimulator) -> None:
    """`/webhooks/v3/{appId}/settings` (GET, PUT, DELETE) and `/subscriptions` (GET, POST, GET/PATCH/DELETE by
    id, POST batch/update)."""

    def developer_api(handler: Handler) -> Handler:
        # Not the CRM gateway: these calls are the developer account's, not the portal's (no OAuth token, and
        # they do not spend the portal's request quota).
        async def gateway(request: web.Request) -> web.StreamResponse:
            try:
                check_developer_key(request, sim)
                app_id = _int_path(request, "appId")
                if app_id != sim.subscriptions.app_id:
                    raise not_found(f"No app with id {app_id} belongs to this developer account.")
                return await handler(request)
            except HubSpotError as exc:
                return exc.response()

        return gateway

    # --- settings ---

    async def get_settings(request: web.Request) -> web.StreamResponse:
        if sim.app_settings is None:
            raise not_found(f"No webhook settings configured for app {sim.subscriptions.app_id}.")
        return json_response(sim.app_settings.to_json())

    async def put_settings(request: web.Request) -> web.StreamResponse:
        body = _object_body(await sim.json_body(request))
        target = body.get("targetUrl")
        parts = urlsplit(target) if isinstance(target, str) else None
        # HubSpot calls only public https URLs; the sandbox also takes http, since its receivers are on loopback.
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise validation_error("targetUrl must be an absolute http(s) URL.",
                                   [{"message": "targetUrl is required and must be a URL", "in": "targetUrl"}])
        throttling = body.get("throttling")
        limit = throttling.get("maxConcurrentRequests") if isinstance(throttling, Mapping) else None
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise validation_error(
                "throttling.maxConcurrentRequests must be a positive integer.",
                [{"message": "must be a positive integer", "in": "throttling.maxConcurrentRequests"}])
        now = sim.clock()
        created = sim.app_settings.created_at if sim.app_settings is not None else now
        settings = AppSettings(str(target), int(limit), created, now)
        sim.set_app_settings(settings)
        return json_response(settings.to_json())

    async def delete_settings(request: web.Request) -> web.StreamResponse:
        sim.set_app_settings(None)
        return web.Response(status=204)

    # --- subscriptions ---

    def subscription(request: web.Request) -> dict[str, Any]:
        sub_id = _int_path(request, "subscriptionId")
        found = sim.subscriptions.get(sub_id)
        if found is None:
            raise not_found(f"No subscription with id {sub_id} for app {sim.subscriptions.app_id}.")
        return found

    async def list_subscriptions(request: web.Request) -> web.StreamResponse:
        return json_response({"results": sim.subscriptions.items})

    async def create_subscription(request: web.Request) -> web.StreamResponse:
        body = _object_body(await sim.json_body(request))
        event_type = body.get("eventType")
        if event_type not in EVENT_TYPES:
            raise validation_error(f"eventType must be one of {sorted(EVENT_TYPES)}.")
        active = body.get("active", False)  # the spec: "Defaults to false"
        if not isinstance(active, bool):
            raise validation_error("active must be true or false.")
        property_name: str | None = None
        if event_type.endswith(".propertyChange"):
            property_name = body.get("propertyName")
            if not isinstance(property_name, str) or not property_name:
                raise validation_error("A propertyChange subscription needs a propertyName.")
            obj = resolve_object_type(event_type.partition(".")[0])
            if obj is not None and property_name not in sim.store.properties[obj]:
                raise validation_error(f"Property {property_name!r} does not exist on {obj}.")
        existing = sim.subscriptions.find(event_type, property_name)
        if existing is not None:
            # (The real status for a duplicate subscription is not documented; 409 names the one that exists.)
            raise HubSpotError(409, f"A subscription to {event_type}"
                               f"{' of ' + property_name if property_name else ''} already exists "
                               f"(id {existing['id']}).", "CONFLICT")
        return json_response(sim.subscriptions.add(event_type, property_name, active=active), status=201)

    async def get_subscription(request: web.Request) -> web.StreamResponse:
        return json_response(subscription(request))

    async def patch_subscription(request: web.Request) -> web.StreamResponse:
        found = subscription(request)
        body = _object_body(await sim.json_body(request))
        if "active" in body:
            if not isinstance(body["active"], bool):
                raise validation_error("active must be true or false.")
            sim.subscriptions.set_active(found, body["active"])
        return json_response(found)

    async def delete_subscription(request: web.Request) -> web.StreamResponse:
        sim.subscriptions.remove(int(subscription(request)["id"]))
        return web.Response(status=204)

    async def batch_update(request: web.Request) -> web.StreamResponse:
        requested = iso_ms(sim.clock())
        body = _object_body(await sim.json_body(request))
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not all(
            isinstance(i, Mapping) and isinstance(i.get("id"), int) and not isinstance(i.get("id"), bool)
            and isinstance(i.get("active"), bool) for i in inputs
        ):
            raise validation_error('The body must be {"inputs": [{"id": <integer>, "active": <boolean>}, ...]}.')
        results: list[dict[str, Any]] = []
        missing: list[str] = []
        for item in inputs:
            found = sim.subscriptions.get(int(item["id"]))
            if found is None:
                missing.append(str(item["id"]))
            else:
                results.append(sim.subscriptions.set_active(found, bool(item["active"])))
        answer: dict[str, Any] = {"status": "COMPLETE", "results": results, "requestedAt": requested,
                                  "startedAt": requested, "completedAt": iso_ms(sim.clock())}
        if not missing:
            return json_response(answer)
        error = standard_error("SUBSCRIPTION_ID_NOT_FOUND",
                               f"Failed to find subscriptions by id {', '.join(f'`{m}`' for m in missing)}.",
                               {"subscriptionIds": missing})
        return json_response({**answer, "numErrors": 1, "errors": [error]}, status=207)

    base = "/webhooks/v3/{appId}"
    app.router.add_get(base + "/settings", developer_api(get_settings))
    app.router.add_put(base + "/settings", developer_api(put_settings))
    app.router.add_delete(base + "/settings", developer_api(delete_settings))
    app.router.add_get(base + "/subscriptions", developer_api(list_subscriptions))
    app.router.add_post(base + "/subscriptions", developer_api(create_subscription))
    app.router.add_post(base + "/subscriptions/batch/update", developer_api(batch_update))
    app.router.add_get(base + "/subscriptions/{subscriptionId}", developer_api(get_subscription))
    app.router.add_patch(base + "/subscriptions/{subscriptionId}", developer_api(patch_subscription))
    app.router.add_delete(base + "/subscriptions/{subscriptionId}", developer_api(delete_subscription))
