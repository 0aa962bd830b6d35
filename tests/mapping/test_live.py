"""`syncd mappings validate --live`: the mapping files checked against the systems' own field lists."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from syncd.demo import lift_limits
from syncd.mapping.loader import SHIPPED_MAPPINGS_DIR
from syncd.sandbox.command import write_config
from syncd.sandbox.runner import Sandbox
from syncd.store import upgrade
from syncd.systems import registrations


async def syncd(*args: str) -> tuple[int, str, str]:
    """Run `syncd` in a subprocess without blocking the loop that serves the sandbox."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "syncd", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=dict(os.environ),
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_shipped_mappings_match_the_live_systems_and_a_typo_is_caught_with_its_line(tmp_path: Path) -> None:
    async with Sandbox.running(workdir=tmp_path / "sandbox") as sandbox:
        limits = lift_limits(sandbox)
        config = tmp_path / "syncd.toml"
        write_config(config, sandbox.descriptor, rate_limits=limits)
        await upgrade(f"sqlite:///{tmp_path / 'syncd.db'}")
        code, out, err = await syncd("mappings", "validate", "--live", "--config", str(config))
        assert code == 0, out + err
        assert out.count(": OK (") == len({f for system in registrations() for f in system.mapping_files})
        # A field name the system does not have: caught only by the live check, with file and line.
        text = (SHIPPED_MAPPINGS_DIR / "hubspot-zohobooks.toml").read_text()
        broken = tmp_path / "hubspot-zohobooks.toml"
        broken.write_text(text.replace('crm = "firstname"', 'crm = "first_nmae"'))
        code, out, _ = await syncd("mappings", "validate", str(broken))
        assert code == 0  # statically the file is fine
        code, out, err = await syncd("mappings", "validate", "--live", "--config", str(config), str(broken))
    assert code == 2
    line = broken.read_text().splitlines().index('crm = "first_nmae"') + 1
    assert f"{broken}:{line}: objects.customer.fields.first_name.crm:" in out
    assert "first_nmae" in out
