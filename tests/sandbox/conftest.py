"""Fixtures for tests that need the real simulators: one sandbox per session, restored before each test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from syncd.sandbox.runner import Sandbox


@pytest.fixture(scope="session")
async def sandbox(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Sandbox]:
    """The three simulators on free loopback ports, for the whole session (its state is not saved)."""
    async with Sandbox.running(
        workdir=tmp_path_factory.mktemp("sandbox")
    ) as running:
        yield running


@pytest.fixture
async def clean_sandbox(sandbox: Sandbox) -> Sandbox:
    """The session sandbox with no records, no faults, default limits, no webhook targets, live grants."""
    sandbox.restore_defaults()
    return sandbox
