"""The ``ordernimbus`` command line: the public contract ML engineers and scripts call.

Exit codes: 0 success, 1 a pipeline or step failed, 2 bad usage or input (the message says what),
3 not found, 4 conflict (e.g. no approved version).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, ClassVar, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from ordernimbus import cli_features as features_cli
from ordernimbus.cli_monitor import app as monitor_app
from ordernimbus.cli_outage import app as outage_app
from ordernimbus.cli_sagemaker import sagemaker_app
from ordernimbus.errors import ConflictError, NotFoundError, OrderNimbusError
from ordernimbus.settings import Settings, get_settings
from ordernimbus.tenancy import validate_tenant

app = typer.Typer(
    help="OrderNimbus: multi-tenant retail demand forecasting.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
pipeline_app = typer.Typer(help="Run, watch, resume and compile pipelines.", no_args_is_help=True)
registry_app = typer.Typer(help="Review, approve and reject model versions.", no_args_is_help=True)
forecast_app = typer.Typer(help="Read the current forecast set.", no_args_is_help=True)
apikey_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
pipeline_app.add_typer(sagemaker_app)  # definition, upsert, start, describe (SageMaker)
app.add_typer(pipeline_app, name="pipeline")
app.add_typer(registry_app, name="registry")
app.add_typer(forecast_app, name="forecast")
app.add_typer(apikey_app, name="apikey")
app.add_typer(features_cli.app, name="features")
app.add_typer(monitor_app, name="monitor")
app.add_typer(outage_app, name="outage")

console = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def _tenant_id(value: str) -> str:
    """Every command checks the tenant id the same way (exit 2): `pipeline runs` listed nothing for
    '../BAD' and `pipeline status` called it not found."""
    try:
        return validate_tenant(value)
    except OrderNimbusError as exc:
        raise typer.BadParameter(str(exc)) from None


Tenant = Annotated[
    str,
    typer.Option("--tenant", "-t", help="tenant id (lowercase letters, digits, '-')", callback=_tenant_id),
]


def fail(exc: OrderNimbusError) -> NoReturn:
    err.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
    code = 3 if isinstance(exc, NotFoundError) else 4 if isinstance(exc, ConflictError) else 2
    raise typer.Exit(code)


def settings() -> Settings:
    return get_settings()


# --- ingest -------------------------------------------------------------------------------
@app.command()
def ingest(
    file: Annotated[Path, typer.Argument(help="CSV, Excel, Parquet or Shopify orders.json file")],
    tenant: Tenant,
    mapping: Annotated[
        Path | None, typer.Option(help="JSON file mapping canonical names to your columns")
    ] = None,
    lenient: Annotated[
        bool, typer.Option(help="quarantine bad rows instead of rejecting the upload")
    ] = False,
) -> None:
    """Validate a sales file and merge it into the tenant's data (atomic, idempotent)."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    from features.ingest import ingest_file
    from features.lake import SalesLake

    s = settings()
    try:
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=True,
        ) as progress:
            task = progress.add_task(f"reading {file.name}", total=None)
            result = ingest_file(
                file,
                tenant,
                SalesLake(s.lake_dir),
                s.reports_dir,
                mapping=mapping,
                lenient=lenient,
                max_bytes=s.api_max_body_bytes * 10,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
    except OrderNimbusError as exc:
        fail(exc)
    u = result.upsert
    period = "weekly" if u.frequency.startswith("W") else "daily"  # the tenant's records, one per period
    console.print(
        f"[green]ingested[/] {file.name} into tenant [bold]{tenant}[/]: {u.rows_in} {period} rows "
        f"({u.rows_new} new, {u.rows_updated} updated, {u.rows_unchanged} unchanged); "
        f"{u.rows_total} rows stored, frequency {u.frequency}"
    )
    for warning in result.report.get("warnings") or []:  # the report has them too; most people read this
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)
    console.print(f"quality report: {result.report_html}")
    if result.quarantine:
        console.print(f"[yellow]quarantined rows:[/] {result.quarantine}")


# --- pipelines ------------------------------------------------------------------------------
class _Live:
    """Step events rendered as lines with status colours (one line per transition)."""

    COLORS: ClassVar[dict[str, str]] = {
        "Executing": "cyan",
        "Succeeded": "green",
        "Failed": "red",
        "Skipped": "dim",
        "Retrying": "yellow",
    }

    def __call__(self, step: str, status: str, message: str) -> None:
        color = self.COLORS.get(status, "white")
        err.print(f"  [{color}]{status:<10}[/] {step:<22} {message}", highlight=False)


