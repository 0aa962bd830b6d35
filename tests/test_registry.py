"""The registry in `syncd.systems` is the only list of systems: a system registered there (and nowhere else) is
configured, mapped, built and served like the shipped ones, and no other module names a registered system."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

import syncd.systems
from syncd.connectors.registry import build_connector
from syncd.errors import ConfigError
from syncd.mapping.loader import check_text
from syncd.sandbox.command import ports_of, sandbox_command, systems_of, write_config
from syncd.sandbox.runner import Sandbox, simulated_systems
from syncd.settings import load_settings
from syncd.systems import registrations
from tests.plugin_system import REGISTRATION, ToyBooksConnection, ToyBooksConnector

SYNCD = Path(syncd.systems.__file__).resolve().parent
REPO = SYNCD.parent

TOY_MAPPING = """\
name = "hubspot-toybooks"

[mapping]
crm = "hubspot"
accounting = "toybooks"

[objects.customer]
crm_object = "contacts"
acc_object = "contacts"
match_keys = ["email"]

[objects.customer.fields.email]
crm = "email"
acc = "email"
transform = "email"
"""


@pytest.fixture
def toybooks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The throw-away system in the registry for one test: its one line, nothing else."""
    monkeypatch.setitem(syncd.systems.REGISTRY, "toybooks", "tests.plugin_system:REGISTRATION")  # type: ignore[arg-type]
    yield


def test_config_validation_accepts_a_registered_system_and_reports_its_errors(toybooks: None, tmp_path: Path
                                                                               ) -> None:
    config = tmp_path / "syncd.toml"
    table = ('[security]\ntoken_key = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI="\n'
             '[connections.toy]\nsystem = "toybooks"\nclient_id = "a"\nclient_secret = "b"\nbase_url = "http://x"\n')
    config.write_text(table + 'ledger = "main"\n')
    connection = load_settings(config).connections["toy"]
    assert isinstance(connection, ToyBooksConnection) and connection.ledger == "main"
    config.write_text(table + "colour = 1\n")
    with pytest.raises(ConfigError) as refused:
        load_settings(config)
    text = str(refused.value)
    assert f"{config}:3: connections.toy.ledger: missing required key" in text  # the table's line
    assert f"{config}:8: connections.toy.colour: unknown key (allowed here: base_url, client_id" in text


def test_a_mapping_naming_a_registered_system_validates(toybooks: None) -> None:
    compiled, problems = check_text(TOY_MAPPING, "hubspot-toybooks.toml")
    assert problems == [] and compiled is not None
    assert (compiled.crm_system, compiled.acc_system) == ("hubspot", "toybooks")
    _, problems = check_text(TOY_MAPPING.replace('acc_object = "contacts"', 'acc_object = "ledgers"'), "m.toml")
    assert [p.message for p in problems] == [
        "toybooks has no object 'ledgers' that syncd syncs (known: contacts, invoices)"]


def test_build_connector_builds_a_registered_system(toybooks: None) -> None:
    settings = ToyBooksConnection(system="toybooks", client_id="a", client_secret="b",  # type: ignore[arg-type]
                                  base_url="http://x", ledger="main")
    connector = build_connector("toy", settings)
    assert isinstance(connector, ToyBooksConnector) and connector.name == "toy"


async def test_the_sandbox_serves_a_registered_system_on_its_port_option(toybooks: None, tmp_path: Path) -> None:
    assert "toybooks" in simulated_systems()
    assert "--toybooks-port" in sandbox_command.get_help(sandbox_command.make_context("sandbox", ["--help"],
                                                                                      resilient_parsing=True))
    context = sandbox_command.make_context("sandbox", ["--toybooks-port", "0", "--systems", "hubspot,toybooks"])
    ports = ports_of(context.params)
    assert ports["toybooks"] == 0 and ports["hubspot"] == 8901
    systems = systems_of(context.params["systems_value"])
    assert systems == ["hubspot", "toybooks"]
    async with Sandbox.running(workdir=tmp_path, ports={**ports, "hubspot": 0}, systems=systems) as sandbox:
        root = sandbox.descriptor["toybooks"]["base_url"]
        async with aiohttp.ClientSession() as http, http.get(f"{root}/_sandbox/stats") as response:
            assert response.status == 200
        config = tmp_path / "syncd.toml"
        write_config(config, sandbox.descriptor)  # `syncd sandbox --write-config`
        settings = load_settings(config)
    assert isinstance(settings.connections["toybooks"], ToyBooksConnection)
    assert settings.connections["toybooks"].base_url == root  # type: ignore[attr-defined]
    assert REGISTRATION.name == "toybooks"


