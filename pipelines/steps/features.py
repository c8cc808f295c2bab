"""Features step: materialise the tenant's feature records into the offline feature store."""

from __future__ import annotations

from features.engineering import FeatureSpec, build_features
from ordernimbus.tenancy import validate_tenant
from pipelines.contract import StepContext
from pipelines.steps._io import read_sales, run_step


def main(ctx: StepContext) -> None:
    tenant = validate_tenant(ctx.param("tenant"))
    sales, meta = read_sales(ctx.input("sales"))
    spec = FeatureSpec.for_freq(meta["frequency"])
    feats = build_features(sales, spec)
    feats.insert(0, "tenant_id", tenant)
    feats["feature_spec"] = spec.version
    out = ctx.output("features")
    feats.to_parquet(out / "features.parquet", index=False)
    print(f"features: {len(feats)} records x {feats.shape[1]} columns (spec {spec.version})")


if __name__ == "__main__":
    run_step(main)
