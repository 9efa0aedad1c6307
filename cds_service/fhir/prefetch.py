"""Prefetch resolution: per key, the data was given, known empty, or not had.

Mirrors HAPI FHIR's CDS Hooks module, which treats each prefetch key on its own with an explicit
failure mode. Until the service can fetch from the EHR's FHIR server, a required key that was not
had answers 412; an optional one is left out and the cards say what was unavailable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..protocol import RequestError


@dataclass(frozen=True)
class PrefetchKey:
    name: str
    template: str  # a FHIR query with {{context.*}} tokens
    purpose: str  # what the data is, for error messages and cards
    required: bool = True


class PrefetchUnavailable(Exception):
    """Required data was neither prefetched nor fetchable: the hook call answers 412."""

    def __init__(self, keys: list[PrefetchKey]) -> None:
        super().__init__(", ".join(k.name for k in keys))
        self.keys = keys


@dataclass(frozen=True)
class Prefetched:
    """The resolved keys: a resource (often a Bundle), None for "nothing there", absent if not had."""

    values: dict[str, dict[str, Any] | None]
    unavailable: tuple[PrefetchKey, ...]  # optional keys not had

    def resources(self, name: str) -> tuple[list[Any], int]:
        """The resources under a key and the number of Bundle entries that held none."""
        value = self.values.get(name)
        if value is None:
            return [], 0
        if value.get("resourceType") != "Bundle":
            return [value], 0
        resources = [e["resource"] for e in value.get("entry", ()) if isinstance(e, dict) and "resource" in e]
        return resources, len(value.get("entry", ())) - len(resources)


def _is_outcome(value: Any) -> bool:
    return isinstance(value, dict) and value.get("resourceType") == "OperationOutcome"


def resolve(keys: tuple[PrefetchKey, ...], given: Mapping[str, Any] | None) -> Prefetched:
    """Sort each key into given, known empty (null) and not had (missing or an OperationOutcome)."""
    given = given or {}
    values: dict[str, dict[str, Any] | None] = {}
    not_had: list[PrefetchKey] = []
    for key in keys:
        if key.name not in given or _is_outcome(given[key.name]):
            not_had.append(key)
            continue
        value = given[key.name]
        field = f"prefetch.{key.name}"
        if value is not None:
            if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
                raise RequestError(field, "is not a FHIR resource (nor null)")
            if value["resourceType"] == "Bundle" and not isinstance(value.get("entry", []), list):
                raise RequestError(f"{field}.entry", "must be an array")
        values[key.name] = value
    if required := [k for k in not_had if k.required]:
        raise PrefetchUnavailable(required)
    return Prefetched(values, tuple(not_had))