# ------------------------------------------------------------------------------------------ the only list

#: Where a registered system's name may appear besides its own folders and the registry, each with its reason.
ALLOWED: dict[str, str] = {}


def system_words() -> re.Pattern[str]:
    """Each registered system's name and label (and a label's first word alone, as people say "Zoho"), as words,
    in any case."""
    words = {word for entry in registrations() for word in (entry.name, entry.label, entry.label.split()[0])}
    return re.compile("|".join(rf"\b{re.escape(word)}\b" for word in sorted(words)), re.IGNORECASE)


def own_folder(path: Path) -> bool:
    """A system's own folder (syncd/connectors/<system>/ or syncd/sandbox/<system>/), or the registry."""
    relative = path.relative_to(SYNCD).parts
    names = {entry.name for entry in registrations()}
    return (len(relative) > 2 and relative[0] in ("connectors", "sandbox") and relative[1] in names) \
        or relative == ("systems.py",)


def test_no_module_outside_a_systems_own_folders_names_a_registered_system() -> None:
    pattern = system_words()
    found = []
    for path in sorted(SYNCD.rglob("*.py")):
        where = str(path.relative_to(SYNCD))
        if own_folder(path) or where in ALLOWED:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                found.append(f"syncd/{where}:{number}: {line.strip()}")
    assert found == []


# ------------------------------------------------------------------------------- production and the sandbox

#: Modules outside syncd/sandbox/ that start the sandbox, so may import it: the commands that do.
STARTS_THE_SANDBOX = {"demo.py"}


def test_production_code_neither_imports_the_sandbox_nor_calls_its_control_plane() -> None:
    found = []
    for path in sorted(SYNCD.rglob("*.py")):
        where = str(path.relative_to(SYNCD))
        if where.startswith("sandbox/") or where in STARTS_THE_SANDBOX:
            continue
        text = path.read_text(encoding="utf-8")
        if "/_sandbox" in text:
            found.append(f"syncd/{where}: names /_sandbox")
        for node in ast.walk(ast.parse(text)):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"syncd/{where}:{node.lineno}: imports {name}" for name in names
                      if name == "syncd.sandbox" or name.startswith("syncd.sandbox.")]
    assert found == []


@pytest.mark.parametrize("command", ["sandbox", "demo"])
def test_without_the_sandbox_extra_its_commands_say_how_to_install_it(command: str) -> None:
    # As on an install without `syncd[sandbox]`: its dependency (faker) cannot be imported.
    script = f"import sys; sys.modules['faker'] = None; from syncd.cli import main; main([{command!r}])"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})
    assert result.returncode == 1
    assert f"`syncd {command}` is not available in this build of syncd: it needs faker: " \
           "pip install 'syncd[sandbox]'" in result.stderr


def test_reading_the_registry_and_settings_models_imports_no_vendor_sdk() -> None:
    # Settings validation loads every configured system's model: a system's package must keep its SDK (and its
    # connector) for when a connection is used, as the shipped ones' lazy `__init__` does.
    script = (
        "import sys; import syncd.settings; before = {m.split('.')[0] for m in sys.modules}; "
        "from syncd.systems import registrations; from syncd.settings import connection_model; "
        "[connection_model(entry.name) for entry in registrations()]; "
        "print(sorted({m.split('.')[0] for m in sys.modules} - before))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
