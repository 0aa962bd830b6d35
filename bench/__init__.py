"""Benchmarks of syncd and its sandbox; run with `python -m bench <name>`."""
