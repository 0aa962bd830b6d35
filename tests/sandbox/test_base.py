"""The shared sandbox machinery, exercised through a tiny simulator of a made-up service."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar, Literal

import aiohttp
import phonenumbers
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from syncd.sandbox.base import Simulator
from syncd.sandbox.control_plane import is_loopback, loopback_guard
from syncd.sandbox.faults import Faults
from syncd.sandbox.oauth_tokens import TokenStore
from syncd.sandbox.quota import QuotaCounter
from syncd.sandbox.seeding import DEAL_STAGES, SeedCounts, SeedWorld
from syncd.sandbox.stats import Stats
from syncd.sandbox.webhook_dispatcher import WebhookDispatcher

SECRET = "toy-app-secret"


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class ToySimulator(Simulator):
    """A made-up service: bearer tokens, a quota, one object type and signed webhooks."""

    name: ClassVar[str] = "toy"
    fault_exempt_prefixes: ClassVar[tuple[str, ...]] = ("/oauth/",)

    def __init__(self, *, clock: FakeClock, rng_seed: int = 0) -> None:
        super().__init__(clock=clock, rng_seed=rng_seed)
        self.tokens = TokenStore(client_id="cid", client_secret="csecret", lifetime_s=1800, clock=clock)
        self.token_stores.append(self.tokens)
        self.quota = QuotaCounter(window_s=10, window_max=100, daily_cap=10_000, clock=clock)
        self.quotas.append(self.quota)
        self.things: dict[str, dict[str, Any]] = {}
        self.webhooks = WebhookDispatcher(
            stats=self.stats,
            faults=self.faults,
            encode=lambda events: json.dumps(events).encode(),
            sign=lambda method, url, body: {
                "X-Toy-Signature": hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            },
            max_batch=100,
            flush_interval_s=0.01,
            max_attempts=3,
            retry_base_s=0.01,
            rng=self.rng,
        )
        self.webhook_dispatchers.append(self.webhooks)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/oauth/token", self._token)
        app.router.add_get("/api/things/{thing_id}", self._get_thing)
        app.router.add_post("/api/things", self._create_thing)

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        issued = self.tokens.refresh(str(form["client_id"]), str(form["client_secret"]), str(form["refresh_token"]))
        if issued is None:
            return web.json_response({"error": "invalid_grant"}, status=400)
        return web.json_response({"access_token": issued.access_token, "expires_in": issued.expires_in})

    def _auth(self, request: web.Request) -> web.Response | None:
        state = self.tokens.check(request.headers.get("Authorization", "").removeprefix("Bearer "))
        if state != "ok":
            return web.json_response({"error": state}, status=401)
        decision = self.quota.take()
        if not decision.allowed:
            self.stats.rate_limited += 1
            return web.json_response({"error": "slow down", "policy": decision.policy}, status=429)
        return None

    async def _get_thing(self, request: web.Request) -> web.Response:
        if (refused := self._auth(request)) is not None:
            return refused
        thing = self.things.get(request.match_info["thing_id"])
        if thing is None:
            return web.json_response({"error": "not found"}, status=404)
        return web.json_response(thing)

    async def _create_thing(self, request: web.Request) -> web.Response:
        if (refused := self._auth(request)) is not None:
            return refused
        thing = {"id": str(len(self.things) + 1), **(await request.json())}
        self.things[thing["id"]] = thing
        self.webhooks.emit({"type": "thing.creation", "id": thing["id"]})
        return web.json_response(thing, status=201)

    def reset(self) -> None:
        self.things.clear()

    def seed(self, world: SeedWorld, counts: SeedCounts) -> dict[str, int]:
        for person in world.people[: counts.contacts]:
            thing_id = str(len(self.things) + 1)
            self.things[thing_id] = {"id": thing_id, "email": person.email}
        return {"contacts": counts.contacts}

    def default_limits(self) -> dict[str, Any]:
        return {"window_max": 100}

    def apply_limits(self, body: Mapping[str, Any]) -> None:
        unknown = set(body) - {"window_max", "token_lifetime_s"}
        if unknown:
            raise ValueError(f"unknown limit keys: {sorted(unknown)}")
        if "window_max" in body:
            self.quota.window_max = int(body["window_max"])
        if "token_lifetime_s" in body:
            self.tokens.lifetime_s = float(body["token_lifetime_s"])

    def records(self, obj: str) -> list[dict[str, Any]] | None:
        return list(self.things.values()) if obj == "things" else None

    def fault_response(self, kind: Literal["error", "rate_limit"]) -> web.Response:
        if kind == "error":
            return web.json_response({"error": "toy is down"}, status=503)
        return web.json_response({"error": "toy is busy"}, status=429)

    def set_webhook_targets(self, urls: list[str]) -> None:
        self.webhooks.targets = list(urls)

    def credentials(self, base: str) -> dict[str, str]:
        return {"base_url": base, "refresh_token": self.tokens.refresh_token}

    def dump_state(self) -> dict[str, Any]:
        return {"things": self.things, "tokens": self.tokens.to_state()}

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.things = dict(state["things"])
        self.tokens.load_state(state["tokens"])


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def toy(clock: FakeClock) -> ToySimulator:
    return ToySimulator(clock=clock)


@pytest.fixture
async def client(toy: ToySimulator, aiohttp_client: Any) -> TestClient[web.Request, web.Application]:
    test_client: TestClient[web.Request, web.Application] = await aiohttp_client(toy.build_app())
    return test_client


def bearer(toy: ToySimulator) -> dict[str, str]:
    return {"Authorization": f"Bearer {toy.tokens.issue_access_token().access_token}"}


class Receiver:
    """A webhook target that records each delivery and can be told to fail the first n."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        self.refused = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.refused < self.fail_first:
            self.refused += 1
            return web.Response(status=500)
        self.deliveries.append((dict(request.headers), body))
        return web.Response(status=204)

    def events(self) -> list[dict[str, Any]]:
        return [event for _, body in self.deliveries for event in json.loads(body)]


