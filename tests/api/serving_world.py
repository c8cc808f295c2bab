"""A small, realistic world for API tests: two tenants seeded through the real store layers.

Every number comes from the real Store Item Demand cut: sales history is the real daily units, the
forecast is a seasonal-naive forecast of the last weeks (p10/p50/p90 from the same weekday of the
four previous weeks), inventory advice is computed from it by :mod:`inference.inventory`, and the
accuracy rows score such a forecast against the real actuals that followed its origin. Registry
versions carry a real ``model.tar.gz`` with ``explain.json`` and ``backtest.parquet``.
"""

from __future__ import annotations

import io
import json
import tarfile
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from realcuts import store_item_cut

from inference.inventory import InventoryPolicy, recommend
from inference.store.engine import create_engine_for
from inference.store.history import upsert_history
from inference.store.jobs import JobStore
from inference.store.monitoring import ALL, AccuracyRow, MonitoringStore
from inference.store.sql import SqlForecastStore
from models.registry.local import LocalRegistry
from ordernimbus.settings import Settings, ShopifyWebhook
from serving.auth import ROLES, ApiKeyStore

ORIGIN = pd.Timestamp("2017-09-30")  # last day of actuals; forecasts start the day after
HORIZON = 14
HISTORY_DAYS = 120
SHOP_SECRET = "shpss_test_secret_"


@dataclass
class Tenant:
    name: str
    prefix: str
    keys: dict[str, str] = field(default_factory=dict)  # role -> plaintext key
    key_ids: dict[str, str] = field(default_factory=dict)
    set_id: str = ""
    series: list[tuple[str, str]] = field(default_factory=list)
    job_id: str = ""
    shop: str = ""
    versions: dict[str, int] = field(default_factory=dict)  # approved / pending / failed

    def markers(self) -> list[str]:
        """Strings that appear only in this tenant's data: none may leak to another tenant."""
        found = [self.name, f"{self.prefix}-store", self.set_id, self.job_id, *self.key_ids.values()]
        return [m for m in found if m]


def realistic_forecast(sales: pd.DataFrame, origin: pd.Timestamp, horizon: int) -> pd.DataFrame:
    """Seasonal naive: each target day's p10/p50/p90 from the same weekday in the 4 prior weeks."""
    rows = []
    for (store, sku), part in sales.groupby(["store_id", "sku"]):
        s = part.set_index("date")["units"]
        for h in range(1, horizon + 1):
            target = origin + pd.Timedelta(days=h)
            lags = [target - pd.Timedelta(weeks=w) for w in range(1, 5)]
            past = np.array([s.get(d, np.nan) for d in lags if d <= origin], dtype=float)
            if past.size == 0:
                past = s.loc[:origin].tail(7).to_numpy(dtype=float)
            p10, p50, p90 = np.quantile(past, [0.1, 0.5, 0.9])
            rows.append(
                (store, sku, target.date(), h, float(p10), float(p50), float(p90), float(past.mean()))
            )
    return pd.DataFrame(
        rows, columns=["store_id", "sku", "target_date", "horizon_day", "p10", "p50", "p90", "mean"]
    )


def tenant_sales(prefix: str) -> pd.DataFrame:
    cut = store_item_cut(stores=2, items=3, since="2017-01-01")
    cut["store_id"] = f"{prefix}-store-" + cut["store_id"]
    cut["sku"] = f"{prefix}-item-" + cut["sku"]
    return cut


def accuracy_rows(sales: pd.DataFrame, set_id: str, version: int) -> list[AccuracyRow]:
    """Score a seasonal-naive forecast made 14 days before ORIGIN against the real actuals."""
    origin = ORIGIN - pd.Timedelta(days=HORIZON)
    fc = realistic_forecast(sales[sales["date"] <= origin], origin, HORIZON)
    fc["date"] = pd.to_datetime(fc["target_date"])
    scored = fc.merge(sales, on=["store_id", "sku", "date"])
    start, end = scored["date"].min().date(), scored["date"].max().date()

    def row(level: str, store: str, sku: str, part: pd.DataFrame) -> AccuracyRow:
        actual = part["units"].sum()
        err = (part["p50"] - part["units"]).to_numpy()
        inside = ((part["units"] >= part["p10"]) & (part["units"] <= part["p90"])).mean()
        return AccuracyRow(
            level=level, store_id=store, sku=sku, forecast_set_id=set_id, model_version=version,  # type: ignore[arg-type]
            start_date=start, end_date=end, n=len(part), wape=float(np.abs(err).sum() / actual),
            bias=float(err.sum() / actual), pinball=None, coverage=float(inside),
        )  # fmt: skip

    out = [row("total", ALL, ALL, scored)]
    out += [row("store", s, ALL, p) for s, p in scored.groupby("store_id")]
    out += [row("sku", s, k, p) for (s, k), p in scored.groupby(["store_id", "sku"])]
    return out


