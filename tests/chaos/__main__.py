"""`python -m tests.chaos`: the full-size chaos runs (`make chaos`), each printing its summary; exit 1 if any
audit found a broken invariant."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path
from typing import cast

from syncd.logs import configure_logging
from tests.chaos.harness import Mode, Plan, run_plan


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run the chosen plans one after the other, print each summary."""
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--people", type=int, default=2000, help="distinct people across the systems")
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs per run")
    parser.add_argument("--mode", choices=("run", "once", "both"), default="both",
                        help="`syncd run`, `syncd sync --once` in a loop, or one run of each")
    parser.add_argument("--faults", choices=("off", "on", "both"), default="both",
                        help="5xx, 429s, timeouts, webhook chaos, token expiry and a revoked grant")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kill-after", type=float, nargs=2, default=(4.0, 20.0), metavar=("MIN_S", "MAX_S"),
                        help="a SIGKILL lands between MIN_S and MAX_S seconds after each start")
    parser.add_argument("--min-edits", type=int, default=100,
                        help="kills go on until this many edits of linked people were confirmed (or 15 minutes)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep configs, stores and logs here")
    args = parser.parse_args(argv)
    configure_logging("warning", "console")  # the harness's own connectors: only what goes wrong
    modes = ("run", "once") if args.mode == "both" else (args.mode,)
    faults = (False, True) if args.faults == "both" else (args.faults == "on",)
    root = args.workdir or Path(tempfile.mkdtemp(prefix="syncd-chaos-"))
    failed = False
    for mode in modes:
        for with_faults in faults:
            # Under faults a daemon needs longer to get anywhere (each injected Zoho Books 429 asks for 60 s).
            low, high = (max(args.kill_after[0], 15.0), max(args.kill_after[1], 60.0)) if with_faults \
                else args.kill_after
            plan = Plan(people=args.people, kills=args.kills, mode=cast(Mode, mode), faults=with_faults,
                        seed=args.seed, kill_after_s=(low, high), min_edits=args.min_edits, longest_s=900.0)
            workdir = root / f"{mode}-{'faults' if with_faults else 'clean'}"
            outcome = asyncio.run(run_plan(plan, workdir))
            print(outcome.summary(), flush=True)
            print(f"  logs and store: {workdir}", flush=True)
            failed |= not outcome.audit.ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
