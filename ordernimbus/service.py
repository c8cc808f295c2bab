"""Use cases shared by the CLI, the API and the demo: the only place that wires backends together."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ordernimbus.errors import ConflictError, NotFoundError, OrderNimbusError
from ordernimbus.settings import Settings
from ordernimbus.tenancy import tenant_dir, validate_tenant
from ordernimbus.text import iso_day

Event = Callable[[str, str, str], None]


def lake_uri(settings: Settings, tenant: str) -> str:
    return tenant_dir(settings.lake_dir, tenant).as_uri()


def run_build(
    settings: Settings,
    tenant: str,
    *,
    until: str | None = None,
    horizon: int | None = None,
    on_event: Event | None = None,
    extra: dict[str, Any] | None = None,
) -> Any:
    """Start the build pipeline on the configured backend and wait for it (locally)."""
    from features.lake import SalesLake
    from pipelines.local import LocalRunner

    validate_tenant(tenant)
    if not SalesLake(settings.lake_dir).exists(tenant):
        raise NotFoundError(
            f"tenant {tenant!r} has no sales data yet: run `ordernimbus ingest FILE --tenant {tenant}`"
        )
    params: dict[str, Any] = {
        "InputDataUri": lake_uri(settings, tenant),
        "Until": until or "",
        "Horizon": horizon or settings.default_horizon,
        "Quantiles": ",".join(str(q) for q in settings.quantiles),
        "GateMaxWapeRatio": settings.gate_max_wape_ratio,
        **(extra or {}),
    }
    _check_history(settings, tenant, params)
    return LocalRunner(settings, on_event).start("build", tenant, params)


def _check_history(settings: Settings, tenant: str, params: dict[str, Any]) -> None:
    """Refuse, before any step runs, a build whose backtest the history cannot hold (the training
    steps check it too, for the SageMaker path, but four of them failing is a poor way to learn it)."""

    from features.lake import SalesLake
    from models.backtest import check_history
    from pipelines.definition import build_pipeline

    lake = SalesLake(settings.lake_dir)
    until = _day(params["Until"]) if params["Until"] else None
    span = lake.date_range(tenant, until)
    if span is None:
        raise NotFoundError(f"tenant {tenant!r} has no sales up to {params['Until']}: choose a later --until")
    defaults = {p.name: p.default for p in build_pipeline().parameters}
    windows = int(params.get("BacktestWindows", defaults["BacktestWindows"]))
    what = f"tenant {tenant!r}" + (f", up to {params['Until']}," if until is not None else "")
    check_history(*span, int(params["Horizon"]), windows, lake.frequency(tenant), what)


def _day(text: str) -> Any:
    """``--until`` as a date: YYYY-MM-DD, a real day (2017-02-30 was a traceback, exit 1)."""
    import pandas as pd

    day = iso_day(text)
    if day is None:
        raise OrderNimbusError(f"--until {text!r}: expected a date as YYYY-MM-DD")
    return pd.Timestamp(day)


def run_forecast(
    settings: Settings, tenant: str, horizon: int | None = None, on_event: Event | None = None
) -> Any:
    """Forecast every series with the tenant's serving (latest approved) version."""
    from models.registry.factory import open_registry
    from pipelines.local import LocalRunner

    version = open_registry(settings).serving_version(validate_tenant(tenant))
    if version is None:
        raise ConflictError(
            f"tenant {tenant!r} has no approved model version: approve one with "
            f"`ordernimbus registry approve --tenant {tenant} --version N --reason ...`"
        )
    trained = int(version.metrics.get("horizon", 28))
    if horizon is not None and horizon > trained:  # the Transform step failed it three times, then a resume
        raise OrderNimbusError(
            f"version {version.version} of tenant {tenant!r} was trained to forecast {trained} periods, not "
            f"{horizon}: use --horizon {trained} or less, or build a version with --horizon {horizon}"
        )
    params = {
        "InputDataUri": lake_uri(settings, tenant),
        "ModelDataUri": version.artifact_uri,
        "ModelVersion": version.version,
        "Horizon": horizon or trained,
        "Quantiles": ",".join(str(q) for q in settings.quantiles),
    }
    return LocalRunner(settings, on_event).start("forecast", tenant, params)
