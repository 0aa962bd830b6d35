"""Crash and fault suites on the real syncd process (see harness.py; `make chaos` runs the full size)."""
