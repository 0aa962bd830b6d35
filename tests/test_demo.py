"""`syncd demo`: the sandbox seeded with overlapping data, synced until settled, with the outcome shown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from syncd.systems import registrations

REPO = Path(__file__).resolve().parents[1]
# The subprocess runs this checkout's syncd, whatever the environment has installed.
ENV = {"PATH": "/usr/bin:/bin", "COLUMNS": "200", "PYTHONPATH": str(REPO)}


BOOKS = [entry.name for entry in registrations("accounting") if entry.simulator is not None]


@pytest.mark.parametrize("accounting", BOOKS)
def test_demo_syncs_overlapping_data_until_settled_and_shows_what_happened(tmp_path: Path, accounting: str) -> None:
    # As `make demo` runs it: from the project folder, with the default (relative) work folder.
    workdir = tmp_path / "demo-state"
    chosen = [] if accounting == BOOKS[0] else ["--accounting", accounting]  # the first is the default
    result = subprocess.run(
        [sys.executable, "-m", "syncd", "demo", *chosen], cwd=tmp_path,
        capture_output=True, text=True, timeout=180, env=ENV,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    # The people the systems share are linked, not duplicated; the rest are created.
    first_pass = next(line for line in out.splitlines() if line.startswith("Pass 1:"))
    assert "link" in first_pass and "create" in first_pass
    # The team's edits: a won deal becomes an invoice, a payment comes back, one phone clash waits for a person.
    assert "is won, so it gets an invoice" in out and "pays" in out
    assert "conflict hubspot contacts" in out and "phone" in out
    assert "settled: the last pass wrote nothing" in out
    assert "1 open conflict (see" in out
    for kind in ("create", "update", "link", "conflict", "skip"):
        assert kind in out
    # It left a working setup behind: the config it wrote passes check-config.
    check = subprocess.run(
        [sys.executable, "-m", "syncd", "check-config", str(workdir / "syncd.toml")],
        capture_output=True, text=True, timeout=60, env=ENV,
    )
    assert check.returncode == 0, check.stderr


def test_demo_refuses_an_accounting_system_it_cannot_serve_and_names_those_it_can(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "syncd", "demo", "--accounting", "abacus"], cwd=tmp_path,
        capture_output=True, text=True, timeout=60, env=ENV,
    )
    assert result.returncode == 2
    assert f"expected one of: {', '.join(BOOKS)} (got 'abacus')" in result.stderr
    assert not (tmp_path / "demo-state").exists()
