"""The container image: built with Docker when a daemon is there; otherwise (and always) its layout, entrypoint,
environment and health check are tried by running the same commands in this venv over a copy of the image's
files, laid out as the Dockerfile's COPY lines put them."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import tomli_w
import yaml
from cryptography.fernet import Fernet

from syncd.sandbox.runner import Sandbox
from syncd.settings import load_settings
from tests.engine.test_daemon import DEADLINE_S, FAST_ZOHO

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


@dataclass
class Dockerfile:
    """What the final stage of a Dockerfile declares."""

    env: dict[str, str] = field(default_factory=dict)
    copies: list[tuple[str, str]] = field(default_factory=list)  # (source in the repo, path in the image)
    volumes: list[str] = field(default_factory=list)
    user: str = ""
    workdir: str = ""
    healthcheck: list[str] = field(default_factory=list)
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path) -> Dockerfile:
        """Parse the instructions of the last stage (continuation lines joined, comments dropped)."""
        logical: list[str] = []
        pending = ""
        for line in path.read_text().splitlines():
            if line.lstrip().startswith("#") or not line.strip():
                continue
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            logical.append(pending + line)
            pending = ""
        stage = cls()
        for instruction in logical:
            keyword, _, rest = instruction.strip().partition(" ")
            keyword, rest = keyword.upper(), rest.strip()
            if keyword == "FROM":
                stage = cls()
            elif keyword == "ENV":
                stage.env.update(dict(item.split("=", 1) for item in shlex.split(rest)))
            elif keyword == "COPY" and not rest.startswith("--from"):
                *sources, dest = shlex.split(rest)
                stage.copies.extend((source, dest) for source in sources)
            elif keyword == "VOLUME":
                stage.volumes = json.loads(rest)
            elif keyword == "USER":
                stage.user = rest
            elif keyword == "WORKDIR":
                stage.workdir = rest
            elif keyword == "HEALTHCHECK":
                stage.healthcheck = json.loads(rest[rest.index("CMD") + 3:])
            elif keyword == "ENTRYPOINT":
                stage.entrypoint = json.loads(rest)
            elif keyword == "CMD":
                stage.cmd = json.loads(rest)
        return stage


DOCKERFILE = Dockerfile.read(REPO / "Dockerfile")
COMPOSE: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())


class ImageRoot:
    """The image's files under a folder standing for `/`: `path('/etc/syncd')` is where that is here."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for source, dest in DOCKERFILE.copies:
            target = self.path(dest)
            target.parent.mkdir(parents=True, exist_ok=True)
            if (REPO / source).is_dir():
                shutil.copytree(REPO / source, target)
            else:
                shutil.copy2(REPO / source, target)
        for volume in DOCKERFILE.volumes:
            self.path(volume).mkdir(parents=True, exist_ok=True)

    def path(self, image_path: str) -> Path:
        """Where an absolute path of the image is in this copy."""
        return self.root / image_path.lstrip("/")

    def env(self, extra: Mapping[str, str] = ()) -> dict[str, str]:  # type: ignore[assignment]
        """The image's ENV (its file paths moved into this copy), this venv first on PATH, then `extra`."""
        image_env = {k: str(self.path(v)) if v.startswith(("/etc/", "/var/")) else v
                     for k, v in DOCKERFILE.env.items()}
        return {**os.environ, **image_env, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                **dict(extra)}

    def command(self, *args: str) -> list[str]:
        """The container's command line: the entrypoint (a file the image copies) with `args` or CMD."""
        program, *rest = DOCKERFILE.entrypoint
        found = next((dest for _, dest in DOCKERFILE.copies if Path(dest).name == program), program)
        return [str(self.path(found)), *rest, *(args or DOCKERFILE.cmd)]


@pytest.fixture
def image(tmp_path: Path) -> Iterator[ImageRoot]:
    """A fresh copy of the image's files."""
    yield ImageRoot(tmp_path / "image")


