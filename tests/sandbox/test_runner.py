"""The sandbox runner and the `syncd sandbox` command: ports, the JSON line, state files, clean shutdown."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from syncd.sandbox.base import Simulator
from syncd.sandbox.runner import Sandbox, route_webhook_urls, simulated_systems
from tests.sandbox.test_base import FakeClock, ToySimulator

REPO = Path(__file__).resolve().parents[2]
SYSTEMS = simulated_systems()


def toy_factory(**kwargs: Any) -> Simulator:
    return ToySimulator(clock=FakeClock(), rng_seed=kwargs["rng_seed"])


TOYS = {system: toy_factory for system in SYSTEMS}


def real_simulators_present() -> bool:
    try:
        for module, cls in (("hubspot", "HubSpotSimulator"), ("salesforce", "SalesforceSimulator"),
                            ("zohobooks", "ZohoBooksSimulator")):
            getattr(importlib.import_module(f"syncd.sandbox.{module}"), cls)
    except (ImportError, AttributeError):
        return False
    return True


needs_real = pytest.mark.skipif(not real_simulators_present(), reason="simulator packages not all present yet")


async def test_ports_zero_pick_free_ports_and_the_descriptor_names_them(tmp_path: Path) -> None:
    async with Sandbox.running(workdir=tmp_path, factories=TOYS) as sandbox:
        ports = {sandbox.port(s) for s in SYSTEMS}
        assert len(ports) == len(SYSTEMS) and 0 not in ports
        assert sandbox.descriptor["hubspot"]["base_url"] == f"http://127.0.0.1:{sandbox.port('hubspot')}"
        assert json.loads(sandbox.descriptor_line()) == sandbox.descriptor
        async with aiohttp.ClientSession() as http:
            for system in SYSTEMS:
                async with http.get(f"{sandbox.control_url(system)}/_sandbox/stats") as response:
                    assert response.status == 200


async def test_state_is_saved_atomically_at_stop_and_restored_at_start(tmp_path: Path) -> None:
    state_file = tmp_path / "state" / "sandbox.json"
    async with Sandbox.running(workdir=tmp_path, state_file=state_file, factories=TOYS) as sandbox:
        created = sandbox.seed_all()
        assert created["hubspot"] == {"contacts": 50}
        refresh_token = sandbox.descriptor["zohobooks"]["refresh_token"]
        assert not state_file.exists()
    assert state_file.exists()
    assert [p.name for p in state_file.parent.iterdir()] == ["sandbox.json"]  # no temporary file left
    async with Sandbox.running(workdir=tmp_path, state_file=state_file, factories=TOYS) as again:
        assert len(again.simulator("zohobooks").records("things") or []) == 50
        assert again.descriptor["zohobooks"]["refresh_token"] == refresh_token


async def test_a_corrupt_state_file_is_refused_with_its_name(tmp_path: Path) -> None:
    state_file = tmp_path / "sandbox.json"
    state_file.write_text("{not json")
    with pytest.raises(ValueError, match=r"sandbox\.json"):
        await Sandbox.start(workdir=tmp_path, state_file=state_file, factories=TOYS)


async def test_a_busy_port_fails_start_and_releases_the_others(tmp_path: Path) -> None:
    async with Sandbox.running(workdir=tmp_path, systems=["hubspot"], factories=TOYS) as first:
        busy = first.port("hubspot")
        with pytest.raises(OSError):
            await Sandbox.start(ports={"salesforce": busy}, workdir=tmp_path, factories=TOYS)


async def test_ports_by_option_name_as_the_command_spells_them(tmp_path: Path) -> None:
    async with Sandbox.running(workdir=tmp_path, factories=TOYS, zoho_port=0, systems=["zohobooks"]) as sandbox:
        assert sandbox.port("zohobooks") != 0
    with pytest.raises(TypeError, match="unexpected keyword argument 'toy_port'"):
        await Sandbox.start(workdir=tmp_path, factories=TOYS, toy_port=0)


def test_webhook_urls_route_per_system_or_to_all() -> None:
    routed = route_webhook_urls(
        ["hubspot=http://127.0.0.1:1/hs", "http://127.0.0.1:2/webhooks/{system}?a=b"], SYSTEMS
    )
    assert routed["hubspot"] == ["http://127.0.0.1:1/hs", "http://127.0.0.1:2/webhooks/hubspot?a=b"]
    assert routed["zohobooks"] == ["http://127.0.0.1:2/webhooks/zohobooks?a=b"]


@needs_real
async def test_the_real_simulators_start_and_describe_themselves(tmp_path: Path) -> None:
    async with Sandbox.running(workdir=tmp_path) as sandbox:
        d = sandbox.descriptor
        assert set(d["hubspot"]) >= {"base_url", "client_id", "client_secret", "refresh_token", "app_secret"}
        assert set(d["salesforce"]) >= {"base_url", "instance_url", "client_id", "client_secret",
                                        "refresh_token", "ca_cert"}
        assert set(d["zohobooks"]) >= {"base_url", "accounts_url", "client_id", "client_secret", "refresh_token",
                                       "organization_id", "webhook_secret"}
        assert d["salesforce"]["base_url"].startswith("https://127.0.0.1:")
        assert d["zohobooks"]["base_url"].endswith("/books/v3")
        assert Path(d["salesforce"]["ca_cert"]).is_file()
        created = sandbox.seed_all()
        assert all(sum(counts.values()) > 0 for counts in created.values())


# ------------------------------------------------------------------------------------------- command


async def read_line(stream: asyncio.StreamReader, timeout_s: float) -> bytes:
    return await asyncio.wait_for(stream.readline(), timeout_s)


@needs_real
async def test_command_prints_one_json_line_serves_and_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    config = tmp_path / "conf" / "syncd.toml"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "syncd.sandbox.command",
        # Every served system on a free port: a default one may be taken on a shared machine.
        *(arg for system in SYSTEMS for arg in (f"--{system}-port", "0")),
        "--state", str(state_file), "--write-config", str(config), "--seed", "3",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert process.stdout is not None and process.stderr is not None
    try:
        line = await read_line(process.stdout, 30)
        descriptor = json.loads(line)
        assert set(descriptor) == set(SYSTEMS)
        ca_cert = descriptor["salesforce"]["ca_cert"]
        async with aiohttp.ClientSession() as http:
            for system, root in (("hubspot", descriptor["hubspot"]["base_url"]),
                                 ("salesforce", descriptor["salesforce"]["instance_url"]),
                                 ("zohobooks", descriptor["zohobooks"]["base_url"].removesuffix("/books/v3"))):
                import ssl

                context = ssl.create_default_context(cafile=ca_cert) if root.startswith("https") else None
                async with http.get(f"{root}/_sandbox/stats", ssl=context or True) as response:
                    assert response.status == 200, system
        from syncd.settings import load_settings

        settings = load_settings(config)
        assert settings.connections["zohobooks"].client_id == descriptor["zohobooks"]["client_id"]
        key_file = settings.security.token_key_file
        assert key_file is not None and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(process.wait(), 30)
        stderr = await process.stderr.read()
    assert code == 0, stderr.decode()
    assert "sandbox: webhooks go to http://127.0.0.1:8080/webhooks/{system} (the written config's listener)" \
        in stderr.decode()
    assert state_file.exists()
    assert set(json.loads(state_file.read_text())) >= set(SYSTEMS)


def fake_descriptor(tmp_path: Path) -> dict[str, dict[str, str]]:
    cert = tmp_path / "cert.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    return {
        "hubspot": {"base_url": "http://127.0.0.1:1", "client_id": "hc", "client_secret": "hs",
                    "refresh_token": "hr", "app_secret": "hs"},
        "salesforce": {"base_url": "https://127.0.0.1:2", "instance_url": "https://127.0.0.1:2",
                       "client_id": "sc", "client_secret": "ss", "refresh_token": "sr", "ca_cert": str(cert)},
        "zohobooks": {"base_url": "http://127.0.0.1:3/books/v3", "accounts_url": "http://127.0.0.1:3",
                      "client_id": "zc", "client_secret": "zs", "refresh_token": "zr",
                      "organization_id": "1001", "webhook_secret": "zw"},
    }


def test_written_config_loads_and_keeps_an_existing_key(tmp_path: Path) -> None:
    from syncd.sandbox.command import write_config
    from syncd.settings import load_settings

    config = tmp_path / "deep" / "syncd.toml"
    write_config(config, fake_descriptor(tmp_path))
    settings = load_settings(config)
    assert settings.store.url == f"sqlite:///{config.parent / 'syncd.db'}"
    key_file = settings.security.token_key_file
    assert key_file is not None and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_bytes()
    hubspot = settings.connections["hubspot"]
    assert hubspot.system == "hubspot" and hubspot.base_url == "http://127.0.0.1:1"
    assert hubspot.client_secret.get_secret_value() == "hs"
    salesforce = settings.connections["salesforce"]
    assert salesforce.system == "salesforce" and salesforce.instance_url == "https://127.0.0.1:2"
    zoho = settings.connections["zohobooks"]
    assert zoho.system == "zohobooks" and zoho.organization_id == "1001"
    assert settings.polling.interval_s == 30
    assert all(path.is_file() for path in settings.mappings.active)
    write_config(config, fake_descriptor(tmp_path))
    assert key_file.read_bytes() == key  # rewriting the config must not orphan tokens encrypted earlier


@needs_real
async def test_clean_sandbox_fixture_gives_empty_systems_without_faults(clean_sandbox: Sandbox) -> None:
    clean_sandbox.seed_all()
    for simulator in clean_sandbox.simulators.values():
        simulator.faults.error_rate = 1.0
    clean_sandbox.restore_defaults()
    for name, records in (("hubspot", "contacts"), ("salesforce", "Contact"), ("zohobooks", "contacts")):
        simulator = clean_sandbox.simulators[name]
        assert simulator.records(records) == [], name
        assert simulator.faults.error_rate == 0.0
