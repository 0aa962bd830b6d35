"""Config loading: every problem reported at once, with file, line, key and what was expected."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from syncd.connectors.hubspot.settings import HubSpotConnection
from syncd.errors import ConfigError
from syncd.settings import load_settings
from syncd.systems import REGISTRY

GOOD = """
[store]
url = "sqlite:///data/syncd.db"
[security]
token_key = "${SYNCD_TOKEN_KEY}"
[connections.hs]
system = "hubspot"
client_id = "app-1"
client_secret = "${HS_SECRET}"
[connections.hs.rate_limit]
window_s = 10
window_max = 100
"""
# Shaped like a Fernet key (32 bytes, url-safe base64), as check-config demands.
KEY = "k" * 43 + "="
ENV = {"SYNCD_TOKEN_KEY": KEY, "HS_SECRET": "hs-secret-value"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "syncd.toml"
    path.write_text(text)
    return path


def problems_of(path: Path, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env=ENV if env is None else env)
    return [str(p) for p in caught.value.problems]


def test_without_a_store_section_the_store_sits_beside_the_config_not_in_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = load_settings(write(tmp_path, "[polling]\ninterval_s = 30\n"), env=ENV)
    assert settings.store.url == f"sqlite:///{tmp_path}/syncd.db"
    with_section = load_settings(write(tmp_path, "[store]\n"), env=ENV)
    assert with_section.store.url == f"sqlite:///{tmp_path}/syncd.db"


def test_good_config_resolves_env_secrets_and_paths(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD), env=ENV)
    conn = settings.connections["hs"]
    assert isinstance(conn, HubSpotConnection)
    assert conn.client_secret.get_secret_value() == "hs-secret-value"
    assert "hs-secret-value" not in repr(settings)
    assert settings.store.url == f"sqlite:///{tmp_path}/data/syncd.db"
    assert conn.rate_limit is not None and conn.rate_limit.window_max == 100
    assert "hs-secret-value" in settings.secret_values()


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[store]\nurl = "x"\n[logging\nlevel = "info"\n')
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:3:")
    assert "invalid TOML" in problem


def test_several_errors_reported_together_each_with_its_line(tmp_path: Path) -> None:
    text = GOOD.replace('client_id = "app-1"\n', "") + (
        '[logging]\nlevel = "loud"\nformat = "json"\ncolour = true\n'
        '[polling]\ninterval_s = "often"\n'
    )
    path = write(tmp_path, text)
    found = problems_of(path, env={"SYNCD_TOKEN_KEY": KEY})
    lines = text.splitlines()

    def line_of(fragment: str) -> int:
        return next(i for i, line in enumerate(lines, start=1) if line.startswith(fragment))

    expected = {
        f"{path}:{line_of('[connections.hs]')}: connections.hs.client_id: missing required key",
        f"{path}:{line_of('client_secret')}: connections.hs.client_secret: environment variable HS_SECRET is not set",
        f"{path}:{line_of('level')}: logging.level: expected 'debug', 'info', 'warning' or 'error' (got 'loud')",
        f"{path}:{line_of('colour')}: logging.colour: unknown key (allowed here: format, level)",
        f"{path}:{line_of('interval_s')}: polling.interval_s: expected a valid number, unable to parse string as a"
        " number (got 'often')",
    }
    assert set(found) == expected


def test_wrong_system_and_missing_files_are_named(tmp_path: Path) -> None:
    text = GOOD + '[connections.qb]\nsystem = "abacus"\n[mappings]\nactive = ["nope.toml"]\n'
    found = problems_of(write(tmp_path, text))
    line = text.splitlines().index("[connections.qb]") + 1
    assert f"{tmp_path}/syncd.toml:{line}: connections.qb: `system` must be one of: {', '.join(REGISTRY)}" in found
    text = GOOD + '[mappings]\nactive = ["nope.toml"]\n'
    found = problems_of(write(tmp_path, text))
    line = text.splitlines().index('active = ["nope.toml"]') + 1
    assert found == [f"{tmp_path}/syncd.toml:{line}: mappings.active[0]: mapping file not found: {tmp_path}/nope.toml"]


def test_connections_need_an_encryption_key(tmp_path: Path) -> None:
    text = GOOD.replace('[security]\ntoken_key = "${SYNCD_TOKEN_KEY}"\n', "")
    (problem,) = problems_of(write(tmp_path, text))
    assert "security" in problem and "token_key" in problem


def test_wrong_type_of_a_secret_does_not_echo_it(tmp_path: Path) -> None:
    text = GOOD.replace('client_secret = "${HS_SECRET}"', "client_secret = 123456789")
    (problem,) = problems_of(write(tmp_path, text))
    assert "connections.hs.client_secret" in problem and "123456789" not in problem


def test_secret_str_in_models() -> None:
    assert isinstance(HubSpotConnection.model_fields["client_secret"].annotation, type)
    conn = HubSpotConnection(system="hubspot", client_id="x", client_secret=SecretStr("abcdefgh"))
    assert "abcdefgh" not in repr(conn) and "abcdefgh" not in str(conn.model_dump())


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syncd", *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_check_config_exits_2_and_lists_every_problem(tmp_path: Path) -> None:
    text = GOOD.replace('client_id = "app-1"\n', 'client_id = 7\nshoe_size = 42\n')
    path = write(tmp_path, text)
    result = run_cli("check-config", str(path), env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 2
    assert "4 configuration problems" in result.stderr
    for needle in (
        "environment variable SYNCD_TOKEN_KEY is not set",
        "client_id: expected a valid string (got 7)",
        "shoe_size: unknown key",
        "environment variable HS_SECRET is not set",
    ):
        assert needle in result.stderr
    assert result.stdout == ""


def test_check_config_ok_exits_0(tmp_path: Path) -> None:
    result = run_cli("check-config", str(write(tmp_path, GOOD)), env={"PATH": "/usr/bin:/bin", **ENV})
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout and "hs (hubspot)" in result.stdout


def test_unknown_command_is_usage_error() -> None:
    result = run_cli("frobnicate")
    assert result.returncode == 2
    assert "No such command" in result.stderr


def test_shipped_example_config_is_valid() -> None:
    example = Path(__file__).parent.parent / "config.example.toml"
    env = {
        name: "x" * 43 + "="
        for name in ("SYNCD_TOKEN_KEY", "SYNCD_ADMIN_TOKEN", "HUBSPOT_CLIENT_SECRET", "HUBSPOT_REFRESH_TOKEN",
                     "HUBSPOT_APP_SECRET", "SALESFORCE_CLIENT_SECRET", "SALESFORCE_REFRESH_TOKEN",
                     "ZOHO_CLIENT_SECRET", "ZOHO_REFRESH_TOKEN", "ZOHO_WEBHOOK_SECRET")
    }
    settings = load_settings(example, env=env)
    assert set(settings.connections) == {"hubspot", "salesforce", "zohobooks"}
    assert len(settings.mappings.active) == 2


@pytest.mark.parametrize(
    "command",
    ["run", "sync", "check-config", "db", "links", "conflicts", "sandbox", "demo", "auth", "mappings"],
)
def test_every_subcommand_has_help(command: str) -> None:
    result = run_cli(command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage: syncd" in result.stdout


def test_check_config_takes_config_and_syncd_config_like_every_command(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    by_option = run_cli("check-config", "--config", str(path), env={"PATH": "/usr/bin:/bin", **ENV})
    assert by_option.returncode == 0, by_option.stderr
    assert f"{path}: OK" in by_option.stdout
    by_env = run_cli("check-config", env={"PATH": "/usr/bin:/bin", "SYNCD_CONFIG": str(path), **ENV})
    assert by_env.returncode == 0, by_env.stderr
    assert f"{path}: OK" in by_env.stdout


@pytest.mark.parametrize(
    ("store", "key", "expected"),
    [
        ('url = "mysql://syncd@db/syncd"', KEY, "store.url: expected a sqlite:///path.db or postgresql"),
        ('url = "sqlite:///:memory:"', KEY, "store.url: syncd needs a SQLite file"),
        ('url = "sqlite:///data/syncd.db"', "not-a-fernet-key-at-all", "security.token_key: expected a Fernet key"),
        ('url = "sqlite:///data/syncd.db"', "k" * 44, "security.token_key: expected a Fernet key"),
    ],
    ids=["mysql", "sqlite-memory", "key-not-base64", "key-33-bytes"],
)
def test_check_config_checks_the_store_url_and_key_shape_offline(
    tmp_path: Path, store: str, key: str, expected: str
) -> None:
    path = write(tmp_path, GOOD.replace('url = "sqlite:///data/syncd.db"', store))
    result = run_cli("check-config", "--config", str(path),
                     env={"PATH": "/usr/bin:/bin", **ENV, "SYNCD_TOKEN_KEY": key})
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{path}:" in result.stderr and expected in result.stderr
    assert key not in result.stderr  # a near-miss key is still a secret


def test_a_key_file_of_the_wrong_shape_is_reported_with_the_file(tmp_path: Path) -> None:
    key_file = tmp_path / "token.key"
    key_file.write_text("short\n")
    path = write(tmp_path, GOOD.replace('token_key = "${SYNCD_TOKEN_KEY}"', 'token_key_file = "token.key"'))
    problems = problems_of(path)
    assert len(problems) == 1 and f"security.token_key_file: expected a Fernet key (in {key_file})" in problems[0]


def test_budget_keys_default_to_a_fifth_kept_free_and_bad_values_are_named(tmp_path: Path) -> None:
    conn = load_settings(write(tmp_path, GOOD), env=ENV).connections["hs"]
    assert conn.rate_limit is not None
    assert (conn.rate_limit.reserve_share, conn.rate_limit.webhook_share, conn.rate_limit.day_timezone) == (
        0.2, 0.05, "UTC")
    bad = GOOD + 'reserve_share = 1.5\nday_timezone = "Mars/Olympus"\n'
    problems = problems_of(write(tmp_path, bad))
    assert len(problems) == 2
    assert any("connections.hs.rate_limit.reserve_share: expected less than 1" in p for p in problems), problems
    assert any("day_timezone: expected a time zone name such as UTC or Europe/Berlin (got 'Mars/Olympus')" in p
               for p in problems), problems


def test_the_store_scope_leaves_unset_secrets_elsewhere_as_written_and_says_which(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + '[admin]\nport = "${ADMIN_PORT}"\n')
    # Everything needed: each unset variable is a problem, as before.
    unset = [p for p in problems_of(path, env={}) if "is not set" in p]
    assert [p.split(": ")[1] for p in unset] == ["security.token_key", "connections.hs.client_secret", "admin.port"]
    settings = load_settings(path, env={}, scope="store")
    assert settings.store.url == f"sqlite:///{tmp_path}/data/syncd.db"
    assert settings.unresolved == {"security.token_key", "connections.hs.client_secret", "admin.port"}
    # A variable that is set is taken as ever; a store section still needs its own.
    partly = load_settings(path, env={"HS_SECRET": "hs-secret-value"}, scope="store")
    assert partly.unresolved == {"security.token_key", "admin.port"}
    in_store = write(tmp_path, '[store]\nurl = "postgresql://u:${PG_PASSWORD}@db/syncd"\n[connections.hs]\n'
                               'system = "hubspot"\nclient_id = "a"\nclient_secret = "${HS_SECRET}"\n'
                               '[security]\ntoken_key = "${SYNCD_TOKEN_KEY}"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(in_store, env={}, scope="store")
    assert [p.key_path for p in caught.value.problems] == ["store.url"]
    # Other mistakes anywhere in the file are still reported.
    typo = write(tmp_path, GOOD + "[connections.hs.rate_limt]\nwindow_s = 1\n")
    with pytest.raises(ConfigError, match="rate_limt: unknown key"):
        load_settings(typo, env={}, scope="store")


async def test_settings_loaded_for_the_store_alone_cannot_start_the_engine(tmp_path: Path) -> None:
    from syncd.engine.wiring import WiringError, open_engine

    settings = load_settings(write(tmp_path, GOOD), env={}, scope="store")
    with pytest.raises(WiringError, match=r"security\.token_key"):
        async with open_engine(settings):
            pass