@pytest.fixture(scope="module")
async def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The three simulators on free loopback ports for this module."""
    async with Sandbox.running(workdir=tmp_path_factory.mktemp("container-sandbox")) as running:
        running.zohobooks.apply_limits(FAST_ZOHO)
        yield running


def test_the_image_keeps_state_in_a_volume_owned_by_its_user_and_checks_health() -> None:
    assert DOCKERFILE.volumes == [DOCKERFILE.env["SYNCD_DATA_DIR"]]
    assert DOCKERFILE.user == "syncd" and DOCKERFILE.workdir == DOCKERFILE.volumes[0]
    text = (REPO / "Dockerfile").read_text()
    # The folder is made and owned by the service user before VOLUME copies it into each new volume.
    assert text.index(f"install -d -o syncd -g syncd -m 0750 {DOCKERFILE.volumes[0]}") < text.index("VOLUME")
    assert DOCKERFILE.env["SYNCD_HEALTHCHECK_URL"].endswith("/healthz")
    assert DOCKERFILE.env["SYNCD_LISTEN_HOST"] == "0.0.0.0"
    assert not Path(DOCKERFILE.env["SYNCD_CONFIG"]).is_relative_to(DOCKERFILE.volumes[0])
    # docker-compose.yml mounts its config where the image reads it, and the data volume where it writes.
    service = COMPOSE["services"]["syncd"]
    assert f"./contrib/docker/syncd.toml:{DOCKERFILE.env['SYNCD_CONFIG']}:ro" in service["volumes"]
    assert f"syncd-data:{DOCKERFILE.volumes[0]}" in service["volumes"]
    assert service["environment"]["SYNCD_DB_UPGRADE"] == "1"
    assert service["environment"]["SYNCD_STORE_URL"].startswith("postgresql://")
    assert COMPOSE["services"]["db"]["image"].startswith("postgres:")


async def test_the_entrypoint_upgrades_the_store_in_the_volume_and_runs_listening_on_all_interfaces(
    image: ImageRoot, sandbox: Sandbox
) -> None:
    hub, zoho = sandbox.descriptor["hubspot"], sandbox.descriptor["zohobooks"]
    # A config as an operator mounts it: no store URL and no listener hosts, so the image's defaults apply.
    config = {
        "security": {"token_key": "${SYNCD_TOKEN_KEY}"},
        "logging": {"format": "json"},
        "polling": {"interval_s": 3600},
        "webhooks": {"port": 0},
        "admin": {"port": 0},
        "mappings": {"active": ["mappings/hubspot-zohobooks.toml"]},
        "connections": {
            "hub": {"system": "hubspot", **{k: hub[k] for k in ("base_url", "client_id", "client_secret",
                                                                "refresh_token", "app_secret")}},
            "books": {"system": "zohobooks", "rate_limit": FAST_ZOHO,
                      **{k: zoho[k] for k in ("base_url", "accounts_url", "client_id", "client_secret",
                                              "refresh_token", "organization_id")}},
        },
    }
    config_path = Path(image.env()["SYNCD_CONFIG"])
    config_path.write_bytes(tomli_w.dumps(config).encode())
    etc_before = sorted(p.name for p in config_path.parent.iterdir())
    data = image.path(DOCKERFILE.volumes[0])
    env = image.env({"SYNCD_DB_UPGRADE": "1", "SYNCD_TOKEN_KEY": Fernet.generate_key().decode()})
    proc = await asyncio.create_subprocess_exec(
        *image.command(), cwd=data, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        # The schema is upgraded before the daemon starts, in the store in the volume.
        upgraded = (await asyncio.wait_for(proc.stdout.readline(), DEADLINE_S)).decode()
        assert upgraded.startswith(f"sqlite+aiosqlite:///{data / 'syncd.db'}: upgraded from an empty store"), (
            upgraded or (await proc.stderr.read()).decode())
        admin_url = ""
        while not admin_url and (line := await asyncio.wait_for(proc.stderr.readline(), DEADLINE_S)):
            entry = json.loads(line) if line.startswith(b"{") else {}
            if entry.get("listener") == "admin":
                admin_url = str(entry["url"])
        assert admin_url.startswith("http://0.0.0.0:"), admin_url
        assert (data / "syncd.db").is_file()
        assert sorted(p.name for p in config_path.parent.iterdir()) == etc_before, "nothing beside the config"
        # The image's HEALTHCHECK command, as Docker runs it, against the admin listener.
        port = admin_url.rsplit(":", 1)[1]
        check = await asyncio.create_subprocess_exec(
            *DOCKERFILE.healthcheck, env={**env, "SYNCD_HEALTHCHECK_URL": f"http://127.0.0.1:{port}/healthz"})
        assert await asyncio.wait_for(check.wait(), DEADLINE_S) == 0
        # The entrypoint exec'd syncd: the container's stop signal reaches it, and it stops cleanly.
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), DEADLINE_S)
        assert proc.returncode == 0, err.decode()
        assert b"daemon stopped" in err
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    # And the health check fails once nothing answers.
    failed = subprocess.run([*DOCKERFILE.healthcheck], env={**env, "SYNCD_HEALTHCHECK_URL":
                            f"http://127.0.0.1:{port}/healthz"}, capture_output=True, timeout=DEADLINE_S)
    assert failed.returncode != 0


def test_the_compose_config_passes_check_config_where_the_image_reads_it(image: ImageRoot) -> None:
    shutil.copy2(REPO / "contrib/docker/syncd.toml", image.env()["SYNCD_CONFIG"])
    compose_env = {k: v.replace("${POSTGRES_PASSWORD}", "pw")
                   for k, v in COMPOSE["services"]["syncd"]["environment"].items()}
    secrets = {name: "x" for name in ("SYNCD_ADMIN_TOKEN", "HUBSPOT_CLIENT_ID", "HUBSPOT_CLIENT_SECRET",
                                      "HUBSPOT_APP_SECRET", "ZOHO_CLIENT_ID", "ZOHO_CLIENT_SECRET",
                                      "ZOHO_ORGANIZATION_ID", "ZOHO_WEBHOOK_SECRET")}
    env = image.env({**compose_env, **secrets, "SYNCD_TOKEN_KEY": Fernet.generate_key().decode()})
    done = subprocess.run(image.command("check-config"), env=env, capture_output=True, text=True,
                          timeout=DEADLINE_S)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK. Connections: hubspot (hubspot), zohobooks (zohobooks); mappings: 1 active." in done.stdout
    settings = load_settings(env["SYNCD_CONFIG"], env)
    assert settings.store.url == "postgresql://syncd:pw@db:5432/syncd"
    assert (settings.admin.host, settings.webhooks.host) == ("0.0.0.0", "0.0.0.0")
    assert settings.mappings.active == [image.path("/etc/syncd/mappings/hubspot-zohobooks.toml")]


def test_data_dir_and_listen_host_are_defaults_the_config_overrides(tmp_path: Path) -> None:
    config = tmp_path / "etc" / "syncd.toml"
    config.parent.mkdir()
    data = tmp_path / "data"
    env = {"SYNCD_DATA_DIR": str(data), "SYNCD_LISTEN_HOST": "0.0.0.0"}

    def load(text: str, environ: Mapping[str, str]) -> Any:
        config.write_text(text)
        return load_settings(config, environ)

    assert load("", {}).store.url == f"sqlite:///{config.parent / 'syncd.db'}"
    assert load("", {}).admin.host == "127.0.0.1"
    settings = load("", env)
    assert settings.store.url == f"sqlite:///{data / 'syncd.db'}"
    assert (settings.admin.host, settings.webhooks.host) == ("0.0.0.0", "0.0.0.0")
    settings = load('[store]\nurl = "sqlite:///state/s.db"\n[admin]\nhost = "127.0.0.1"\n', env)
    assert settings.store.url == f"sqlite:///{data / 'state' / 's.db'}"
    assert (settings.admin.host, settings.webhooks.host) == ("127.0.0.1", "0.0.0.0")
    settings = load(f'[store]\nurl = "sqlite:///{tmp_path}/abs.db"\n', env)
    assert settings.store.url == f"sqlite:///{tmp_path}/abs.db"


def _docker_available() -> str | None:
    """None when a Docker daemon answers, else why not."""
    if shutil.which("docker") is None:
        return "docker is not installed"
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=60)
    if info.returncode != 0:
        return f"no Docker daemon (`docker info` failed: {info.stderr.strip().splitlines()[-1:]})"
    return None


@pytest.mark.slow
def test_the_image_builds_and_declares_its_volume_user_and_health_check() -> None:
    reason = _docker_available()
    if reason is not None:
        pytest.skip(reason)
    tag = f"syncd-test:{os.getpid()}"
    built = subprocess.run(["docker", "build", "-t", tag, str(REPO)], capture_output=True, text=True, timeout=1800)
    if built.returncode != 0:
        log = built.stdout + built.stderr
        if any(s in log for s in ("failed to resolve source metadata", "pull access denied", "dial tcp",
                                  "failed to do request", "TLS handshake timeout", "no such host")):
            pytest.skip(f"the base image cannot be fetched here: {log.strip().splitlines()[-1]}")
        raise AssertionError(log)
    try:
        inspected = json.loads(subprocess.run(["docker", "image", "inspect", tag], capture_output=True,
                                              text=True, check=True).stdout)[0]["Config"]
        assert inspected["User"] == "syncd"
        assert list(inspected["Volumes"]) == ["/var/lib/syncd"]
        assert inspected["Healthcheck"]["Test"][0] == "CMD"
        owner = subprocess.run(["docker", "run", "--rm", "--entrypoint", "stat", tag, "-c", "%U",
                                "/var/lib/syncd"], capture_output=True, text=True, check=True).stdout.strip()
        assert owner == "syncd"
        version = subprocess.run(["docker", "run", "--rm", tag, "--version"], capture_output=True, text=True)
        assert version.returncode == 0 and "version" in version.stdout, version.stderr
    finally:
        subprocess.run(["docker", "image", "rm", "-f", tag], capture_output=True)


def test_the_systemd_unit_is_a_notify_service_that_reloads_on_hup(tmp_path: Path) -> None:
    text = (REPO / "contrib/systemd/syncd.service").read_text()
    settings = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
    assert settings["Type"] == "notify" and settings["NotifyAccess"] == "main"
    assert settings["ExecStart"].endswith("syncd run") and settings["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert int(settings["WatchdogSec"]) > 0 and settings["StateDirectory"] == "syncd"
    assert "SYNCD_DATA_DIR=/var/lib/syncd" in text
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed: the unit's syntax is not verified")
    # The unit as installed with this venv's syncd: systemd's own checker finds nothing to say.
    unit = tmp_path / "syncd.service"
    unit.write_text(text.replace("/opt/syncd/bin/syncd", str(VENV_BIN / "syncd")))
    verified = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert verified.returncode == 0 and not verified.stderr.strip(), verified.stderr
