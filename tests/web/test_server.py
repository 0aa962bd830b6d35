"""Listeners start on a free loopback port, serve, and release the port when stopped."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from syncd.store import Database, InboxStore
from syncd.web.receiver import build_webhook_app
from syncd.web.server import serve, stop_all
from tests.web.conftest import SignedSource


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


async def slow_client(listener_port: int, request: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw connection that has sent `request` (headers and part of a body) and then goes quiet."""
    reader, writer = await asyncio.open_connection("127.0.0.1", listener_port)
    writer.write(request)
    await writer.drain()
    return reader, writer


async def test_a_body_trickling_slower_than_the_read_timeout_gets_408_and_is_closed(database: Database) -> None:
    listener = await serve(build_webhook_app(db=database, connectors={"crm": SignedSource()}), "127.0.0.1", 0,
                           name="webhooks", read_timeout_s=0.5)
    try:
        reader, writer = await slow_client(
            listener.port, b"POST /webhooks/crm HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n[{\"id\":")
        # Bounded only so a regression fails instead of hanging: the server closes the connection itself.
        answer = await asyncio.wait_for(reader.read(), 20)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 408")
        assert await InboxStore(database).pending() == []
    finally:
        await listener.stop()


async def test_a_connection_that_sends_nothing_is_closed() -> None:
    app = web.Application()
    app.router.add_get("/", hello)
    listener = await serve(app, "127.0.0.1", 0, name="admin", read_timeout_s=0.5)
    try:
        reader, writer = await slow_client(listener.port, b"GET / HTTP/1.1\r\nHost:")  # headers never finished
        assert await asyncio.wait_for(reader.read(), 20) == b""
        writer.close()
    finally:
        await listener.stop()


async def test_a_client_hanging_up_mid_body_is_one_log_line_without_a_traceback(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    listener = await serve(build_webhook_app(db=database, connectors={"crm": SignedSource()}), "127.0.0.1", 0,
                           name="webhooks")
    try:
        with capture_logs() as logs:
            _, writer = await slow_client(
                listener.port, b"POST /webhooks/crm HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n[")
            writer.close()
            await writer.wait_closed()
            deadline = asyncio.get_running_loop().time() + 20
            while not any(e["event"] == "client disconnected mid-request" for e in logs):
                assert asyncio.get_running_loop().time() < deadline, "the disconnect was never noticed"
                await asyncio.sleep(0.02)
    finally:
        await listener.stop()
    [line] = [e for e in logs if e["event"] == "client disconnected mid-request"]
    assert (line["listener"], line["path"]) == ("webhooks", "/webhooks/crm")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