def _shown_status(run: Any) -> str:
    """The run's status as it is now, saying so where its runner died (see ``run_status``)."""
    from pipelines.local import run_status

    status = run_status(settings(), run.tenant_id, run.run_id, run.status)
    return status if status == run.status else f"{status} (runner gone: pipeline resume)"


def _report_run(run: Any) -> None:
    status = _shown_status(run)
    table = Table(title=f"run {run.run_id} ({run.pipeline}, tenant {run.tenant_id}): {status}")
    for col in ("step", "status", "seconds", "attempts", "note"):
        table.add_column(col)
    for s in sorted(run.steps, key=lambda s: (s.seconds is None, s.step)):
        note = f"cache hit from {s.cached_from}" if s.cached_from else (s.error or "")
        table.add_row(
            s.step, s.status, f"{s.seconds:.1f}" if s.seconds is not None else "", str(s.attempts), note[:80]
        )
    console.print(table)


@pipeline_app.command("run")
def pipeline_run(
    name: Annotated[str, typer.Argument(help="build or forecast")],
    tenant: Tenant,
    until: Annotated[str | None, typer.Option(help="train only on data up to YYYY-MM-DD (build)")] = None,
    horizon: Annotated[int | None, typer.Option(min=1, max=365, help="periods to forecast")] = None,
) -> None:
    """Run the build pipeline (train, evaluate, register) or the forecast pipeline (approved version)."""
    from ordernimbus.service import run_build, run_forecast

    s = settings()
    try:
        if name == "build":
            run = run_build(s, tenant, until=until, horizon=horizon, on_event=_Live())
        elif name == "forecast":
            run = run_forecast(s, tenant, horizon, on_event=_Live())
        else:
            raise OrderNimbusError(f"unknown pipeline {name!r}: expected build or forecast")
    except OrderNimbusError as exc:
        fail(exc)
    except KeyboardInterrupt:  # the runner marked the run Stopped once its steps had stopped
        err.print(
            f"[red]interrupted:[/] the run is stopped; `ordernimbus pipeline runs --tenant {tenant}` "
            "names it and `ordernimbus pipeline resume RUN_ID` continues it"
        )
        raise typer.Exit(130) from None
    _report_run(run)
    if run.status != "Succeeded":
        err.print(
            f"[red]{run.error}[/]\nresume with: ordernimbus pipeline resume {run.run_id} --tenant {tenant}"
        )
        raise typer.Exit(1)


@pipeline_app.command("resume")
def pipeline_resume(run_id: str, tenant: Tenant) -> None:
    """Resume a failed or interrupted run from its first unfinished step."""
    from pipelines.local import LocalRunner

    try:
        run = LocalRunner(settings(), _Live()).resume(run_id, tenant)
    except OrderNimbusError as exc:
        fail(exc)
    _report_run(run)
    raise typer.Exit(0 if run.status == "Succeeded" else 1)


@pipeline_app.command("runs")
def pipeline_runs(tenant: Tenant, limit: int = 20) -> None:
    """List the tenant's recent runs."""
    from pipelines.records import RunStore

    table = Table("run_id", "pipeline", "status", "created", "error")
    for run in RunStore(settings().runs_db_url).list(tenant, limit):
        table.add_row(
            run.run_id,
            run.pipeline,
            _shown_status(run),
            f"{run.created_at:%Y-%m-%d %H:%M:%S}",
            (run.error or "")[:60],
        )
    console.print(table)


@pipeline_app.command("status")
def pipeline_status(run_id: str, tenant: Tenant) -> None:
    """Steps, timings and errors of one run."""
    from pipelines.records import RunStore

    run = RunStore(settings().runs_db_url).get(run_id, tenant)
    if run is None:
        fail(NotFoundError(f"no run {run_id!r} for tenant {tenant!r}"))
    _report_run(run)


@pipeline_app.command("logs")
def pipeline_logs(run_id: str, tenant: Tenant, step: Annotated[str | None, typer.Option()] = None) -> None:
    """Print the log of every step (or one step) of a run."""
    from pipelines.records import RunStore

    run = RunStore(settings().runs_db_url).get(run_id, tenant)
    if run is None:
        fail(NotFoundError(f"no run {run_id!r} for tenant {tenant!r}"))
    if step is not None and step not in {s.step for s in run.steps}:
        fail(
            NotFoundError(
                f"run {run_id!r} has no step {step!r}; its steps are {', '.join(s.step for s in run.steps)}"
            )
        )
    for s in run.steps:
        if (step is None or s.step == step) and s.log and Path(s.log).exists():
            console.rule(s.step)
            console.print(Path(s.log).read_text(), markup=False, highlight=False)


