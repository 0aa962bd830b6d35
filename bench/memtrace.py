"""`python -m bench.memtrace OUT -- <syncd arguments>`: the syncd command under `tracemalloc`, which writes to
OUT the allocation sites holding the most memory at the traced peak (a bench-side hook: nothing in `syncd/`
knows of it). Used by `python -m bench firstsync --trace DIR`."""

from __future__ import annotations

import atexit
import json
import sys
import threading
import time
import tracemalloc
from pathlib import Path

# A new snapshot is taken when traced memory grew this much past the last one: the last is then the peak's.
GROWTH = 1.03
POLL_S = 0.2
TOP = 40


class PeakSnapshots:
    """A thread that keeps the snapshot taken nearest the traced peak."""

    def __init__(self) -> None:
        self.snapshot: tracemalloc.Snapshot | None = None
        self.size = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def start(self) -> None:
        """Start watching."""
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(POLL_S):
            current, _ = tracemalloc.get_traced_memory()
            if current > self.size * GROWTH:
                self.snapshot = tracemalloc.take_snapshot()
                self.size = current

    def stop(self) -> None:
        """Stop watching."""
        self._stop.set()
        self._thread.join()


def write_report(watcher: PeakSnapshots, out: Path, started: float) -> None:
    """The snapshot nearest the peak, by allocation line and by three-frame traceback, as JSON."""
    watcher.stop()
    _, peak = tracemalloc.get_traced_memory()
    snapshot = watcher.snapshot
    if snapshot is None:
        return
    snapshot = snapshot.filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
    by_line = snapshot.statistics("lineno")
    by_trace = snapshot.statistics("traceback")
    report = {
        "traced_peak": peak,
        "snapshot_size": watcher.size,
        "seconds": time.monotonic() - started,
        "lines": [{"where": f"{s.traceback[0].filename}:{s.traceback[0].lineno}", "size": s.size,
                   "count": s.count} for s in by_line[:TOP]],
        "traces": [{"where": [f"{f.filename}:{f.lineno}" for f in s.traceback], "size": s.size, "count": s.count}
                   for s in by_trace[:TOP]],
    }  # fmt: skip
    out.write_text(json.dumps(report, indent=1), encoding="utf-8")


def main(argv: list[str]) -> None:
    """Trace the syncd command given after `--`, writing the report to the first argument."""
    out = Path(argv[0])
    args = argv[argv.index("--") + 1 :]
    tracemalloc.start(4)
    watcher = PeakSnapshots()
    watcher.start()
    atexit.register(write_report, watcher, out, time.monotonic())
    from syncd.cli import main as syncd_main

    syncd_main(args)


if __name__ == "__main__":
    main(sys.argv[1:])
