"""`python -m bench firstsync [--sizes 10000,50000] [--runs 1] [--trace DIR]`: the first sync alone (no echo or
idle pass), its wall time and the peak RSS of the syncd process at each size, and how much the peak grew from
the smallest size to each larger one (the target: ≤ 10% from 10k to 50k). With `--trace DIR`, each pass runs
under `bench/memtrace.py` (tracemalloc, several times slower, RSS then not comparable) and writes the
allocation sites holding the most at the traced peak to `DIR/firstsync-<size>.json`; with two sizes or more it
prints the sites that grew most per record between the smallest and largest."""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

from bench import firstsync

DEFAULT_SIZES = (10_000, 50_000)


def first_pass(size: int, sandbox: firstsync.SandboxProcess, trace: Path | None) -> firstsync.Pass:
    """One first sync of `size` contacts into an empty Zoho Books (traced into `trace`, if given)."""
    sandbox.prepare(size)
    entry: tuple[str, ...] = ("-m", "syncd")
    if trace is not None:
        entry = ("-m", "bench.memtrace", str(trace / f"firstsync-{size}.json"), "--")
    with tempfile.TemporaryDirectory(prefix="syncd-bench-mem-") as tmp:
        config = firstsync.write_config(sandbox, Path(tmp))
        return firstsync.run_pass(sandbox, config, entry)


def growers(small: dict[str, Any], large: dict[str, Any], records: int, top: int = 15) -> list[str]:
    """Allocation sites (three frames) by growth between two traced passes, in bytes per record of difference."""
    def sizes(report: dict[str, Any]) -> dict[str, int]:
        return {" <- ".join(t["where"][:3]): t["size"] for t in report["traces"]}

    before, after = sizes(small), sizes(large)
    grown = sorted(((after.get(k, 0) - before.get(k, 0), k) for k in set(before) | set(after)), reverse=True)
    return [f"{delta / records:8.1f} B/record  {delta / 2**20:7.1f} MB  {where}" for delta, where in grown[:top]]


def main(argv: list[str]) -> int:
    """Run the first syncs asked for and print their figures."""
    parser = argparse.ArgumentParser(prog="python -m bench firstsync", description=__doc__)
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="comma-separated contact counts")
    parser.add_argument("--runs", type=int, default=1, help="runs of each size (median shown)")
    parser.add_argument("--trace", type=Path, help="trace allocations with tracemalloc into this directory")
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    if args.trace is not None:
        args.trace.mkdir(parents=True, exist_ok=True)
    peaks: dict[int, float] = {}
    failed = 0
    with tempfile.TemporaryDirectory(prefix="syncd-bench-") as tmp:
        sandbox = firstsync.SandboxProcess(Path(tmp))
        try:
            for size in sizes:
                passes = [first_pass(size, sandbox, args.trace) for _ in range(args.runs)]
                failed += sum(1 for p in passes if p.exit_code != 0)
                peaks[size] = statistics.median(p.peak_rss_mb for p in passes)
                wall = statistics.median(p.wall_s for p in passes)
                cpu = statistics.median(p.cpu_s for p in passes) * 1000 / size
                growth = (peaks[size] / peaks[sizes[0]] - 1) * 100
                print(f"{size:>7,} contacts: {size / wall:8,.1f} records/s, {wall:7.1f} s, {cpu:.2f} CPU s per "
                      f"1,000 records, peak RSS "
                      f"{peaks[size]:6.1f} MB ({growth:+.1f}% from {sizes[0]:,}), exit "
                      f"{[p.exit_code for p in passes]}", flush=True)  # fmt: skip
        finally:
            sandbox.stop()
    if args.trace is not None and len(sizes) > 1:
        small, large = (json.loads((args.trace / f"firstsync-{s}.json").read_text()) for s in (sizes[0], sizes[-1]))
        print(f"traced peak {small['traced_peak'] / 2**20:.1f} MB at {sizes[0]:,}, "
              f"{large['traced_peak'] / 2**20:.1f} MB at {sizes[-1]:,}; top growers:")
        for line in growers(small, large, sizes[-1] - sizes[0]):
            print(line)
    return 1 if failed else 0


__all__ = ["main"]