# --- registry --------------------------------------------------------------------------------
def _metric(m: dict[str, Any], *path: str) -> str:
    for p in path:
        if not isinstance(m, dict) or p not in m:
            return "-"
        m = m[p]
    if m is None:  # a metric with no value: a WAPE where nothing was sold
        return "-"
    return f"{m:.4f}" if isinstance(m, float) else str(m)


@registry_app.command("list")
def registry_list(tenant: Tenant) -> None:
    """Versions with status, gate and metrics next to the seasonal-naive baseline.

    WAPE, naive WAPE, MASE and coverage are the backtest's, every window blended with the final
    weights. The best baseline and the gate ratio are the gate's, out of sample: the ensemble
    against that baseline pooled over the windows after the earliest, with weights fitted on the
    windows before each. So a ratio under 1 can sit beside a WAPE a hair above the baseline's.
    """
    from models.registry.factory import open_registry

    try:
        registry = open_registry(settings())
        versions = registry.list_versions(tenant)
        serving = registry.serving_version(tenant)
    except OrderNimbusError as exc:
        fail(exc)
    table = Table(title=f"model versions of {tenant}")
    for col in (
        "version",
        "status",
        "serving",
        "gate",
        "WAPE",
        "naive WAPE",
        "best baseline",
        "gate ratio",
        "MASE",
        "coverage",
        "created",
    ):
        table.add_column(col)
    for v in versions:
        m = v.metrics
        table.add_row(
            str(v.version),
            v.status,
            "*" if serving and serving.version == v.version else "",
            "passed" if v.gate_passed else "FAILED",
            _metric(m, "ensemble", "wape"),
            _metric(m, "baselines", "seasonal_naive", "wape"),
            f"{_metric(m, 'gate', 'best_baseline')} {_metric(m, 'gate', 'best_baseline_value')}",
            _metric(m, "gate", "wape_ratio"),
            _metric(m, "ensemble", "mase"),
            _metric(m, "ensemble", "coverage"),
            f"{v.created_at:%Y-%m-%d %H:%M}",
        )
    console.print(table)


@registry_app.command("show")
def registry_show(
    tenant: Tenant,
    version: Annotated[int, typer.Option("--version", "-v")],
    html: Annotated[Path | None, typer.Option(help="write the model card HTML here")] = None,
    card_json: Annotated[Path | None, typer.Option(help="write the model card JSON here")] = None,
) -> None:
    """A version's metrics, lineage and approval history; --html / --card-json write its model card."""
    from models.registry.factory import open_registry

    try:
        registry = open_registry(settings())
        v = registry.get(tenant, version)
    except OrderNimbusError as exc:
        fail(exc)
    console.print_json(
        json.dumps(
            {
                "version": v.version,
                "status": v.status,
                "gate_passed": v.gate_passed,
                "artifact_uri": v.artifact_uri,
                "lineage": v.lineage,
                "reason": v.reason,
                "metrics": {k: v.metrics.get(k) for k in ("ensemble", "members", "baselines", "gate")},
            },
            default=str,
        )
    )
    if html or card_json:
        try:
            _write_card(registry, tenant, v, html, card_json)
        except OrderNimbusError as exc:
            fail(exc)
        for path in (html, card_json):
            if path:
                console.print(f"model card: {path}")


def _write_card(registry: Any, tenant: str, version: Any, html: Path | None, as_json: Path | None) -> None:
    """Unpack the version's artifact (backtests, explanations) and write its model card (then swap)."""
    import tarfile
    import tempfile

    from models.registry.card import card_for, render_card_html
    from ordernimbus.atomic import user_target, write_text

    for path, example in ((html, "card.html"), (as_json, "card.json")):
        if path is not None:
            user_target(path, example)  # a traceback before, and a stray .tmp beside the folder
    with tempfile.TemporaryDirectory() as tmp:
        artifact = Path(version.artifact_uri.removeprefix("file://"))
        artifact_dir = None
        if artifact.exists():
            with tarfile.open(artifact) as tar:
                tar.extractall(tmp, filter="data")
            artifact_dir = Path(tmp)
        card = card_for(registry, tenant, version.version, artifact_dir)
        texts = [(html, render_card_html(card) if html else ""), (as_json, json.dumps(card, indent=2))]
    for path, text in texts:
        if path is not None:
            write_text(path, text)


