"""`python -m bench [--quick] [--sizes 2000,10000] [--runs 3] [--output bench/REPORT.md]`: run the
benchmarks the API-budget targets are judged by and write them as one Markdown report (median, min and max of
each figure over the runs)."""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench import firstsync, latency, mapping, ratelimit

REPO = Path(__file__).resolve().parents[1]
FULL_SIZES = (2_000, 10_000, 50_000)
QUICK_SIZES = (2_000,)


def spread(values: Sequence[float], fmt: str = "{:,.0f}") -> str:
    """`median (min–max)` of a figure over the runs."""
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def _ratio(observed: int, minimum: int) -> str:
    if minimum == 0:
        return "—" if observed == 0 else "∞"
    return f"{observed / minimum:.2f}"


def calls_table(passes: Sequence[firstsync.Pass], minimum: dict[str, dict[str, int]]) -> list[str]:
    """Calls per system and route (median over runs) against the minimum, with the ratio of each."""
    lines = ["| system | route | calls | minimum | ratio |", "|---|---|---:|---:|---:|"]
    for system, routes in minimum.items():
        seen = sorted({r for p in passes for r in p.data_calls(system)} | set(routes))
        total = 0.0
        for route in seen:
            observed = statistics.median(p.data_calls(system).get(route, 0) for p in passes)
            total += observed
            wanted = routes.get(route, 0)
            lines.append(f"| {system} | `{route}` | {observed:,.0f} | {wanted:,} | {_ratio(round(observed), wanted)} |")
        least = sum(routes.values())
        lines.append(f"| **{system}** | **all data calls** | **{total:,.0f}** | **{least:,}** | "
                     f"**{_ratio(round(total), least)}** |")  # fmt: skip
        setup = statistics.median(sum(n for r, n in p.calls.get(system, {}).items() if firstsync.is_setup(r))
                                  for p in passes)  # fmt: skip
        lines.append(f"| {system} | set-up (token, properties; not in the ratio) | {setup:,.0f} | | |")
    return lines