async def start_receiver(receiver: Receiver, aiohttp_server: Any) -> str:
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    server: TestServer = await aiohttp_server(app)
    return str(server.make_url("/hook"))


# ------------------------------------------------------------------------------------ control plane


async def test_seed_then_records_then_reset(client: TestClient[web.Request, web.Application]) -> None:
    response = await client.post("/_sandbox/seed", json={"contacts": 7, "seed": 3})
    assert response.status == 200
    assert await response.json() == {"created": {"contacts": 7}}
    records = await (await client.get("/_sandbox/records/things")).json()
    assert len(records["records"]) == 7
    assert records["records"][0]["email"] == SeedWorld.build(3, 7).people[0].email
    assert (await client.post("/_sandbox/reset")).status == 200
    assert (await (await client.get("/_sandbox/records/things")).json())["records"] == []


async def test_unknown_record_type_is_404(client: TestClient[web.Request, web.Application]) -> None:
    response = await client.get("/_sandbox/records/widgets")
    assert response.status == 404
    assert "widgets" in (await response.json())["error"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/_sandbox/faults", {"error_rate": 2}),
        ("/_sandbox/faults", {"eror_rate": 0.1}),
        ("/_sandbox/faults", {"latency_ms": [10]}),
        ("/_sandbox/limits", {"window_maximum": 5}),
        ("/_sandbox/seed", {"contacts": -1}),
        ("/_sandbox/seed", {"people": 3}),
        ("/_sandbox/webhooks", {"urls": ["ftp://x"]}),
        ("/_sandbox/webhooks", {"url": "http://127.0.0.1/"}),
        ("/_sandbox/reset", {"scope": "everything"}),
    ],
)
async def test_bad_control_bodies_get_400_with_an_error(
    client: TestClient[web.Request, web.Application], path: str, body: dict[str, Any]
) -> None:
    response = await client.post(path, json=body)
    assert response.status == 400
    assert isinstance((await response.json())["error"], str)


