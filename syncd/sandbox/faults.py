"""Injected misbehaviour of a simulator (errors, rate limits, timeouts, latency, webhook chaos) and its validation."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any


@dataclass
class Faults:
    """Injected misbehaviour of one simulator; every knob defaults to off."""

    error_rate: float = 0.0
    rate_limit_rate: float = 0.0
    timeout_rate: float = 0.0
    latency_ms: tuple[int, int] = (0, 0)
    duplicate_webhooks: float = 0.0
    reorder_webhooks: bool = False
    timeout_s: float = 5.0

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Faults:
        """Build faults from a control-plane body; unknown keys and bad types raise ValueError."""
        if not isinstance(body, Mapping):
            raise ValueError("faults body must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(body) - known)
        if unknown:
            raise ValueError(f"unknown fault keys: {', '.join(unknown)}; expected some of {sorted(known)}")
        faults = cls()
        for name in ("error_rate", "rate_limit_rate", "timeout_rate", "duplicate_webhooks"):
            if name in body:
                setattr(faults, name, _fraction(name, body[name]))
        if "reorder_webhooks" in body:
            if not isinstance(body["reorder_webhooks"], bool):
                raise ValueError("reorder_webhooks must be true or false")
            faults.reorder_webhooks = body["reorder_webhooks"]
        if "timeout_s" in body:
            value = body["timeout_s"]
            if not is_number(value) or value <= 0:
                raise ValueError("timeout_s must be a positive number")
            faults.timeout_s = float(value)
        if "latency_ms" in body:
            faults.latency_ms = _latency(body["latency_ms"])
        if faults.error_rate + faults.rate_limit_rate + faults.timeout_rate > 1.0:
            raise ValueError("error_rate + rate_limit_rate + timeout_rate must not exceed 1")
        return faults

    def to_json(self) -> dict[str, Any]:
        """The faults as the control plane reports them."""
        return {
            "error_rate": self.error_rate,
            "rate_limit_rate": self.rate_limit_rate,
            "timeout_rate": self.timeout_rate,
            "latency_ms": list(self.latency_ms),
            "duplicate_webhooks": self.duplicate_webhooks,
            "reorder_webhooks": self.reorder_webhooks,
            "timeout_s": self.timeout_s,
        }

    def assign(self, other: Faults) -> None:
        """Copy every knob of `other` into this object in place (dispatchers hold a reference to it)."""
        for f in fields(self):
            setattr(self, f.name, getattr(other, f.name))


def is_number(value: object) -> bool:
    """Whether a JSON value is a finite number."""
    # bool is an int subclass; JSON true is not a number here.
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _fraction(name: str, value: object) -> float:
    if not is_number(value) or not 0.0 <= float(value) <= 1.0:  # type: ignore[arg-type]
        raise ValueError(f"{name} must be a number between 0 and 1")
    return float(value)  # type: ignore[arg-type]


def _latency(value: object) -> tuple[int, int]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ValueError("latency_ms must be a list [low, high] of milliseconds")
    low, high = value
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)) or not 0 <= low <= high:
        raise ValueError("latency_ms must be two integers with 0 <= low <= high")
    return (low, high)
