"""``make demo``: the whole flow on one machine, from a fresh checkout to a live forecast API.

ingest the Store Item Demand data as tenant ``demo`` -> build pipeline -> approve (said on screen)
-> forecast pipeline -> API key -> uvicorn on 127.0.0.1, with a ``curl`` line that works.
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

from rich.console import Console
from rich.panel import Panel

from ordernimbus.errors import OrderNimbusError
from ordernimbus.settings import get_settings

DEMO_BUDGET = {"BacktestWindows": 2, "DeepAREpochs": 6}
TENANT = "demo"
console = Console()


def bundled_cut() -> Path:
    return Path(str(resources.files("ordernimbus") / "data" / "store_item_demand_cut.parquet"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--data", type=Path, default=Path("../shared/data/store_item_demand_dev_stores_1_8.parquet")
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--no-serve", action="store_true", help="stop after printing the curl line")
    args = parser.parse_args(argv)
    try:
        key = prepare(args.data)
    except OrderNimbusError as exc:
        console.print(f"[bold red]demo failed:[/] {exc}")
        return 1
    curl = _curl(args.host, args.port, key)
    console.print(
        Panel(
            f"API on http://{args.host}:{args.port}  (docs: /docs)\n\n{curl}",
            title="OrderNimbus demo is ready",
            border_style="green",
        )
    )
    if args.no_serve:
        return 0
    import uvicorn

    uvicorn.run("serving.app:app", host=args.host, port=args.port, log_level="warning")
    return 0


def prepare(data: Path) -> str:
    """Everything up to serving; returns a fresh viewer API key for the demo tenant."""
    from features.ingest import ingest_file
    from features.lake import SalesLake
    from models.registry.factory import open_registry
    from ordernimbus.service import run_build, run_forecast
    from serving.auth import ApiKeyStore

    settings = get_settings()
    if not data.exists():
        console.print(f"[yellow]{data} not found; using the small bundled cut of Store Item Demand[/]")
        data = bundled_cut()
    console.rule(f"1/4 ingest {data.name} as tenant '{TENANT}'")
    result = ingest_file(
        data, TENANT, SalesLake(settings.lake_dir), settings.reports_dir, mapping={"sku": "item_id"}
    )
    console.print(
        f"{result.upsert.rows_total} rows stored ({result.upsert.frequency}); report {result.report_html}"
    )

    console.rule(
        "2/4 build pipeline: validate -> features -> train ARIMA, XGBoost, DeepAR, AutoETS -> evaluate "
        "-> gate -> register"
    )
    # A lighter budget than a production build (2 backtest windows, DeepAR at most 6 epochs) so the demo
    # finishes in minutes on a laptop; `ordernimbus pipeline run build` uses the full defaults.
    run = run_build(settings, TENANT, on_event=_event, extra=DEMO_BUDGET)
    if run.status != "Succeeded":
        raise OrderNimbusError(f"build pipeline failed: {run.error}")
    registry = open_registry(settings)
    version = max(registry.list_versions(TENANT), key=lambda v: v.version)
    m, gate = version.metrics, version.metrics["gate"]
    # the gate's two figures are out of sample, on the same windows; the backtest WAPE blends every
    # window with the final weights, so it is not compared with the baseline's
    console.print(
        f"registered version {version.version} ({version.status}): backtest WAPE "
        f"{m['ensemble']['wape']:.4f}, p10-p90 coverage {m['ensemble'].get('coverage', float('nan')):.2f}; "
        f"gate {'passed' if version.gate_passed else 'FAILED'}: out of sample "
        f"{gate['ensemble_value']:.4f} vs {gate['best_baseline']} {gate['best_baseline_value']:.4f}"
    )

    console.rule("3/4 approval")
    console.print(
        f"[bold yellow]The demo approves version {version.version} on your behalf[/] "
        "(in production an approver reviews the model card first)."
    )
    registry.approve(
        TENANT,
        version.version,
        "make-demo",
        "approved automatically by the demo",
        override=not version.gate_passed,
    )

    console.rule("4/4 forecast pipeline with the approved version")
    run = run_forecast(settings, TENANT, on_event=_event)
    if run.status != "Succeeded":
        raise OrderNimbusError(f"forecast pipeline failed: {run.error}")
    _, key = ApiKeyStore(settings.db_url).create(TENANT, "viewer", "make demo")
    return key


def _event(step: str, status: str, message: str) -> None:
    color = {"Succeeded": "green", "Failed": "red", "Skipped": "dim"}.get(status, "cyan")
    console.print(f"  [{color}]{status:<10}[/] {step:<22} {message}", highlight=False)


def _curl(host: str, port: int, key: str) -> str:
    return f'curl -s -H "X-API-Key: {key}" "http://{host}:{port}/v1/forecasts?store_id=1&sku=1&limit=28"'


if __name__ == "__main__":
    sys.exit(main())
