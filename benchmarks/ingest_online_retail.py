"""How long ingesting the whole Online Retail file takes, and how much memory it needs.

Ingests ``online_retail.csv.gz`` (541,909 transaction lines, gzip) with the mapping
``{"store_id": "Country"}`` into a fresh temporary lake, end to end: decode, type, check, aggregate to
daily store x SKU records, quality report, atomic upsert. Then ingests it a second time to time the
idempotent re-upload (nothing changes, the lake file is not rewritten). Peak RSS is the process's
maximum resident set size (``resource.getrusage``), imports included.

    .venv/bin/python benchmarks/ingest_online_retail.py [--data PATH]

Goals: under 20 s and under 2 GB. Results go to benchmarks/results/ingest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from features.ingest import ingest_file  # noqa: E402
from features.lake import SalesLake  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "online_retail.csv.gz"
RESULTS = ROOT / "benchmarks" / "results" / "ingest.json"
GOAL_SECONDS = 20.0
GOAL_RSS_MB = 2048.0


def peak_rss_mb() -> float:
    """This process's own peak (VmHWM); ru_maxrss would carry a parent's peak across exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    if not args.data.exists():
        raise SystemExit(f"{args.data} not found: pass --data with the path to online_retail.csv.gz")
    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as tmp:
        lake = SalesLake(Path(tmp) / "lake")
        updates: list[int] = []
        started = time.perf_counter()
        first = ingest_file(
            args.data,
            "retail",
            lake,
            Path(tmp) / "reports",
            mapping={"store_id": "Country"},
            progress=lambda done, total: updates.append(done),
        )
        seconds = time.perf_counter() - started
        rss_after_first = peak_rss_mb()
        started = time.perf_counter()
        again = ingest_file(args.data, "retail", lake, Path(tmp) / "reports", mapping={"store_id": "Country"})
        seconds_again = time.perf_counter() - started
    rss = peak_rss_mb()
    report = first.report
    result = {
        "benchmark": "ingest_online_retail",
        "file": args.data.name,
        "file_bytes": args.data.stat().st_size,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "source_rows": first.source_rows,
        "daily_records": first.upsert.rows_total,
        "series": report["records"]["series"],
        "progress_updates": len(updates),
        "seconds": round(seconds, 2),
        "rows_per_second": round(first.source_rows / seconds),
        "peak_rss_mb": round(rss_after_first, 1),
        "reingest_seconds": round(seconds_again, 2),
        "reingest_rows_unchanged": again.upsert.rows_unchanged,
        "peak_rss_mb_after_reingest": round(rss, 1),
        "goal_seconds": GOAL_SECONDS,
        "goal_rss_mb": GOAL_RSS_MB,
        "meets_goal": seconds < GOAL_SECONDS and rss < GOAL_RSS_MB,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
