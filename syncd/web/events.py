"""How a webhook's change event is stored in the inbox: a JSON payload, and back."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast, get_args

from syncd.connectors.base import ChangeEvent, ChangeKind


def event_payload(event: ChangeEvent) -> dict[str, Any]:
    """The inbox payload for one change event (JSON-safe: the timestamp as ISO 8601)."""
    return {
        "object": event.object,
        "record_id": event.record_id,
        "kind": event.kind,
        "occurred_at": event.occurred_at.isoformat(),
        "merged_into": event.merged_into,
        "extra": dict(event.extra),
    }


def event_from_payload(event_id: str, payload: dict[str, Any]) -> ChangeEvent:
    """The change event an inbox row holds; `ValueError` if the payload is not one `event_payload` wrote."""
    kind = payload.get("kind")
    if kind not in get_args(ChangeKind):
        raise ValueError(f"inbox event {event_id}: unknown change kind {kind!r}")
    try:
        occurred_at = datetime.fromisoformat(str(payload["occurred_at"]))
        return ChangeEvent(
            event_id=event_id,
            object=str(payload["object"]),
            record_id=str(payload["record_id"]),
            kind=cast(ChangeKind, kind),
            occurred_at=occurred_at,
            merged_into=None if payload.get("merged_into") is None else str(payload["merged_into"]),
            extra={str(k): str(v) for k, v in dict(payload.get("extra") or {}).items()},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"inbox event {event_id}: malformed payload ({exc})") from exc
