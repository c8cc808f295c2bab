"""A 100 MB transaction file is streamed: chunk by chunk, in bounded memory, with nothing lost.

The ingest runs in a child process so its peak RSS is its own, not the test runner's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]
TARGET_BYTES = 100 * 1024 * 1024

CHILD = """
import json, sys
from datetime import date
from pathlib import Path
from features.ingest import ingest_file
from features.lake import SalesLake
def peak_rss_mb():
    # VmHWM belongs to this process's own address space. ru_maxrss does not: Linux carries it
    # across exec, so a child of a large pytest process would report the parent's peak.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")
path, root = Path(sys.argv[1]), Path(sys.argv[2])
updates = []
result = ingest_file(path, "big", SalesLake(root / "lake"), root / "reports", mapping={"store_id": "Country"},
                     progress=lambda done, total: updates.append((done, total)), today=date(2026, 1, 1))
print(json.dumps({"rows": result.source_rows, "records": result.upsert.rows_total, "updates": updates,
                  "rss_mb": peak_rss_mb()}))
"""


def write_transactions(path: Path, rows: int) -> None:
    """Online Retail-shaped lines: 2,000 SKUs, five countries, a year, 2 % cancellations."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(541909)  # seed logged for reproduction
    start = np.datetime64("2010-12-01T08:00:00")
    stamps = start + rng.integers(0, 370 * 24 * 3600, rows).astype("timedelta64[s]")
    cancelled = rng.random(rows) < 0.02
    quantity = rng.integers(1, 48, rows)
    table = pa.table(
        {
            "InvoiceNo": np.char.add(
                np.where(cancelled, "C", ""), rng.integers(536000, 582000, rows).astype(str)
            ),
            "StockCode": np.char.add("SKU", rng.integers(10000, 12000, rows).astype(str)),
            "Description": np.full(rows, "WHITE HANGING HEART T-LIGHT HOLDER"),
            "Quantity": np.where(cancelled, -quantity, quantity),
            "InvoiceDate": np.datetime_as_string(stamps, unit="s"),
            "UnitPrice": rng.choice([0.42, 0.85, 1.25, 2.55, 4.95], rows),
            "CustomerID": rng.integers(12000, 18000, rows),
            "Country": rng.choice(
                ["United Kingdom", "France", "Germany", "EIRE", "Spain"],
                rows,
                p=[0.8, 0.05, 0.05, 0.05, 0.05],
            ),
        }
    )
    pacsv.write_csv(table, path, pacsv.WriteOptions(quoting_style="needed"))


def test_hundred_megabytes_stream_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    write_transactions(path, rows=980_000)
    size = path.stat().st_size
    assert size >= TARGET_BYTES
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(tmp_path)],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    out = json.loads(child.stdout.strip().splitlines()[-1])
    sql = (
        "select count(*), count(distinct (Country, StockCode, cast(InvoiceDate as date))) from read_csv('{}')"
    )
    row = duckdb.execute(sql.format(path)).fetchone()
    assert row is not None
    assert (out["rows"], out["records"]) == row
    updates = out["updates"]
    assert len(updates) >= 9  # 100,000-row chunks, each reported
    assert updates[-1] == [size, size]
    assert out["rss_mb"] < 1_000, f"peak RSS {out['rss_mb']:.0f} MB for a {size / 2**20:.0f} MB file"