async def test_invalid_json_gets_400(client: TestClient[web.Request, web.Application]) -> None:
    response = await client.post("/_sandbox/faults", data=b"{nope", headers={"Content-Type": "application/json"})
    assert response.status == 400
    assert "JSON" in (await response.json())["error"]


async def test_control_plane_refuses_non_loopback_peers() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    class Transport:
        def __init__(self, peer: tuple[str, int]) -> None:
            self.peer = peer

        def get_extra_info(self, name: str, default: Any = None) -> Any:
            return self.peer if name == "peername" else default

    remote = make_mocked_request("POST", "/_sandbox/reset", transport=Transport(("10.0.0.7", 5555)))
    assert (await loopback_guard(remote, handler)).status == 403
    local = make_mocked_request("POST", "/_sandbox/reset", transport=Transport(("127.0.0.1", 5555)))
    assert (await loopback_guard(local, handler)).status == 200
    # The API itself is not guarded: only the control plane is.
    api = make_mocked_request("GET", "/api/things/1", transport=Transport(("10.0.0.7", 5555)))
    assert (await loopback_guard(api, handler)).status == 200
    assert is_loopback("::1") and is_loopback("127.0.0.2") and not is_loopback("192.168.1.2")
    assert not is_loopback(None) and not is_loopback("not-an-ip")


# ---------------------------------------------------------------------------------------- faults


def test_faults_from_json_accepts_every_knob_and_rejects_bad_types() -> None:
    faults = Faults.from_json(
        {
            "error_rate": 0.1,
            "rate_limit_rate": 0.2,
            "timeout_rate": 0,
            "latency_ms": [5, 10],
            "duplicate_webhooks": 1,
            "reorder_webhooks": True,
            "timeout_s": 2,
        }
    )
    assert faults == Faults(0.1, 0.2, 0.0, (5, 10), 1.0, True, 2.0)
    assert Faults.from_json(faults.to_json()) == faults
    for bad in ({"error_rate": True}, {"reorder_webhooks": 1}, {"timeout_s": 0}, {"latency_ms": [9, 3]},
                {"error_rate": 0.6, "rate_limit_rate": 0.6}, {"error_rate": "0.1"}):
        with pytest.raises(ValueError):
            Faults.from_json(bad)


async def test_error_and_rate_limit_faults_answer_for_the_api_but_not_oauth_or_control(
    toy: ToySimulator, client: TestClient[web.Request, web.Application]
) -> None:
    assert (await client.post("/_sandbox/faults", json={"error_rate": 1.0})).status == 200
    assert (await client.get("/api/things/1", headers=bearer(toy))).status == 503
    form = {"client_id": "cid", "client_secret": "csecret", "refresh_token": toy.tokens.refresh_token}
    assert (await client.post("/oauth/token", data=form)).status == 200
    assert (await client.get("/_sandbox/stats")).status == 200

    await client.post("/_sandbox/faults", json={"rate_limit_rate": 1.0})
    assert (await client.get("/api/things/1", headers=bearer(toy))).status == 429
    assert toy.stats.rate_limited == 1

    await client.post("/_sandbox/faults", json={})
    assert (await client.get("/api/things/1", headers=bearer(toy))).status == 404
    assert await (await client.get("/_sandbox/faults")).json() == Faults().to_json()


async def test_fault_rates_are_roughly_honoured(
    toy: ToySimulator, client: TestClient[web.Request, web.Application]
) -> None:
    await client.post("/_sandbox/faults", json={"error_rate": 0.3})
    await client.post("/_sandbox/limits", json={"window_max": 10_000})
    headers = bearer(toy)
    statuses = [(await client.get("/api/things/1", headers=headers)).status for _ in range(400)]
    assert 80 <= statuses.count(503) <= 160
    assert statuses.count(503) + statuses.count(404) == 400


