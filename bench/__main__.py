"""`python -m bench [report options]` writes the Markdown report; `python -m bench simulators|mapping|latency|firstsync`
runs one benchmark and prints its figures."""

from __future__ import annotations

import sys

BENCHMARKS = ("simulators", "mapping", "latency", "firstsync")


def main(argv: list[str]) -> int:
    """Run the named benchmark, or (without one) every benchmark into the Markdown report."""
    if argv and argv[0] == "simulators":
        from bench import simulators

        return simulators.main(argv[1:])
    if argv and argv[0] == "mapping":
        from bench import mapping

        return mapping.main(argv[1:])
    if argv and argv[0] == "latency":
        from bench import latency

        return latency.main(argv[1:])
    if argv and argv[0] == "firstsync":
        from bench import memory

        return memory.main(argv[1:])
    if argv and not argv[0].startswith("-"):
        print(f"unknown benchmark {argv[0]!r}; choose from {', '.join(BENCHMARKS)} or none for the report",
              file=sys.stderr)
        return 2
    from bench import report

    return report.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