@registry_app.command("approve")
def registry_approve(
    *,
    tenant: Tenant,
    version: Annotated[int, typer.Option("--version", "-v")],
    reason: Annotated[str, typer.Option(help="why this version may serve (recorded in the audit log)")],
    override: Annotated[bool, typer.Option(help="approve although the quality gate failed")] = False,
    actor: Annotated[str, typer.Option(help="who approves")] = "cli",
    forecast: Annotated[bool, typer.Option(help="run the forecast pipeline after approval")] = True,
) -> None:
    """Approve a version; it becomes the serving version and the forecast pipeline runs."""
    from models.registry.factory import open_registry
    from ordernimbus.service import run_forecast

    s = settings()
    try:
        v = open_registry(s).approve(tenant, version, actor, reason, override=override)
        console.print(
            f"[green]approved[/] {tenant} version {v.version}" + (" (gate override)" if override else "")
        )
        if forecast:
            run = run_forecast(s, tenant, on_event=_Live())
            _report_run(run)
            if run.status != "Succeeded":
                raise typer.Exit(1)
    except OrderNimbusError as exc:
        fail(exc)


@registry_app.command("reject")
def registry_reject(
    tenant: Tenant,
    version: Annotated[int, typer.Option("--version", "-v")],
    reason: Annotated[str, typer.Option(help="why (recorded in the audit log)")],
    actor: Annotated[str, typer.Option()] = "cli",
) -> None:
    """Reject a version."""
    from models.registry.factory import open_registry

    try:
        v = open_registry(settings()).reject(tenant, version, actor, reason)
    except OrderNimbusError as exc:
        fail(exc)
    console.print(f"[yellow]rejected[/] {tenant} version {v.version}")


@registry_app.command("compare")
def registry_compare(
    tenant: Tenant,
    version_a: Annotated[int, typer.Argument(help="the version to compare against (e.g. the champion)")],
    version_b: Annotated[int, typer.Argument(help="the candidate version")],
    as_json: Annotated[bool, typer.Option("--json", help="print the comparison as JSON")] = False,
) -> None:
    """Two versions side by side: every scored model's metrics, the gate, data range and lineage."""
    from models.registry.card import compare
    from models.registry.factory import open_registry

    try:
        result = compare(open_registry(settings()), tenant, version_a, version_b)
    except OrderNimbusError as exc:
        fail(exc)
    if as_json:
        print(json.dumps(result, default=str, indent=2))
        return
    a, b = result["a"], result["b"]
    title = f"{tenant}: version {version_a} ({a['status']}) vs version {version_b} ({b['status']})"
    table = Table(title=title)
    for col in ("model", "role", "metric", f"v{version_a}", f"v{version_b}", "delta", "better"):
        table.add_column(col, justify="left" if col in ("model", "role", "metric", "better") else "right")
    for row in result["metrics"]:
        better = {True: f"[green]v{version_b}[/]", False: f"[red]v{version_a}[/]"}.get(row["b_better"], "")
        table.add_row(
            row["model"],
            row["kind"],
            row["metric"],
            _num(row["a"]),
            _num(row["b"]),
            _num(row["delta"], signed=True),
            better,
        )
    console.print(table)
    gates = "  ".join(f"v{v['version']} gate {'passed' if v['gate_passed'] else 'FAILED'}" for v in (a, b))
    console.print(gates)
    data = result["data"]
    for label, d in ((f"v{version_a}", data["a"]), (f"v{version_b}", data["b"])):
        if isinstance(d, dict):
            console.print(f"{label} data {d.get('start')} .. {d.get('end')}, {d.get('series')} series")
    changed = {k: v for k, v in result["lineage"].items() if not v["same"]}
    for key, values in changed.items():
        console.print(f"lineage {key}: {values['a']} -> {values['b']}", highlight=False)


def _num(value: Any, signed: bool = False) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "-"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