async def test_timeout_fault_drops_the_connection_without_an_answer(
    toy: ToySimulator, client: TestClient[web.Request, web.Application]
) -> None:
    await client.post("/_sandbox/faults", json={"timeout_rate": 1.0, "timeout_s": 0.1})
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await client.get("/api/things/1", headers=bearer(toy))
    await client.post("/_sandbox/faults", json={})
    assert (await client.get("/api/things/1", headers=bearer(toy))).status == 404


async def test_client_timeout_shorter_than_the_hold_sees_a_timeout(
    toy: ToySimulator, client: TestClient[web.Request, web.Application]
) -> None:
    await client.post("/_sandbox/faults", json={"timeout_rate": 1.0, "timeout_s": 30})
    with pytest.raises(asyncio.TimeoutError):
        await client.get("/api/things/1", headers=bearer(toy), timeout=aiohttp.ClientTimeout(total=0.2))
    # Shutting the app down must not wait out the 30 s hold (the test would hit its timeout).


async def test_latency_fault_delays_api_calls(
    toy: ToySimulator, client: TestClient[web.Request, web.Application]
) -> None:
    await client.post("/_sandbox/faults", json={"latency_ms": [150, 150]})
    loop = asyncio.get_running_loop()
    started = loop.time()
    await client.get("/api/things/1", headers=bearer(toy))
    assert loop.time() - started >= 0.14
    started = loop.time()
    await client.get("/_sandbox/stats")
    assert loop.time() - started < 0.14


# ----------------------------------------------------------------------------------------- stats


async def test_stats_count_requests_by_route_template_and_responses_by_status(
    toy: ToySimulator, client: TestClient[web.Request, web.Application]
) -> None:
    headers = bearer(toy)
    await client.post("/api/things", json={"name": "a"}, headers=headers)
    await client.get("/api/things/1", headers=headers)
    await client.get("/api/things/2", headers=headers)
    await client.get("/nowhere")
    stats = await (await client.get("/_sandbox/stats")).json()
    assert stats["requests"]["GET /api/things/{thing_id}"] == 2
    assert stats["requests"]["POST /api/things"] == 1
    assert stats["requests"]["GET <unmatched>"] == 1
    assert stats["responses"]["201"] == 1 and stats["responses"]["200"] == 1
    assert stats["responses"]["404"] == 2
    toy.stats.clear()
    assert toy.stats.to_json() == Stats().to_json()


# ---------------------------------------------------------------------------------------- quotas


def test_quota_window_refuses_past_max_and_reopens_at_the_next_window(clock: FakeClock) -> None:
    clock.now = 1_000_000.0  # a multiple of 10: the start of a window
    quota = QuotaCounter(window_s=10, window_max=3, daily_cap=100, clock=clock)
    decisions = [quota.take() for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.window_remaining for d in decisions] == [2, 1, 0, 0]
    assert decisions[3].policy == "window"
    clock.now += 4
    assert quota.take().window_reset_s == pytest.approx(6.0)
    clock.now += 6
    reopened = quota.take()
    assert reopened.allowed and reopened.window_remaining == 2 and reopened.daily_remaining == 96


def test_quota_daily_cap_outranks_the_window_and_resets_at_utc_midnight(clock: FakeClock) -> None:
    clock.now = 86_400.0 * 20_000 + 100
    quota = QuotaCounter(window_s=1, window_max=1000, daily_cap=2, clock=clock)
    assert quota.take().allowed and quota.take().allowed
    refused = quota.take()
    assert not refused.allowed and refused.policy == "daily" and refused.daily_remaining == 0
    assert quota.daily_used == 2
    clock.now = 86_400.0 * 20_001
    assert quota.take().allowed
    quota.window_max = 0  # the limits endpoint changes these in place
    assert quota.take().policy == "window"