def model_artifact(folder: Path, sales: pd.DataFrame, version: int) -> str:
    """A model.tar.gz holding explain.json (global + per-SKU drivers) and a real backtest."""
    folder.mkdir(parents=True, exist_ok=True)
    series = sorted(set(zip(sales["store_id"], sales["sku"], strict=True)))
    features = ["lag_7", "lag_14", "rolling_mean_28", "dayofweek", "lag_364", "horizon"]
    explain = {
        "global": [
            {
                "feature": f,
                "label": f.replace("_", " "),
                "importance": round(1.0 / (i + 1) + version / 100, 4),
            }
            for i, f in enumerate(features)
        ],
        "per_sku": {
            f"{s}|{k}": [
                {"feature": f, "importance": round((j + 1) / (i + 2), 4)} for i, f in enumerate(features)
            ]
            for j, (s, k) in enumerate(series)
        },
    }
    origin = ORIGIN - pd.Timedelta(days=HORIZON)
    fc = realistic_forecast(sales[sales["date"] <= origin], origin, HORIZON)
    fc["date"] = pd.to_datetime(fc["target_date"])
    backtest = fc.merge(sales, on=["store_id", "sku", "date"]).rename(columns={"units": "actual"})
    backtest = backtest.assign(window=0, model="ensemble")[
        ["store_id", "sku", "date", "window", "model", "actual", "p10", "p50", "p90"]
    ]
    path = folder / f"model-{version}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in (
            ("explain.json", json.dumps(explain).encode()),
            ("backtest.parquet", _parquet(backtest)),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path.as_uri()


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def version_metrics(wape: float, passed: bool) -> dict[str, Any]:
    ens = {"wape": wape, "mase": 0.8, "smape": 0.3, "pinball": 1.5, "coverage": 0.79}
    naive = {"wape": 0.27, "mase": 1.0, "smape": 0.36, "pinball": 2.2, "coverage": 0.55}
    return {
        "frequency": "D", "horizon": HORIZON, "season_length": 7, "quantiles": [0.1, 0.5, 0.9],
        "ensemble": ens, "members": {"xgboost": dict(ens, wape=wape + 0.02)},
        "baselines": {"seasonal_naive": naive},
        "gate": {"passed": passed, "metric": "wape", "max_ratio": 1.0, "best_baseline": "seasonal_naive",
                 "best_baseline_value": 0.27, "ensemble_value": wape},
        "data": {"start": "2017-01-01", "end": "2017-09-30", "series": 6, "rows": 1638},
    }  # fmt: skip


@dataclass
class World:
    settings: Settings
    a: Tenant
    b: Tenant
    revoked_key: str
    keys: ApiKeyStore
    store: SqlForecastStore
    registry: LocalRegistry
    jobs: JobStore


