"""``ordernimbus features``: look into a tenant's feature store.

Registered in ``ordernimbus.cli`` with one ``add_typer`` line; it reuses that module's consoles and
its exit codes (2 bad input, 3 not found).
"""

from __future__ import annotations

import json
import math
import sys
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from ordernimbus.errors import NotFoundError, OrderNimbusError
from ordernimbus.settings import get_settings

app = typer.Typer(help="Inspect a tenant's feature store (online and offline records).", no_args_is_help=True)
console = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)
_KEYS = ("feature_group", "record_id", "event_time", "tenant_id", "store_id", "sku", "feature_spec_version")


def _fail(exc: OrderNimbusError) -> NoReturn:
    err.print(f"[bold red]error:[/] {exc}", highlight=False)
    raise typer.Exit(3 if isinstance(exc, NotFoundError) else 2)


@app.command("show")
def show(
    tenant: Annotated[str, typer.Option("--tenant", "-t", help="tenant id (lowercase letters, digits, '-')")],
    sku: Annotated[str, typer.Option("--sku", help="the SKU whose latest feature record to print")],
    store: Annotated[
        str | None, typer.Option("--store", help="only this store (default: every store)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the records as JSON")] = False,
) -> None:
    """Print the latest online feature record of a series (one per store when --store is left out)."""
    from features.store.factory import open_feature_store
    from ordernimbus.tenancy import validate_tenant

    try:
        validate_tenant(tenant)
        records = open_feature_store(get_settings()).find_latest(tenant, sku, store)
        if not records:
            where = f" in store {store!r}" if store is not None else ""
            raise NotFoundError(
                f"tenant {tenant} has no feature record for sku {sku!r}{where}: ingest its sales "
                "and run `ordernimbus pipeline run build`"
            )
    except OrderNimbusError as exc:
        _fail(exc)
    if as_json:
        console.print_json(json.dumps([_jsonable(r) for r in records]))
        return
    for record in records:
        _print(record)


def _print(record: dict[str, Any]) -> None:
    title = (
        f"{record['tenant_id']} · store {record['store_id']} · sku {record['sku']} · "
        f"{record['event_time'][:10]} ({record['feature_group']}, spec {record['feature_spec_version']})"
    )
    console.print(f"[bold]{title}[/]", highlight=False)
    table = Table()
    table.add_column("feature")
    table.add_column("value", justify="right")
    for name, value in record.items():
        if name not in _KEYS:
            table.add_row(name, _fmt(value))
    console.print(table)


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _jsonable(record: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in record.items()}
