"""Validate step: the tenant's canonical sales up to ``until``, re-checked against the contract."""

from __future__ import annotations

import json

import pandas as pd

from features.contract import validate_sales
from features.frequency import detect_frequency, period_unit
from features.outages import fill, read_outages
from features.validation import EXAMPLES, tenant_wide_gaps
from ordernimbus.errors import OrderNimbusError
from ordernimbus.tenancy import validate_tenant
from pipelines.contract import StepContext
from pipelines.steps._io import META, SALES, fingerprint, run_step


def main(ctx: StepContext) -> None:
    tenant = validate_tenant(ctx.param("tenant"))
    raw = ctx.input("raw") / SALES
    if not raw.exists():
        raise OrderNimbusError(f"no sales data for tenant {tenant!r}: ingest a file first ({raw} is missing)")
    sales = pd.read_parquet(raw)
    outages = read_outages(raw)
    until = ctx.param("until", "")
    if until:
        sales = sales[sales["date"] <= pd.Timestamp(until)]
    if sales.empty:
        raise OrderNimbusError(f"tenant {tenant!r} has no sales on or before {until or 'today'}")
    sales = validate_sales(sales.reset_index(drop=True), str(raw))
    freq = detect_frequency(sales)
    sales, filled = fill(sales, outages, freq)
    # stretches with no record in any series that no outage fills: the approver should know the
    # models read them as zero demand (the model card lists them)
    gaps = tenant_wide_gaps(sales, freq)[:EXAMPLES]
    out = ctx.output("sales")
    sales.to_parquet(out / SALES, index=False)
    meta = {
        "tenant": tenant,
        "frequency": freq,
        "fingerprint": fingerprint(sales),
        "start": str(sales["date"].min().date()),
        "end": str(sales["date"].max().date()),
        "rows": str(len(sales)),
        "series": str(sales.groupby(["store_id", "sku"]).ngroups),
        "outages": [o.to_json() for o in outages],
        "filled_rows": str(filled),
        "unmarked_gaps": gaps,
    }
    (out / META).write_text(json.dumps(meta, indent=2))
    (ctx.output("report") / "report.json").write_text(json.dumps(meta, indent=2))
    if outages:  # why the rows below exceed the upload's, and which periods are not scored
        labels = ", ".join(o.label() for o in outages)
        print(f"outages {labels}: {filled} missing rows filled from the periods before")
    for gap in gaps:
        print(
            f"warning: no series has a record from {gap['first']} to {gap['last']} ({gap['periods']} "
            f"{period_unit(freq)}): read as zero sales; if they were lost, mark them (ordernimbus outage "
            "add) and build again"
        )
    print(
        f"validated {len(sales)} rows, {meta['series']} series, {meta['start']}..{meta['end']}, freq {freq}"
    )


if __name__ == "__main__":
    run_step(main)
