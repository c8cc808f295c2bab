"""How long publishing one realistic forecast set takes: 20,000 series x 28 days = 560,000 rows.

Times ``SqlForecastStore.write_set`` end to end (writing row, validation, bulk load, ANALYZE on
PostgreSQL, atomic publish) into a fresh SQLite file and into a fresh schema on the PostgreSQL
server, median of ``--repeats`` writes; then reads the whole set back page by page to check nothing
is missing, and times retention deleting the older full sets. Rows are generated before the clock
starts, so the figure is the store's, not the generator's.

    .venv/bin/python benchmarks/forecast_store_write.py [--series 20000] [--days 28]

Goals: SQLite < 5 s, PostgreSQL < 10 s. Results go to benchmarks/results/forecast_store.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inference.store.sql import SqlForecastStore  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "forecast_store.json"
GOALS_S = {"sqlite": 5.0, "postgresql": 10.0}
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def make_chunks(series: int, days: int, per_chunk: int, seed: int = 7) -> list[list[tuple[Any, ...]]]:
    """Chunks of whole series, as the batch transform hands them over (one chunk per few hundred)."""
    rng = random.Random(seed)
    first = date(2025, 1, 1)
    dates = [first + timedelta(days=d) for d in range(days)]
    chunks: list[list[tuple[Any, ...]]] = []
    chunk: list[tuple[Any, ...]] = []
    for s in range(series):
        store, sku = f"store-{s % 50:03d}", f"sku-{s:06d}"
        level = rng.uniform(0.5, 80.0)
        for d, day in enumerate(dates, start=1):
            p50 = level * (1.0 + 0.2 * ((d % 7) in (5, 6)))
            chunk.append((store, sku, day, d, p50 * 0.6, p50, p50 * 1.5, p50 * 1.04))
        if len(chunk) >= per_chunk:
            chunks.append(chunk)
            chunk = []
    if chunk:
        chunks.append(chunk)
    return chunks


def run(
    url: str, backend: str, chunks: list[list[tuple[Any, ...]]], expected_rows: int, repeats: int
) -> dict[str, Any]:
    tenant = "bench-tenant"
    with SqlForecastStore(url, keep_sets=repeats + 2) as store:
        store.write_set(tenant, 1, iter(chunks[:1]))  # warm up: connections, statement caches
        times = []
        for version in range(2, repeats + 2):
            t0 = time.perf_counter()
            published = store.write_set(tenant, version, iter(chunks), metadata={"benchmark": True})
            times.append(time.perf_counter() - t0)
            assert published.rows == expected_rows, (published.rows, expected_rows)
        t0 = time.perf_counter()
        read = sum(1 for _ in _all_rows(store, tenant))
        read_seconds = time.perf_counter() - t0
        assert read == expected_rows, (read, expected_rows)
        store.keep_sets = 1  # retention now deletes every full set but the current one
        t0 = time.perf_counter()
        deleted = store.apply_retention(tenant)
        retention_seconds = time.perf_counter() - t0
    seconds = statistics.median(times)
    return {
        "backend": backend,
        "rows": expected_rows,
        "seconds": round(seconds, 3),
        "rows_per_second": round(expected_rows / seconds),
        "all_runs_seconds": [round(t, 3) for t in times],
        "goal_seconds": GOALS_S[backend],
        "meets_goal": seconds < GOALS_S[backend],
        "full_read_1000_per_page_seconds": round(read_seconds, 3),
        "retention_delete_sets": len(deleted) - 1,  # minus the warm-up set
        "retention_seconds": round(retention_seconds, 3),
    }


def _all_rows(store: SqlForecastStore, tenant: str) -> Iterator[object]:
    cursor = None
    while True:
        page = store.query(tenant, limit=1000, cursor=cursor)
        yield from page.rows
        cursor = page.next_cursor
        if cursor is None:
            return


def _pg_schema_url(base: str) -> tuple[str, str] | None:
    """A fresh schema on the server (so the benchmark never touches other data), or None."""
    try:
        import psycopg

        schema = f"bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(base.replace("+psycopg", ""), autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
    except Exception as exc:  # any failure means "no server here"
        print(f"postgresql: skipped ({exc.__class__.__name__}: {exc})")
        return None
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}", schema


def _drop_schema(base: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(base.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--chunk-rows", type=int, default=28_000)
    parser.add_argument("--repeats", type=int, default=3, help="timed writes per backend (median reported)")
    parser.add_argument("--postgres-url", default=os.environ.get("ORDERNIMBUS_TEST_POSTGRES_URL", DEFAULT_PG))
    args = parser.parse_args()
    load = round(os.getloadavg()[0], 2)  # other work on the machine skews wall-clock figures
    chunks = make_chunks(args.series, args.days, args.chunk_rows)
    rows = args.series * args.days
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        results.append(run(f"sqlite:///{tmp}/bench.db", "sqlite", chunks, rows, args.repeats))
    print(json.dumps(results[-1]))
    pg = _pg_schema_url(args.postgres_url)
    if pg is not None:
        url, schema = pg
        try:
            results.append(run(url, "postgresql", chunks, rows, args.repeats))
        finally:
            _drop_schema(args.postgres_url, schema)
        print(json.dumps(results[-1]))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "benchmark": "forecast_store_write",
        "series": args.series,
        "days": args.days,
        "chunk_rows": args.chunk_rows,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load_average_1m": load},
        "results": results,
    }
    RESULTS.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