def build_world(home: Path, db_url: str, *, seed_lake: bool = False) -> World:
    a = Tenant(f"alpha-{uuid.uuid4().hex[:8]}", "a", shop=f"alpha-{uuid.uuid4().hex[:6]}.myshopify.com")
    b = Tenant(f"beta-{uuid.uuid4().hex[:8]}", "b", shop=f"beta-{uuid.uuid4().hex[:6]}.myshopify.com")
    shops = tuple(ShopifyWebhook(shop=t.shop, tenant=t.name, secret=SHOP_SECRET + t.prefix) for t in (a, b))  # type: ignore[arg-type]
    settings = Settings(
        home=home, database_url=db_url, api_rate_limit_per_minute=100_000,
        api_rate_limit_per_tenant_per_minute=100_000, shopify_webhooks=shops,
    )  # fmt: skip
    engine = create_engine_for(settings.db_url)
    store = SqlForecastStore(settings.db_url, engine=engine)
    keys = ApiKeyStore(settings.db_url, engine=engine)
    jobs = JobStore(settings.db_url, engine=engine)
    monitoring = MonitoringStore(engine=engine)
    registry = LocalRegistry(settings.registry_url)
    stores = _Stores(settings, store, engine, monitoring, registry, jobs)
    # Asymmetric on purpose: B has no version 2 or 3 and no job, so B's credential addressing A's
    # version or job numbers must find nothing rather than act on a same-numbered object of its own.
    _seed(a, 3, stores, seed_lake, full=True)
    _seed(b, 9, stores, seed_lake, full=False)
    for tenant in (a, b):
        for role in ROLES:
            info, plaintext = keys.create(tenant.name, role, f"{role} key")
            tenant.keys[role], tenant.key_ids[role] = plaintext, info.key_id
    revoked, revoked_key = keys.create(a.name, "admin", "old laptop")
    keys.revoke(revoked.key_id, a.name)
    return World(settings, a, b, revoked_key, keys, store, registry, jobs)


@dataclass
class _Stores:
    settings: Settings
    store: SqlForecastStore
    engine: Any
    monitoring: MonitoringStore
    registry: LocalRegistry
    jobs: JobStore


def _seed(tenant: Tenant, version: int, st: _Stores, seed_lake: bool, *, full: bool) -> None:
    settings, store, registry, jobs = st.settings, st.store, st.registry, st.jobs
    sales = tenant_sales(tenant.prefix)
    known = sales[sales["date"] <= ORIGIN]
    recent = known[known["date"] > ORIGIN - pd.Timedelta(days=HISTORY_DAYS)]
    upsert_history(st.engine, tenant.name, [[
        (r.store_id, r.sku, r.date.date(), float(r.units), None) for r in recent.itertuples()
    ]])  # fmt: skip
    fc = realistic_forecast(known, ORIGIN, HORIZON)
    stock = {
        key: (5.0 if i % 2 == 0 else 900.0)
        for i, key in enumerate(sorted(set(zip(fc["store_id"], fc["sku"], strict=True))))
    }
    advice = recommend(
        fc, InventoryPolicy(lead_time_days=7, service_level=0.95, review_days=7), on_hand=stock
    )
    fs = store.write_set(
        tenant.name, version, [list(fc.itertuples(index=False, name=None))],
        {"origin": ORIGIN.date().isoformat()}, inventory=[list(advice.itertuples(index=False, name=None))],
    )  # fmt: skip
    tenant.set_id = fs.set_id
    tenant.series = sorted(set(zip(fc["store_id"], fc["sku"], strict=True)))
    st.monitoring.write_accuracy(
        tenant.name, str(uuid.uuid4()), datetime.now(UTC), accuracy_rows(sales, fs.set_id, version)
    )
    artifacts = settings.home / "artifacts-seed" / tenant.name

    def register(n: int, wape: float, passed: bool) -> Any:
        lineage = {"pipeline_run_id": f"seed-{n}", "data_fingerprint": "sha256:seed"}
        return registry.register(
            tenant.name, model_artifact(artifacts, known, n), version_metrics(wape, passed), lineage, passed
        )

    approved = register(1, 0.12, True)
    registry.approve(tenant.name, approved.version, "seed", "the seeded champion")
    tenant.versions = {"approved": approved.version}
    if full:
        pending, failed = register(2, 0.11, True), register(3, 0.31, False)
        tenant.versions |= {"pending": pending.version, "failed": failed.version}
        job = jobs.create(tenant.name, "forecast", {"horizon": None}, "seed")
        jobs.update(tenant.name, job.job_id, status="failed", message="seeded: a finished job")
        tenant.job_id = job.job_id
    if seed_lake:
        from features.lake import SalesLake

        SalesLake(settings.lake_dir).upsert(tenant.name, known.assign(tenant_id=tenant.name), source="seed")


def day(offset: int) -> date:
    return (ORIGIN + timedelta(days=offset)).date()


PROBLEM_FIELDS = {"type", "title", "status", "detail", "instance"}


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert set(body) >= PROBLEM_FIELDS
    assert body["status"] == status
    return dict(body)
