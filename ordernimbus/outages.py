"""Marking a tenant's outages: the one implementation behind ``ordernimbus outage`` and ``/v1/outages``.

What a marked outage does to builds and scores is in ``features.outages``; this module checks a
request against the tenant's data and changes the stored list (``features.lake.SalesLake``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from features.lake import SalesLake
from features.outages import Outage, describe
from ordernimbus.errors import NotFoundError, OrderNimbusError
from ordernimbus.tenancy import validate_tenant


@dataclass(frozen=True)
class Marked:
    outage: Outage
    created: bool  # False: it was marked already, nothing changed
    facts: dict[str, Any]  # ``features.outages.describe``

    def as_dict(self) -> dict[str, Any]:
        return {**self.outage.to_json(), **self.facts}


def _lake(lake: SalesLake, tenant: str) -> SalesLake:
    validate_tenant(tenant)
    if not lake.exists(tenant):
        raise NotFoundError(f"tenant {tenant!r} has no sales: ingest a file first (ordernimbus ingest)")
    return lake


def mark(lake: SalesLake, tenant: str, outage: Outage) -> Marked:
    """Add ``outage`` to the tenant's list; a store must be one of the tenant's."""
    _lake(lake, tenant)
    sales = lake.read(tenant)
    if outage.store is not None:
        known = sorted(set(sales["store_id"].astype(str)))
        if outage.store not in known:
            more = f" and {len(known) - 10} more" if len(known) > 10 else ""
            raise OrderNimbusError(
                f"tenant {tenant!r} has no store {outage.store!r}; its stores are {known[:10]}{more}"
            )
    described = describe(sales, outage, lake.frequency(tenant))  # before writing: it must not fail after
    before = lake.update_outages(tenant, lambda marked: marked if outage in marked else [*marked, outage])
    return Marked(outage, outage not in before, described)


def unmark(lake: SalesLake, tenant: str, outage: Outage) -> Marked:
    """Remove ``outage`` (exactly as marked) from the tenant's list; what it was."""
    _lake(lake, tenant)

    def without(marked: list[Outage]) -> list[Outage]:
        if outage not in marked:
            listed = ", ".join(o.label() for o in marked) or "none"
            raise NotFoundError(f"tenant {tenant!r} has no outage {outage.label()} (marked: {listed})")
        return [o for o in marked if o != outage]

    lake.update_outages(tenant, without)
    return Marked(outage, False, describe(lake.read(tenant), outage, lake.frequency(tenant)))


def listed(lake: SalesLake, tenant: str) -> list[Marked]:
    """The tenant's outages, oldest first, each with what it fills and keeps."""
    _lake(lake, tenant)
    outages = lake.outages(tenant)
    if not outages:
        return []
    sales, freq = lake.read(tenant), lake.frequency(tenant)
    return [Marked(o, False, describe(sales, o, freq)) for o in outages]
