"""Run a command and write its CPU time and peak RSS as one JSON object, from a process small enough not to
lend the command its own peak: on Linux a child forked from a large parent starts with the parent's peak RSS
as its own (`ru_maxrss` keeps the high-water mark across exec), so the bench, which holds a whole population's
stamps, would be measured instead of syncd.

Run as `python -m bench.rusage OUT.json COMMAND...`; exits with the command's exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def main(argv: list[str]) -> int:
    """Run `argv[1:]`, write {"cpu_s", "peak_rss_mb"} of it to `argv[0]`, return its exit code."""
    out, command = argv[0], argv[1:]
    child = subprocess.Popen(command)
    _, status, usage = os.wait4(child.pid, 0)
    with open(out, "w", encoding="utf-8") as f:
        # ru_maxrss is in KiB on Linux.
        json.dump({"cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024}, f)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
