"""``ordernimbus monitor``: run a drift/accuracy check, see why the platform did (not) retrain.

Registered in ``ordernimbus.cli`` with one ``add_typer`` line. Exit codes as everywhere: 0 done
(whatever the decision), 1 a retraining it started failed, 2 bad input, 3 not found.
The SageMaker backend (``ORDERNIMBUS_PIPELINE_BACKEND=sagemaker``) reads the deployed build
pipeline's name and the lake from ``ORDERNIMBUS_BUILD_PIPELINE_NAME`` / ``ORDERNIMBUS_LAKE_URI``,
the variables the infrastructure gives the monitor function.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from ordernimbus.errors import NotFoundError, OrderNimbusError
from ordernimbus.settings import get_settings

app = typer.Typer(
    help="Drift and accuracy checks, retraining decisions and their reports.", no_args_is_help=True
)
console = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)
Tenant = Annotated[str, typer.Option("--tenant", "-t", help="tenant id (lowercase letters, digits, '-')")]
_COLORS = {"Executing": "cyan", "Succeeded": "green", "Failed": "red", "Skipped": "dim", "Retrying": "yellow"}


def _fail(exc: OrderNimbusError) -> NoReturn:
    err.print(f"[bold red]error:[/] {exc}", highlight=False)
    raise typer.Exit(3 if isinstance(exc, NotFoundError) else 2)


def _step(step: str, status: str, message: str) -> None:
    err.print(f"  [{_COLORS.get(status, 'white')}]{status:<10}[/] {step:<22} {message}", highlight=False)


@app.command("check")
def check(
    tenant: Tenant,
    retrain: Annotated[
        bool, typer.Option("--retrain", help="ask for a retraining now (manual; never while a build runs)")
    ] = False,
    html: Annotated[bool, typer.Option("--html/--no-html", help="write Evidently's HTML reports")] = True,
) -> None:
    """Score new actuals, compare the latest weeks with training, decide; retrain if the policy says so."""
    from monitoring.check import run_check
    from monitoring.lake import open_lake
    from monitoring.trigger import open_trigger

    settings = get_settings()
    lake_uri = os.environ.get("ORDERNIMBUS_LAKE_URI")
    try:
        trigger = open_trigger(
            settings,
            pipeline_name=os.environ.get("ORDERNIMBUS_BUILD_PIPELINE_NAME"),
            lake_root_uri=lake_uri,
            on_event=_step,
        )
        outcome = run_check(
            settings,
            tenant,
            requested=retrain,
            origin="manual" if retrain else "cli",
            lake=open_lake(settings.lake_dir, lake_uri, settings.aws_region),
            trigger=trigger,
            html=html,
            progress=lambda message: err.print(f"[dim]{message}[/]", highlight=False),
        )
    except OrderNimbusError as exc:
        _fail(exc)
    _print_decision(outcome.summary)
    if outcome.report_dir is not None:
        console.print(f"reports: {outcome.report_dir}")
    if outcome.decision.action == "failed":
        raise typer.Exit(1)


def _print_decision(summary: dict[str, Any]) -> None:
    table = Table(title=f"check {summary['check_id']} of tenant {summary['tenant_id']}")
    for column in ("rule", "fired", "why"):
        table.add_column(column)
    for reason in summary["reasons"]:
        table.add_row(reason["rule"], "[red]yes[/]" if reason["fired"] else "no", reason["detail"])
    console.print(table)
    accuracy = summary.get("accuracy") or {}
    if accuracy:
        console.print(
            f"accuracy {accuracy['start']}..{accuracy['end']} (version {accuracy['model_version']}, "
            f"{accuracy['series']} series): WAPE {_num(accuracy['wape'])}, bias {_num(accuracy['bias'])}, "
            f"p10-p90 coverage {_num(accuracy['coverage'])}; "
            f"backtest WAPE {_num(summary.get('backtest_wape'))}"
        )
    verdict = {
        "none": "[green]no retraining[/]",
        "debounced": f"[yellow]retraining held back:[/] {summary.get('debounce')}",
        "started": f"[bold]retraining started:[/] run {summary.get('run_id')}",
        "failed": f"[bold red]retraining failed:[/] run {summary.get('run_id') or '-'}",
        "starting": "[bold]retraining starting[/]",
    }[summary["action"]]
    console.print(verdict)


def _num(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "-"


@app.command("report")
def report(
    tenant: Tenant,
    html: Annotated[
        bool, typer.Option("--html", help="write the overview page (decisions, accuracy, drift)")
    ] = False,
    out: Annotated[
        Path | None, typer.Option(help="where to write the page (default: the reports dir)")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="newest checks to show")] = 30,
) -> None:
    """The tenant's recent checks: what each decided and why; with --html, one page with plots."""
    from inference.store.monitoring import MonitoringStore
    from monitoring.reports import render_overview
    from ordernimbus.tenancy import tenant_dir, validate_tenant

    settings = get_settings()
    try:
        validate_tenant(tenant)
        store = MonitoringStore(settings.db_url)
        try:
            decisions = store.decisions(tenant, limit=limit)
            series = store.accuracy_series(tenant, limit=limit)
        finally:
            store.close()
        if not decisions:
            raise NotFoundError(
                f"tenant {tenant!r} has no monitoring checks yet: run `ordernimbus monitor check`"
            )
    except OrderNimbusError as exc:
        _fail(exc)
    table = Table(title=f"monitoring checks of tenant {tenant} (newest first)")
    for column in ("checked (UTC)", "origin", "action", "rules fired", "run", "actuals through"):
        table.add_column(column)
    for d in decisions:
        fired = ", ".join(r["rule"] for r in d.reasons if r["fired"]) or "-"
        table.add_row(
            f"{d.checked_at:%Y-%m-%d %H:%M}",
            d.origin,
            d.action,
            fired,
            d.run_id or "",
            str(d.actuals_through),
        )
    console.print(table)
    if html:
        target = out or tenant_dir(settings.reports_dir, tenant, "monitor", "overview.html")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render_overview(tenant, decisions, series, settings.reports_dir), encoding="utf-8")
        console.print(f"report: {target}")