def first_sync_section(sizes: Sequence[int], runs: int, log: Callable[[str], None]) -> list[str]:
    """First syncs of each size, `runs` times, and the idle pass after each."""
    results: dict[int, list[firstsync.FirstSync]] = {}
    with tempfile.TemporaryDirectory(prefix="syncd-bench-") as tmp:
        sandbox = firstsync.SandboxProcess(Path(tmp))
        try:
            for size in sizes:
                for n in range(runs):
                    result = firstsync.run(size, sandbox)
                    log(f"first sync {size:,} run {n + 1}: {result.records_per_s:,.1f} records/s, "
                        f"exit {result.first.exit_code}/{result.echo.exit_code}/{result.idle.exit_code}")  # fmt: skip
                    results.setdefault(size, []).append(result)
        finally:
            sandbox.stop()
    out = [
        "## First sync: HubSpot contacts into an empty Zoho Books (limits lifted)",
        "",
        "`syncd sync --once` in its own process, the sandbox in another; CPU and peak RSS are the syncd process's "
        "(wait4). Targets: ≥ 1,000 records/s at 10,000; peak RSS ≤ 200 MB, growing ≤ 10% from 10k to 50k.",
        "",
        "| contacts | records/s | wall s | CPU s per 1,000 records | sandbox CPU s per 1,000 | peak RSS MB | "
        "failed passes |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size, rows in results.items():
        failed = sum(1 for r in rows if r.first.exit_code != 0)
        out.append(
            f"| {size:,} | {spread([r.records_per_s for r in rows], '{:,.1f}')} | "
            f"{spread([r.first.wall_s for r in rows], '{:,.1f}')} | "
            f"{spread([r.cpu_per_1000 for r in rows], '{:,.2f}')} | "
            f"{spread([r.sandbox_cpu_per_1000 for r in rows], '{:,.2f}')} | "
            f"{spread([r.first.peak_rss_mb for r in rows], '{:,.0f}')} | {failed} |"
        )
    for size, rows in results.items():
        out += ["", f"### Calls, first sync of {size:,} (target ≤ 1.05 × the minimum)", ""]
        out += calls_table([r.first for r in rows], firstsync.minimum_routes(size, idle=False))
        out += ["", f"### Calls, the pass after the first sync of {size:,} (creates settled by their answers)",
                ""]
        out += calls_table([r.echo for r in rows], firstsync.echo_routes(size, min(r.relisted for r in rows)))
        out += ["", f"### Calls, idle pass after {size:,}, the overlap window past (target: one list call per object "
                "per side; deletions listed whole are swept hourly)", ""]
        out += calls_table([r.idle for r in rows], firstsync.minimum_routes(size, idle=True))
    return out


def real_limits_section(seconds: float, runs: int, log: Callable[[str], None]) -> list[str]:
    """bench/ratelimit.py at HubSpot's real 100 calls per 10 s."""
    reports = []
    for n in range(runs):
        report = asyncio.run(ratelimit.run(seconds, 10.0, 100))
        log(f"real limits run {n + 1}: {report.achieved_pct}% of the allowed rate, {report.rate_limited} 429s")
        reports.append(report)
    return [
        "## At real limits: HubSpot, 100 calls per 10 s",
        "",
        f"`bench/ratelimit.py`, {seconds:g} s a run: one connector polling and writing in batches. "
        "Targets: ≥ 95% of the allowed rate used, ≤ 0.5% of calls answered 429.",
        "",
        "| calls | share of the allowed rate used | 429 share |",
        "|---:|---:|---:|",
        f"| {spread([r.calls for r in reports])} | {spread([r.achieved_pct for r in reports], '{:.1f}%')} | "
        f"{spread([r.rate_limited_pct for r in reports], '{:.2f}%')} |",
    ]


def mapping_section(records: int, runs: int, log: Callable[[str], None]) -> list[str]:
    """Mapping + diff alone on one core."""
    results = [mapping.run(records) for _ in range(runs)]
    log(f"mapping + diff: {statistics.median(r.per_second for r in results):,.0f} records/s")
    return [
        "## Mapping + diff alone, one core",
        "",
        f"`bench/mapping.py`: {records:,} linked contact pairs through the shipped mapping's filters, match key and "
        "three-way field plan, CPU time of one process. Target: ≥ 20,000 records/s.",
        "",
        "| records/s |",
        "|---:|",
        f"| {spread([r.per_second for r in results])} |",
    ]


def latency_section(rates: Sequence[float], seconds: float, runs: int, log: Callable[[str], None]) -> list[str]:
    """Webhook-to-write latency at each rate, `runs` times."""
    by_rate: dict[float, list[latency.LatencyRun]] = {}
    for _ in range(runs):
        for result in latency.run(list(rates), seconds, 2_000, log):
            by_rate.setdefault(result.rate, []).append(result)
    out = [
        "## Webhook-to-write latency",
        "",
        f"`bench/latency.py`: after a first sync of 2,000 contacts, `syncd run` (its own process, polling once an "
        f"hour) takes the sandbox's HubSpot webhooks while the bench edits one contact after another (a new city "
        f"each) for {seconds:g} s at each rate; an edit's latency runs from just before it is sent to the audit row "
        "of the Zoho Books write it caused (recorded once Zoho Books answered).",
        "",
        "| edits/s | edits | landed | p50 ms | p95 ms | p99 ms |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for rate, rows in by_rate.items():
        out.append(
            f"| {rate:g} | {spread([r.sent for r in rows])} | {spread([r.landed for r in rows])} | "
            f"{spread([r.percentile(50) for r in rows])} | {spread([r.percentile(95) for r in rows])} | "
            f"{spread([r.percentile(99) for r in rows])} |"
        )
    return out


def main(argv: list[str]) -> int:
    """Run what was asked and write the report."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2,000 contacts only, short rate-limit runs")
    parser.add_argument("--sizes", help="comma-separated contact counts (default 2000,10000,50000)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each figure (default 3)")
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "REPORT.md")
    parser.add_argument("--limit-seconds", type=float, help="length of each real-limits run (60; quick 20)")
    parser.add_argument("--latency-seconds", type=float, help="how long each webhook rate is kept up (10; quick 5)")
    parser.add_argument("--only", choices=("firstsync",), help="run only this section (firstsync: first syncs, "
                        "the pass after and the idle pass)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else list(QUICK_SIZES if args.quick else FULL_SIZES)
    limit_seconds = args.limit_seconds or (20.0 if args.quick else 60.0)
    latency_seconds = args.latency_seconds or (5.0 if args.quick else 10.0)
    started = time.monotonic()

    def log(line: str) -> None:
        print(f"[{time.monotonic() - started:7.1f} s] {line}", flush=True)

    sections = [first_sync_section(sizes, args.runs, log)]
    if args.only is None:
        sections += [
            real_limits_section(limit_seconds, args.runs, log),
            mapping_section(20_000, args.runs, log),
            latency_section((20.0, 200.0), latency_seconds, args.runs, log),
        ]
    header = [
        "# syncd benchmark report",
        "",
        f"{args.runs} run(s) of each figure: median (min–max). Python {platform.python_version()}, "
        f"{platform.machine()}, written {time.strftime('%Y-%m-%d %H:%M')} by `python -m bench "
        f"{' '.join(argv)}`; {time.monotonic() - started:,.0f} s in all.",
    ]
    text = "\n".join(header + [line for section in sections for line in ["", *section]]) + "\n"
    args.output.write_text(text, encoding="utf-8")
    print(f"report written to {args.output}")
    return 0


__all__ = ["main"]
