"""Simulators of the registered systems (one package each, named by its registration) for tests, the demo
and test mode."""
