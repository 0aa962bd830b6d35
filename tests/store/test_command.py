"""`syncd db upgrade` and `syncd db current`, run as an operator would, as a separate process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from syncd.store.schema import head_revision


def _syncd(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syncd", *args], capture_output=True, text=True, cwd=cwd, timeout=60, check=False
    )


def test_upgrade_then_current_by_url(database_url: str, tmp_path: Path) -> None:
    before = _syncd("db", "current", "--url", database_url, cwd=tmp_path)
    assert before.returncode == 0, before.stderr
    assert "no schema yet; run `syncd db upgrade`" in before.stdout

    first = _syncd("db", "upgrade", "--url", database_url, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert f"upgraded from an empty store to revision {head_revision()}" in first.stdout

    second = _syncd("db", "upgrade", "--url", database_url, cwd=tmp_path)
    assert f"already at revision {head_revision()}" in second.stdout

    after = _syncd("db", "current", "--url", database_url, cwd=tmp_path)
    assert f"revision {head_revision()} (up to date)" in after.stdout


def test_upgrade_reads_the_store_url_from_the_config(tmp_path: Path) -> None:
    (tmp_path / "syncd.toml").write_text('[store]\nurl = "sqlite:///state/syncd.db"\n')
    (tmp_path / "state").mkdir()
    done = _syncd("db", "upgrade", "--config", str(tmp_path / "syncd.toml"), cwd=Path("/"))
    assert done.returncode == 0, done.stderr
    # A relative SQLite path is relative to the config file, not to where the command ran.
    assert (tmp_path / "state" / "syncd.db").exists()


def test_bad_url_is_a_one_line_error(tmp_path: Path) -> None:
    done = _syncd("db", "upgrade", "--url", "mysql://root:pw@localhost/x", cwd=tmp_path)
    assert done.returncode == 1
    assert "unsupported database 'mysql'" in done.stderr and "Traceback" not in done.stderr
    assert ":pw@" not in done.stderr
