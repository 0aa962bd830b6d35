"""The injectable time source of the simulators (tests pass a clock they move by hand)."""

from __future__ import annotations

from collections.abc import Callable

Clock = Callable[[], float]
