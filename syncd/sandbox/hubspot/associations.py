"""Associations between records (v4 model): typed, labelled, stored in both directions."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from syncd.sandbox.hubspot.catalog import SINGULAR

# (from object, to object) -> unlabelled default type id, and the labelled "Primary" type where one exists.
DEFAULT_TYPES: dict[tuple[str, str], int] = {
    ("contacts", "companies"): 279,
    ("companies", "contacts"): 280,
    ("deals", "contacts"): 3,
    ("contacts", "deals"): 4,
    ("deals", "companies"): 341,
    ("companies", "deals"): 342,
    ("deals", "line_items"): 19,
    ("line_items", "deals"): 20,
}
PRIMARY_TYPES: dict[tuple[str, str], int] = {
    ("contacts", "companies"): 1,
    ("companies", "contacts"): 2,
    ("deals", "companies"): 5,
    ("companies", "deals"): 6,
}
HUBSPOT_DEFINED = "HUBSPOT_DEFINED"
CATEGORIES = frozenset({"HUBSPOT_DEFINED", "USER_DEFINED", "INTEGRATOR_DEFINED", "WORK"})


@dataclass(frozen=True)
class AssociationType:
    """One association type on an edge: category, type id and label (None when unlabelled)."""

    category: str
    type_id: int
    label: str | None = None


def label_for(from_obj: str, to_obj: str, type_id: int) -> str | None:
    """HubSpot's label of a defined type: "Primary" for the primary types, none for the default ones."""
    return "Primary" if PRIMARY_TYPES.get((from_obj, to_obj)) == type_id else None


def type_name(from_obj: str, to_obj: str, spec: AssociationType) -> str:
    """The v3 `type` string, e.g. contact_to_company or contact_to_company_unlabeled."""
    base = f"{SINGULAR[from_obj]}_to_{SINGULAR[to_obj]}"
    if spec.category == HUBSPOT_DEFINED and DEFAULT_TYPES.get((from_obj, to_obj)) == spec.type_id:
        return base if (from_obj, to_obj) not in PRIMARY_TYPES else f"{base}_unlabeled"
    return base


def inverse_type(from_obj: str, to_obj: str, spec: AssociationType) -> AssociationType:
    """The type the reverse edge carries (HubSpot pairs every defined type with its inverse)."""
    if spec.category == HUBSPOT_DEFINED:
        if DEFAULT_TYPES.get((from_obj, to_obj)) == spec.type_id:
            return AssociationType(HUBSPOT_DEFINED, DEFAULT_TYPES[(to_obj, from_obj)])
        if PRIMARY_TYPES.get((from_obj, to_obj)) == spec.type_id:
            return AssociationType(HUBSPOT_DEFINED, PRIMARY_TYPES[(to_obj, from_obj)], "Primary")
    return spec


def valid_type(from_obj: str, to_obj: str, category: Any, type_id: Any) -> AssociationType | None:
    """The association type for a request's {associationCategory, associationTypeId}; None if invalid."""
    if category not in CATEGORIES or not isinstance(type_id, int) or isinstance(type_id, bool) or type_id <= 0:
        return None
    if category == HUBSPOT_DEFINED:
        known = {DEFAULT_TYPES.get((from_obj, to_obj)), PRIMARY_TYPES.get((from_obj, to_obj))}
        if type_id not in known:
            return None
        return AssociationType(category, type_id, label_for(from_obj, to_obj, type_id))
    if (from_obj, to_obj) not in DEFAULT_TYPES:
        return None
    return AssociationType(category, type_id, f"label {type_id}")


Edge = tuple[str, int, str, int]  # (from object, from id, to object, to id)
# Told of every association type that appears on or leaves an edge: (edge, type, removed).
AssociationListener = Callable[[Edge, AssociationType, bool], None]