async def test_quota_429_through_the_api_and_limits_endpoint(
    toy: ToySimulator, clock: FakeClock, client: TestClient[web.Request, web.Application]
) -> None:
    clock.now = 2_000_000.0
    await client.post("/_sandbox/limits", json={"window_max": 2})
    headers = bearer(toy)
    statuses = [(await client.get("/api/things/1", headers=headers)).status for _ in range(3)]
    assert statuses == [404, 404, 429]
    clock.now += 10
    assert (await client.get("/api/things/1", headers=headers)).status == 404
    await client.post("/_sandbox/reset", json={"scope": "all"})
    assert toy.quota.window_max == 100 and toy.stats.rate_limited == 0


# ---------------------------------------------------------------------------------------- tokens


def test_access_tokens_expire_with_the_clock_and_refresh_gives_a_new_one(clock: FakeClock) -> None:
    store = TokenStore(client_id="c", client_secret="s", lifetime_s=1800, clock=clock)
    issued = store.refresh("c", "s", store.refresh_token)
    assert issued is not None and issued.expires_in == 1800 and issued.refresh_token == store.refresh_token
    assert store.check(issued.access_token) == "ok"
    clock.now += 1799
    assert store.check(issued.access_token) == "ok"
    clock.now += 1
    assert store.check(issued.access_token) == "expired"
    assert store.check("made-up") == "unknown"
    again = store.refresh("c", "s", store.refresh_token)
    assert again is not None and again.access_token != issued.access_token
    assert store.refresh("c", "wrong", store.refresh_token) is None
    assert store.refresh("c", "s", "not-a-refresh-token") is None


def test_sessions_without_lifetime_last_until_expired_by_hand(clock: FakeClock) -> None:
    store = TokenStore(client_id="c", client_secret="s", lifetime_s=None, clock=clock)
    issued = store.issue_access_token()
    assert math.isinf(issued.expires_at) and issued.expires_in is None
    clock.now += 10 * 86_400
    assert store.check(issued.access_token) == "ok"
    store.expire_all()
    assert store.check(issued.access_token) == "expired"
    fresh = store.issue_access_token()
    assert store.check(fresh.access_token) == "ok"


def test_revoke_kills_refresh_and_access_tokens(clock: FakeClock) -> None:
    store = TokenStore(client_id="c", client_secret="s", lifetime_s=60, clock=clock)
    issued = store.issue_access_token()
    store.revoke()
    assert store.check(issued.access_token) == "unknown"
    assert store.refresh("c", "s", store.refresh_token) is None


def test_code_flow_issues_a_new_refresh_token_once(clock: FakeClock) -> None:
    store = TokenStore(client_id="c", client_secret="s", lifetime_s=60, clock=clock)
    code = store.authorize("c", "http://127.0.0.1/cb", "crm.objects.contacts.read")
    assert store.exchange_code("c", "s", code, "http://127.0.0.1/other") is None  # wrong redirect burns it
    code = store.authorize("c", "http://127.0.0.1/cb", "crm.objects.contacts.read")
    issued = store.exchange_code("c", "s", code, "http://127.0.0.1/cb")
    assert issued is not None and issued.refresh_token != store.refresh_token
    assert store.exchange_code("c", "s", code, "http://127.0.0.1/cb") is None
    assert store.refresh("c", "s", issued.refresh_token) is not None
    with pytest.raises(ValueError):
        store.authorize("other", "http://127.0.0.1/cb", "x")


def test_token_state_survives_a_round_trip(clock: FakeClock) -> None:
    store = TokenStore(client_id="c", client_secret="s", lifetime_s=None, clock=clock)
    issued = store.issue_access_token()
    restored = TokenStore(client_id="x", client_secret="y", lifetime_s=5, clock=clock)
    restored.load_state(json.loads(json.dumps(store.to_state())))
    assert restored.check(issued.access_token) == "ok"
    assert restored.refresh("c", "s", store.refresh_token) is not None


