"""Listeners start on a free loopback port, serve, and release the port when stopped."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web

from syncd.web.server import serve, stop_all


async def hello(_request: web.Request) -> web.Response:
    """A trivial handler."""
    return web.Response(text="hello")


async def test_listeners_serve_on_their_bound_ports_and_stop_cleanly() -> None:
    first_app, second_app = web.Application(), web.Application()
    first_app.router.add_get("/", hello)
    second_app.router.add_get("/", hello)
    first = await serve(first_app, "127.0.0.1", 0, name="webhooks")
    second = await serve(second_app, "127.0.0.1", 0, name="admin")
    try:
        assert first.port != 0 and first.port != second.port
        async with aiohttp.ClientSession() as session:
            for listener in (first, second):
                async with session.get(listener.url + "/") as response:
                    assert await response.text() == "hello"
    finally:
        await stop_all([first, second])
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            async with session.get(first.url + "/"):
                pass


async def test_a_taken_port_fails_to_start_and_leaves_nothing_open() -> None:
    running = await serve(web.Application(), "127.0.0.1", 0)
    try:
        with pytest.raises(OSError):
            await serve(web.Application(), "127.0.0.1", running.port)
    finally:
        await running.stop()