class AssociationStore:
    """Every association; each write also records the inverse edge, as HubSpot does."""

    def __init__(self, on_change: AssociationListener | None = None) -> None:
        self.edges: dict[Edge, set[AssociationType]] = {}
        self.on_change = on_change

    def clear(self) -> None:
        """Drop every association."""
        self.edges.clear()

    def add(self, from_obj: str, from_id: int, to_obj: str, to_id: int, spec: AssociationType) -> None:
        """Associate two records with a type (and the inverse type the other way); a labelled association
        brings the unlabelled default one with it, as in HubSpot."""
        default = DEFAULT_TYPES.get((from_obj, to_obj))
        if default is not None and spec.type_id != default:
            self.add(from_obj, from_id, to_obj, to_id, AssociationType(HUBSPOT_DEFINED, default))
        self._put((from_obj, from_id, to_obj, to_id), spec)
        self._put((to_obj, to_id, from_obj, from_id), inverse_type(from_obj, to_obj, spec))

    def _put(self, edge: Edge, spec: AssociationType) -> None:
        specs = self.edges.setdefault(edge, set())
        if spec not in specs:
            specs.add(spec)
            self._notify(edge, spec, False)

    def _notify(self, edge: Edge, spec: AssociationType, removed: bool) -> None:
        if self.on_change is not None:
            self.on_change(edge, spec, removed)

    def add_default(self, from_obj: str, from_id: int, to_obj: str, to_id: int) -> AssociationType:
        """Associate with the unlabelled default type; returns it."""
        spec = AssociationType(HUBSPOT_DEFINED, DEFAULT_TYPES[(from_obj, to_obj)])
        self.add(from_obj, from_id, to_obj, to_id, spec)
        return spec

    def remove(self, from_obj: str, from_id: int, to_obj: str, to_id: int) -> None:
        """Remove every association type between two records, both ways."""
        for edge in ((from_obj, from_id, to_obj, to_id), (to_obj, to_id, from_obj, from_id)):
            for spec in sorted(self.edges.pop(edge, set()), key=lambda s: s.type_id):
                self._notify(edge, spec, True)

    def remove_labels(
        self, from_obj: str, from_id: int, to_obj: str, to_id: int, specs: Iterable[AssociationType]
    ) -> None:
        """Remove only the given types (and their inverses); an edge left without types disappears."""
        for spec in specs:
            self._drop((from_obj, from_id, to_obj, to_id), spec)
            self._drop((to_obj, to_id, from_obj, from_id), inverse_type(from_obj, to_obj, spec))
        for key in ((from_obj, from_id, to_obj, to_id), (to_obj, to_id, from_obj, from_id)):
            if not self.edges.get(key, True):
                del self.edges[key]

    def _drop(self, edge: Edge, spec: AssociationType) -> None:
        specs = self.edges.get(edge)
        if specs is not None and spec in specs:
            specs.discard(spec)
            self._notify(edge, spec, True)

    def targets(self, from_obj: str, from_id: int, to_obj: str) -> list[tuple[int, set[AssociationType]]]:
        """(to id, types) for every record of `to_obj` associated with the given record, by id."""
        return sorted(
            (key[3], specs)
            for key, specs in self.edges.items()
            if key[0] == from_obj and key[1] == from_id and key[2] == to_obj
        )

    def move(self, obj: str, old_id: int, new_id: int) -> None:
        """Re-point every association of a merged-away record to the record it was merged into."""
        for key in [k for k in self.edges if k[0] == obj and k[1] == old_id]:
            specs = self.edges.get(key, set())
            self.remove(*key)
            if key[2] == obj and key[3] == new_id:
                continue
            for spec in specs:
                self.add(obj, new_id, key[2], key[3], spec)

    def dump(self) -> list[dict[str, Any]]:
        """JSON-able list of edges (both directions are listed)."""
        return [
            {"from": [k[0], k[1]], "to": [k[2], k[3]],
             "types": [[s.category, s.type_id, s.label] for s in sorted(v, key=lambda s: s.type_id)]}
            for k, v in self.edges.items()
        ]

    def load(self, state: list[dict[str, Any]]) -> None:
        """Restore what dump produced."""
        self.edges = {
            (e["from"][0], int(e["from"][1]), e["to"][0], int(e["to"][1])): {
                AssociationType(t[0], int(t[1]), t[2]) for t in e["types"]
            }
            for e in state
        }