async def test_expire_and_revoke_through_the_control_plane(
    toy: ToySimulator, client: TestClient[web.Request, web.Application]
) -> None:
    headers = bearer(toy)
    assert (await client.get("/api/things/1", headers=headers)).status == 404
    await client.post("/_sandbox/expire-tokens")
    response = await client.get("/api/things/1", headers=headers)
    assert response.status == 401 and (await response.json())["error"] == "expired"
    form = {"client_id": "cid", "client_secret": "csecret", "refresh_token": toy.tokens.refresh_token}
    token = (await (await client.post("/oauth/token", data=form)).json())["access_token"]
    assert (await client.get("/api/things/1", headers={"Authorization": f"Bearer {token}"})).status == 404
    await client.post("/_sandbox/revoke")
    assert (await client.post("/oauth/token", data=form)).status == 400
    assert (await client.get("/api/things/1", headers={"Authorization": f"Bearer {token}"})).status == 401


# -------------------------------------------------------------------------------------- webhooks


async def test_webhooks_are_batched_signed_and_delivered(
    toy: ToySimulator, client: TestClient[web.Request, web.Application], aiohttp_server: Any
) -> None:
    receiver = Receiver()
    url = await start_receiver(receiver, aiohttp_server)
    assert (await client.post("/_sandbox/webhooks", json={"urls": [url]})).status == 200
    for i in range(250):
        toy.webhooks.emit({"type": "thing.creation", "id": str(i)})
    response = await client.post("/_sandbox/webhooks/drain", json={"timeout_s": 5})
    assert response.status == 200
    sizes = [len(json.loads(body)) for _, body in receiver.deliveries]
    assert sorted(sizes) == [50, 100, 100]
    assert [e["id"] for e in receiver.events()] == [str(i) for i in range(250)]
    for headers, body in receiver.deliveries:
        assert headers["X-Toy-Signature"] == hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert toy.stats.webhooks_sent == 3


async def test_api_writes_emit_webhooks(
    toy: ToySimulator, client: TestClient[web.Request, web.Application], aiohttp_server: Any
) -> None:
    receiver = Receiver()
    await client.post("/_sandbox/webhooks", json={"urls": [await start_receiver(receiver, aiohttp_server)]})
    await client.post("/api/things", json={"name": "a"}, headers=bearer(toy))
    await toy.drain_webhooks(5)
    assert receiver.events() == [{"type": "thing.creation", "id": "1"}]


async def test_failed_deliveries_are_retried_then_given_up(
    toy: ToySimulator, client: TestClient[web.Request, web.Application], aiohttp_server: Any
) -> None:
    flaky = Receiver(fail_first=2)
    await client.post("/_sandbox/webhooks", json={"urls": [await start_receiver(flaky, aiohttp_server)]})
    toy.webhooks.emit({"id": "1"})
    await toy.drain_webhooks(5)
    assert flaky.events() == [{"id": "1"}]
    assert toy.stats.webhooks_retried == 2 and toy.stats.webhooks_sent == 1

    dead = Receiver(fail_first=1000)
    await client.post("/_sandbox/webhooks", json={"urls": [await start_receiver(dead, aiohttp_server)]})
    toy.webhooks.emit({"id": "2"})
    await toy.drain_webhooks(5)
    assert dead.refused == 3  # max_attempts
    assert toy.stats.webhooks_failed == 1


async def test_unreachable_target_counts_as_failed(
    toy: ToySimulator, client: TestClient[web.Request, web.Application], unused_tcp_port: int
) -> None:
    await client.post("/_sandbox/webhooks", json={"urls": [f"http://127.0.0.1:{unused_tcp_port}/hook"]})
    toy.webhooks.emit({"id": "1"})
    await toy.drain_webhooks(5)
    assert toy.stats.webhooks_failed == 1 and toy.stats.webhooks_retried == 2


async def test_duplicate_and_reorder_faults_shape_deliveries(
    toy: ToySimulator, client: TestClient[web.Request, web.Application], aiohttp_server: Any
) -> None:
    receiver = Receiver()
    await client.post("/_sandbox/webhooks", json={"urls": [await start_receiver(receiver, aiohttp_server)]})
    await client.post("/_sandbox/faults", json={"duplicate_webhooks": 1.0, "reorder_webhooks": True})
    for i in range(50):
        toy.webhooks.emit({"id": i})
    await toy.drain_webhooks(5)
    assert len(receiver.deliveries) == 2
    ids = [e["id"] for e in receiver.events()]
    assert sorted(ids) == sorted(list(range(50)) * 2)
    assert ids[:50] != list(range(50))


