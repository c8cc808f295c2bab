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


def _lake() -> SalesLake:
    from features.lake import SalesLake

    return SalesLake(get_settings().lake_dir)


@app.command("add")
def add(first: First, last: Last, tenant: Tenant, store: Store = None) -> None:
    """Mark FIRST..LAST as lost sales: builds fill it from the weeks before and do not score it.

    Each series that had started gets its own mean of the 28 days (8 weeks) before the outage on
    the periods it has no record; records inside the outage are kept as real sales.
    """
    from features.outages import Outage
    from ordernimbus.outages import mark

    try:
        done = mark(_lake(), tenant, Outage.parse(first, last, store))
    except OrderNimbusError as exc:
        _fail(exc)
    outage, facts = done.outage, done.facts
    if not done.created:
        console.print(f"outage {outage.label()} is already marked for tenant [bold]{tenant}[/]")
        return
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
    from ordernimbus.outages import listed

    try:
        rows = [m.as_dict() for m in listed(_lake(), tenant)]
    except OrderNimbusError as exc:
        _fail(exc)
    if as_json:
        print(json.dumps(rows, indent=2))
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
    from ordernimbus.outages import unmark

    try:
        outage = Outage.parse(first, last, store)
        unmark(_lake(), tenant, outage)
    except OrderNimbusError as exc:
        _fail(exc)
    console.print(f"[green]removed[/] outage {outage.label()} of tenant [bold]{tenant}[/]")
