"""`python -m bench [simulators]`: run a benchmark and print its figures."""

from __future__ import annotations

import sys

BENCHMARKS = ("simulators",)


def main(argv: list[str]) -> int:
    """Dispatch to the named benchmark (default: all of them)."""
    names = [a for a in argv if not a.startswith("-") and a in BENCHMARKS] or list(BENCHMARKS)
    unknown = [a for a in argv if not a.startswith("-") and a not in BENCHMARKS and not _is_value(argv, a)]
    if unknown:
        print(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    code = 0
    for name in names:
        if name == "simulators":
            from bench import simulators

            code |= simulators.main(argv)
    return code


def _is_value(argv: list[str], arg: str) -> bool:
    # The value after an option such as `--seconds 3` is not a benchmark name.
    index = argv.index(arg)
    return index > 0 and argv[index - 1].startswith("--")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