@registry_app.command("audit")
def registry_audit(
    tenant: Tenant,
    version: Annotated[int | None, typer.Option("--version", "-v", help="only this version")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the entries as JSON Lines")] = False,
) -> None:
    """The tenant's append-only registry audit log: who changed what, when and why."""
    from models.registry.factory import open_registry

    try:
        entries = open_registry(settings()).audit_log(tenant)
    except OrderNimbusError as exc:
        fail(exc)
    entries = [e for e in entries if version is None or e.version == version]
    if as_json:
        for e in entries:
            print(
                json.dumps(
                    {
                        "tenant_id": e.tenant_id,
                        "at": e.at.isoformat(),
                        "actor": e.actor,
                        "action": e.action,
                        "version": e.version,
                        "detail": e.detail,
                    },
                    default=str,
                )
            )
        return
    table = Table("when (UTC)", "who", "action", "version", "why / what", title=f"registry audit of {tenant}")
    for e in entries:
        what = e.detail.get("reason") or ", ".join(f"{k}={v}" for k, v in e.detail.items())
        overrides = e.detail.get("overrides") or []
        if overrides:
            what += f" [yellow](override: {', '.join(overrides)})[/]"
        table.add_row(f"{e.at:%Y-%m-%d %H:%M:%S}", e.actor, e.action, str(e.version or ""), what)
    console.print(table)


# --- forecasts ---------------------------------------------------------------------------------
@forecast_app.command("export")
def forecast_export(
    tenant: Tenant,
    out: Annotated[Path, typer.Option(help="file to write (CSV or Parquet)")],
    fmt: Annotated[
        str | None,
        typer.Option("--format", "-f", help="csv or parquet; default: from the file's suffix, else csv"),
    ] = None,
    set_id: Annotated[str | None, typer.Option(help="a complete set other than the current one")] = None,
) -> None:
    """Write a forecast set: one row per store x sku x target_date with p10/p50/p90/mean."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress

    from inference.store.export import export_set
    from inference.store.factory import open_forecast_store

    fmt = fmt or ("parquet" if out.suffix.lower() in (".parquet", ".pq") else "csv")
    try:
        with (
            open_forecast_store(settings()) as store,
            Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                console=err,
                transient=True,
            ) as progress,
        ):
            task = progress.add_task(f"exporting {tenant}", total=None)
            result = export_set(
                store,
                tenant,
                out,
                fmt,
                set_id=set_id,
                progress=lambda done, n: progress.update(task, completed=done, total=n),
            )
    except OrderNimbusError as exc:
        fail(exc)
    fs = result.forecast_set
    console.print(
        f"wrote {result.rows} forecasts of set {fs.set_id} (model version {fs.model_version}) "
        f"to {out} ({result.format})"
    )


# --- API ----------------------------------------------------------------------------------------
@app.command()
def serve(
    host: str = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port")] = 8000,  # 99999 served on 34463
    workers: Annotated[int, typer.Option(min=1, max=64)] = 1,
) -> None:
    """Run the forecast API with uvicorn."""
    import uvicorn

    from serving.log_config import LOG_CONFIG

    uvicorn.run(
        "serving.app:app", host=host, port=port, workers=workers, log_config=LOG_CONFIG, access_log=False
    )


@apikey_app.command("create")
def apikey_create(
    tenant: Tenant,
    role: Annotated[str, typer.Option(help="admin, approver, analyst or viewer")] = "viewer",
    name: Annotated[str, typer.Option(help="a label for the key")] = "",
) -> None:
    """Create a key; the plaintext is printed once and stored only as a hash."""
    from serving.auth import ApiKeyStore

    try:
        info, plaintext = ApiKeyStore(settings().db_url).create(tenant, role, name)
    except OrderNimbusError as exc:
        fail(exc)
    err.print(f"created key {info.key_id} for tenant {tenant} with role {role} (shown once):")
    print(plaintext)


@apikey_app.command("revoke")
def apikey_revoke(tenant: Tenant, key_id: Annotated[str, typer.Option("--key-id")]) -> None:
    """Revoke a key immediately."""
    from serving.auth import ApiKeyStore

    try:
        ApiKeyStore(settings().db_url).revoke(key_id, tenant)
    except OrderNimbusError as exc:
        fail(exc)
    console.print(f"revoked {key_id}")


@apikey_app.command("list")
def apikey_list(tenant: Tenant) -> None:
    """The tenant's keys (never their secrets)."""
    from serving.auth import ApiKeyStore

    table = Table("key_id", "role", "name", "created", "revoked")
    for k in ApiKeyStore(settings().db_url).list(tenant):
        table.add_row(k.key_id, k.role, k.name, str(k.created_at), str(k.revoked_at or ""))
    console.print(table)


def main() -> None:
    try:
        app()
    except OrderNimbusError as exc:  # anything not caught by a command
        err.print(f"error: {exc}")
        sys.exit(2)


if __name__ == "__main__":
    main()