async def test_no_target_means_nothing_is_queued(toy: ToySimulator) -> None:
    toy.webhooks.emit({"id": "1"})
    assert toy.webhooks.pending == 0


# ---------------------------------------------------------------------------------------- seeding


def test_seed_world_is_deterministic_and_prefix_stable() -> None:
    small, big = SeedWorld.build(42, 20), SeedWorld.build(42, 600)
    assert small.people == big.people[:20] and small.deals == big.deals[:20]
    assert SeedWorld.build(42, 20) == small
    assert SeedWorld.build(43, 20).people != small.people
    assert len(big.people) == len(big.companies) == len(big.invoices) == len(big.payments) == 600


def test_seed_world_is_realistic() -> None:
    world = SeedWorld.build(7, 300)
    emails = [p.email for p in world.people]
    assert len(set(emails)) == 300 and all(e == e.lower() and "@" in e for e in emails)
    for person in world.people:
        assert phonenumbers.is_valid_number(phonenumbers.parse(person.phone)), person.phone
        assert person.company < len(world.companies)
    for deal in world.deals:
        assert deal.stage in DEAL_STAGES and deal.currency == "USD"
        assert deal.amount == sum(line.amount for line in deal.lines) > 0
        assert deal.amount == deal.amount.quantize(Decimal("0.01"))
    for i, (invoice, payment) in enumerate(zip(world.invoices, world.payments, strict=True)):
        assert invoice.deal == i and invoice.total == world.deals[i].amount
        assert payment.invoice == i and 0 < payment.amount <= invoice.total
        assert payment.date >= invoice.date
    assert len({c.domain for c in world.companies}) == 300
    assert SeedCounts(contacts=3, deals=9).size == 9


async def test_restore_defaults_cancels_retries_and_brings_back_a_revoked_grant(
    toy: ToySimulator, client: TestClient[web.Request, web.Application], unused_tcp_port: int
) -> None:
    toy.webhooks.retry_base_s = 30  # a retry that would outlive the test
    await client.post("/_sandbox/webhooks", json={"urls": [f"http://127.0.0.1:{unused_tcp_port}/hook"]})
    await client.post("/_sandbox/faults", json={"error_rate": 1.0})
    await client.post("/_sandbox/limits", json={"window_max": 1})
    await client.post("/_sandbox/revoke")
    toy.webhooks.emit({"id": "1"})
    assert toy.webhooks.pending == 1
    assert (await client.post("/_sandbox/reset", json={"scope": "all"})).status == 200
    await toy.drain_webhooks(1)
    assert toy.webhooks.pending == 0 and toy.webhooks.targets == []
    assert toy.faults == Faults() and toy.quota.window_max == 100
    assert toy.tokens.refresh("cid", "csecret", toy.tokens.refresh_token) is not None


async def test_each_retry_can_carry_its_attempt_number(toy: ToySimulator, aiohttp_server: Any) -> None:
    class Numbered(WebhookDispatcher):
        def encode_attempt(self, batch: list[dict[str, Any]], attempt: int) -> bytes:
            return json.dumps([{**event, "attemptNumber": attempt - 1} for event in batch]).encode()

    numbered = Numbered(stats=toy.stats, faults=toy.faults, encode=lambda b: b"", sign=lambda m, u, b: {},
                        retry_base_s=0.01, flush_interval_s=0.01)
    flaky = Receiver(fail_first=1)
    numbered.targets = [await start_receiver(flaky, aiohttp_server)]
    await numbered.start()
    try:
        numbered.emit({"id": "1"})
        await numbered.drain(5)
    finally:
        await numbered.stop()
    assert flaky.events() == [{"id": "1", "attemptNumber": 1}]
