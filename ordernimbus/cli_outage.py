"""``ordernimbus outage``: mark the stretches whose sales never arrived, so they are not read as zero.

Registered in ``ordernimbus.cli`` with one ``add_typer`` line; exit codes as there (2 bad input,
3 not found). What a marked outage changes is in ``features.outages``.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from ordernimbus.errors import NotFoundError, OrderNimbusError
from ordernimbus.settings import get_settings

if TYPE_CHECKING:
    from features.lake import SalesLake

app = typer.Typer(
    help="Mark, list and remove outages: periods whose sales were lost, filled instead of read as zero.",
    no_args_is_help=True,
)
console = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)
Tenant = Annotated[str, typer.Option("--tenant", "-t", help="tenant id (lowercase letters, digits, '-')")]
First = Annotated[str, typer.Argument(help="first date of the outage (YYYY-MM-DD)")]
Last = Annotated[str, typer.Argument(help="last date of the outage (YYYY-MM-DD), inclusive")]
Store = Annotated[
    str | None, typer.Option("--store", help="only this store's sales were lost (default: every store's)")
]


def _fail(exc: OrderNimbusError) -> NoReturn:
    err.print(f"[bold red]error:[/] {exc}", highlight=False)
    raise typer.Exit(3 if isinstance(exc, NotFoundError) else 2)


def _lake(tenant: str) -> SalesLake:
    from features.lake import SalesLake
    from ordernimbus.tenancy import validate_tenant

    validate_tenant(tenant)
    lake = SalesLake(get_settings().lake_dir)
    if not lake.exists(tenant):
        raise NotFoundError(f"tenant {tenant!r} has no sales: ingest a file first (ordernimbus ingest)")
    return lake


@app.command("add")
def add(first: First, last: Last, tenant: Tenant, store: Store = None) -> None:
    """Mark FIRST..LAST as an outage: builds fill its missing periods from the weeks before and do not
    score forecasts there. Records inside it are kept as real sales."""
    from features.outages import Outage, describe

    try:
        lake = _lake(tenant)
        outage = Outage.parse(first, last, store)
        sales = lake.read(tenant)
        if store is not None and store not in set(sales["store_id"].astype(str)):
            known = sorted(set(sales["store_id"].astype(str)))
            raise OrderNimbusError(
                f"tenant {tenant!r} has no store {store!r}; its stores are {known[:10]}"
                + (f" and {len(known) - 10} more" if len(known) > 10 else "")
            )
        marked = lake.outages(tenant)
        if outage in marked:
            console.print(f"outage {outage.label()} is already marked for tenant [bold]{tenant}[/]")
            return
        lake.set_outages(tenant, [*marked, outage])
        facts = describe(sales, outage, lake.frequency(tenant))
    except OrderNimbusError as exc:
        _fail(exc)
    console.print(
        f"[green]marked[/] outage {outage.label()} for tenant [bold]{tenant}[/]: {facts['periods']} "
        f"{facts['unit']}; {facts['series']} series will be filled from the {facts['lookback']} "
        f"{facts['unit']} before it; {facts['records']} record(s) inside it are kept as real sales"
    )
    if facts["after_data"]:
        err.print(
            f"[yellow]warning:[/] the outage ends after the tenant's last sale ({facts['last_sale']}); "
            "periods after it are not filled and forecasts start after the last real sale",
            highlight=False,
        )
    console.print("the next build (ordernimbus pipeline run build) uses it")


@app.command("list")
def list_(
    tenant: Tenant, as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False
) -> None:
    """The tenant's marked outages, oldest first."""
    from features.outages import describe

    try:
        lake = _lake(tenant)
        outages = lake.outages(tenant)
        sales = lake.read(tenant) if outages else None
        freq = lake.frequency(tenant)
    except OrderNimbusError as exc:
        _fail(exc)
    rows = [{**o.to_json(), **describe(sales, o, freq)} for o in outages] if sales is not None else []
    if as_json:
        print(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        console.print(f"tenant [bold]{tenant}[/] has no outages marked")
        return
    table = Table(title=f"outages of tenant {tenant}")
    for col in ("first", "last", "store", "periods", "series filled", "records kept"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["first"],
            r["last"],
            r["store"] or "every store",
            f"{r['periods']} {r['unit']}",
            str(r["series"]),
            str(r["records"]),
        )
    console.print(table)


@app.command("remove")
def remove(first: First, last: Last, tenant: Tenant, store: Store = None) -> None:
    """Unmark an outage: its periods count as no sales again from the next build on."""
    from features.outages import Outage

    try:
        lake = _lake(tenant)
        outage = Outage.parse(first, last, store)
        marked = lake.outages(tenant)
        if outage not in marked:
            listed = ", ".join(o.label() for o in marked) or "none"
            raise NotFoundError(f"tenant {tenant!r} has no outage {outage.label()} (marked: {listed})")
        lake.set_outages(tenant, [o for o in marked if o != outage])
    except OrderNimbusError as exc:
        _fail(exc)
    console.print(f"[green]removed[/] outage {outage.label()} of tenant [bold]{tenant}[/]")
