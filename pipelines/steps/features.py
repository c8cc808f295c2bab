"""Features step: bring the tenant's feature store up to date with the validated sales.

The first run materialises every period; later runs recompute only the tail an upload touched (see
``features.store.materialize``). The store is the tenant's, chosen by settings (embedded Parquet +
SQLite, or SageMaker Feature Store); what was done goes to the step's output as JSON, so the run
record shows it and the step's output changes whenever the store did.
"""

from __future__ import annotations

import json

from features.store.factory import open_feature_store
from features.store.materialize import materialize
from ordernimbus.settings import get_settings
from ordernimbus.tenancy import validate_tenant
from pipelines.contract import StepContext
from pipelines.steps._io import read_sales, run_step


def main(ctx: StepContext) -> None:
    tenant = validate_tenant(ctx.param("tenant"))
    sales, meta = read_sales(ctx.input("sales"))
    store = open_feature_store(get_settings())
    result = materialize(store, tenant, sales, meta["frequency"])
    (ctx.output("features") / "materialization.json").write_text(json.dumps(result.as_dict(), indent=1))
    print(
        f"features: {result.mode} ({result.group}): {result.records} records in {result.partitions} "
        f"partitions, {result.online} online updates, "
        f"periods {result.since or 'all'}..{result.until or 'end'}, {result.seconds} s"
    )


if __name__ == "__main__":
    run_step(main)
