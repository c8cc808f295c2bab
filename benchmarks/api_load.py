"""Load benchmark of the forecast API: uvicorn with 2 workers on loopback, wrk in a separate process.

    .venv/bin/python benchmarks/api_load.py [--seconds 20] [--rate 500] [--skip-postgres]

Data: the Store Item Demand dev file (400 real series, stores 1-8 x items 1-50). The forecast set
is a seasonal-naive 28-day forecast of each series (p10/p50/p90 from the same weekday of the four
previous weeks), and sales_history holds each series' last 365 days, so both routes read what a
real tenant's store holds. Each request asks for a different series (round robin over all 400):

- ``sku``: ``GET /v1/forecasts?store_id=S&sku=I&limit=28`` (one SKU's forecast);
- ``series``: ``GET /v1/forecasts/series?store_id=S&sku=I&history_days=90`` (forecast + history).

For each backend (the SQLite file, then the PostgreSQL server) and route, wrk runs twice:
*paced* near ``--rate`` requests/s (each connection waits a fixed delay between requests, set
from a short calibration run; wrk has no open-loop mode, so the achieved rate is reported, not
assumed) and *max* (no delay) for the
saturation throughput. Latencies are wrk's (p50/p95/p99 from its full histogram). The rate limits
are raised for the run (one key at 500 RPS is far above the default budget of 6,000 per minute).
JSON access logs are on, written to a file, as in production. Writes benchmarks/results/api_load.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inference.store.engine import create_engine_for  # noqa: E402
from inference.store.history import upsert_history  # noqa: E402
from inference.store.sql import SqlForecastStore  # noqa: E402
from serving.auth import ApiKeyStore  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "store_item_demand_dev_stores_1_8.parquet"
RESULTS = ROOT / "benchmarks" / "results" / "api_load.json"
PG_URL = os.environ.get("ORDERNIMBUS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TENANT = "bench-retail"
HORIZON = 28
CONNECTIONS = 10
THREADS = 2
LUA = """
local paths = {%(paths)s}
local key = "%(key)s"
local delay_ms = %(delay)d
local counter = 0
function setup(thread) thread:set("offset", math.random(1, #paths)) end
function request()
  counter = counter + 1
  local p = paths[((counter + offset) %% #paths) + 1]
  return wrk.format("GET", p, {["X-API-Key"] = key})
end
if delay_ms > 0 then function delay() return delay_ms end end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%%d,"duration_us":%%d,"connect":%%d,"read":%%d,"write":%%d,"status":%%d,"timeout":%%d,' ..
    '"p50_us":%%d,"p95_us":%%d,"p99_us":%%d,"max_us":%%d,"mean_us":%%.1f}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max, latency.mean))
end
"""


def seed(db_url: str) -> tuple[str, list[tuple[str, str]]]:
    """Write the forecast set and sales history of 400 real series; return a viewer key and the series."""
    raw = pd.read_parquet(DATA)
    raw["date"] = pd.to_datetime(raw["date"])
    raw["store_id"], raw["sku"] = raw["store_id"].astype(str), raw["item_id"].astype(str)
    origin = raw["date"].max()
    wide = raw.pivot_table(index="date", columns=["store_id", "sku"], values="units").sort_index()
    rows = []
    for h in range(1, HORIZON + 1):
        target = origin + pd.Timedelta(days=h)
        lags = [target - pd.Timedelta(weeks=w) for w in range(1, 5)]
        lags = [d for d in lags if d <= origin] or [origin - pd.Timedelta(days=6)]
        past = wide.loc[lags].to_numpy(dtype=float)
        p10, p50, p90 = np.quantile(past, [0.1, 0.5, 0.9], axis=0)
        mean = past.mean(axis=0)
        for j, (store, sku) in enumerate(wide.columns):
            rows.append((store, sku, target.date(), h, p10[j], p50[j], p90[j], mean[j]))
    engine = create_engine_for(db_url)
    store = SqlForecastStore(db_url, engine=engine)
    store.write_set(TENANT, 1, [rows], {"benchmark": "api_load"})
    recent = raw[raw["date"] > origin - pd.Timedelta(days=365)]
    upsert_history(
        engine, TENANT,
        [[(r.store_id, r.sku, r.date.date(), float(r.units), None) for r in recent.itertuples()]],
    )  # fmt: skip
    _, key = ApiKeyStore(db_url, engine=engine).create(TENANT, "viewer", "load benchmark")
    engine.dispose()
    return key, [(str(s), str(k)) for s, k in wide.columns]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(home: Path, db_url: str, port: int) -> subprocess.Popen[bytes]:
    log_config = home / "logging.json"
    log_config.write_text(json.dumps({
        "version": 1, "disable_existing_loggers": False,
        "handlers": {"access": {"class": "logging.FileHandler", "filename": str(home / "access.log")}},
        "loggers": {"ordernimbus.access": {"handlers": ["access"], "level": "INFO", "propagate": False}},
    }))  # fmt: skip
    env = {
        **os.environ, "ORDERNIMBUS_HOME": str(home), "ORDERNIMBUS_DATABASE_URL": db_url,
        "ORDERNIMBUS_API_RATE_LIMIT_PER_MINUTE": "100000000",
        "ORDERNIMBUS_API_RATE_LIMIT_PER_TENANT_PER_MINUTE": "100000000",
    }  # fmt: skip
    command = [
        sys.executable, "-m", "uvicorn", "serving.app:app", "--host", "127.0.0.1", "--port", str(port),
        "--workers", "2", "--no-access-log", "--log-level", "warning", "--log-config", str(log_config),
    ]  # fmt: skip
    proc = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/ready", timeout=2) as response:
                if response.status == 200:
                    return proc
        except OSError:
            time.sleep(0.3)
    stop_server(proc)
    raise RuntimeError("uvicorn did not become ready within 60 s")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def server_cpu_seconds(master: int) -> float:
    """User + system CPU of the uvicorn master and its worker processes (from /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(stat.parent.name), int(fields[1])
        if master in (pid, ppid):
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def run_wrk(  # noqa: PLR0917 - one wrk run, spelled out
    port: int, paths: list[str], key: str, seconds: int, delay_ms: int, work: Path, master: int
) -> dict[str, Any]:
    script = work / f"load-{delay_ms}.lua"
    script.write_text(LUA % {"paths": ",".join(json.dumps(p) for p in paths), "key": key, "delay": delay_ms})
    cpu_before = server_cpu_seconds(master)
    out = subprocess.run(
        ["wrk", "-t", str(THREADS), "-c", str(CONNECTIONS), "-d", f"{seconds}s", "--timeout", "5s",
         "-s", str(script), f"http://127.0.0.1:{port}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    server_cpu = server_cpu_seconds(master) - cpu_before
    raw = json.loads(out.stdout.strip().splitlines()[-1])
    kinds = ("connect", "read", "write", "status", "timeout")
    errors = sum(raw[k] for k in kinds)
    return {
        "requests": raw["requests"],
        "rps": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
        "p50_ms": raw["p50_us"] / 1000, "p95_ms": raw["p95_us"] / 1000, "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000, "mean_ms": round(raw["mean_us"] / 1000, 3),
        "errors": errors, "error_breakdown": {k: raw[k] for k in kinds},
        "connections": CONNECTIONS, "delay_ms_per_connection": delay_ms,
        # Contention-free capacity figure: server CPU per request (a shared machine inflates
        # latencies, much less the CPU each request needs); 2 idle cores serve ~2000/this RPS.
        "server_cpu_ms_per_request": round(1000 * server_cpu / max(1, raw["requests"]), 3),
        "load_average_after": os.getloadavg()[0],
    }  # fmt: skip


def check_route(port: int, path: str, key: str) -> None:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"X-API-Key": key})
    with urllib.request.urlopen(request, timeout=5) as response:
        body = json.loads(response.read())
    items = body.get("items", body.get("forecast"))
    if not items or len(items) != HORIZON:
        raise RuntimeError(f"{path} returned {len(items or [])} forecast days, expected {HORIZON}")


def bench_backend(name: str, db_url: str, seconds: int, rate: int, work: Path) -> dict[str, Any]:
    home = work / name
    home.mkdir()
    started = time.perf_counter()
    key, series = seed(db_url)
    seed_s = time.perf_counter() - started
    routes = {
        "sku": [f"/v1/forecasts?store_id={s}&sku={k}&limit={HORIZON}" for s, k in series],
        "series": [f"/v1/forecasts/series?store_id={s}&sku={k}&history_days=90" for s, k in series],
    }
    port = free_port()
    proc = start_server(home, db_url, port)
    results: dict[str, Any] = {"seed_seconds": round(seed_s, 1), "series": len(series)}
    try:
        for route, paths in routes.items():
            check_route(port, paths[0], key)
            run_wrk(port, paths, key, 3, 0, work, proc.pid)  # warm-up: connections, key cache, page cache
            # Paced: CONNECTIONS / (delay + latency) ~ rate. A 3 s calibration run at the naive
            # delay measures the latency term, and the real run subtracts it from the delay.
            delay = max(1, round(1000 * CONNECTIONS / rate))
            calibration = run_wrk(port, paths, key, 3, delay, work, proc.pid)
            latency_ms = max(0.0, 1000 * CONNECTIONS / max(calibration["rps"], 1.0) - delay)
            delay = max(1, round(1000 * CONNECTIONS / rate - latency_ms))
            paced = run_wrk(port, paths, key, seconds, delay, work, proc.pid)
            peak = run_wrk(port, paths, key, seconds, 0, work, proc.pid)
            results[route] = {"paced": paced, "max": peak}
            print(
                f"{name:10} {route:6} paced {paced['rps']:7.1f} rps  p50 {paced['p50_ms']:6.2f}  "
                f"p95 {paced['p95_ms']:6.2f}  p99 {paced['p99_ms']:6.2f} ms  errors {paced['errors']}  |  "
                f"max {peak['rps']:7.1f} rps  p95 {peak['p95_ms']:6.2f} ms  errors {peak['errors']}  |  "
                f"server CPU {peak['server_cpu_ms_per_request']:.2f} ms/request"
            )
    finally:
        stop_server(proc)
    access = (home / "access.log").read_text().splitlines()
    results["access_log_lines"] = len(access)
    results["access_log_sample"] = json.loads(access[-1]) if access else None
    return results


def postgres_schema() -> tuple[str, Any]:
    import psycopg

    schema = f"bench_api_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(PG_URL.replace("+psycopg", ""), autocommit=True, connect_timeout=3)
    admin.execute(f"CREATE SCHEMA {schema}")
    return f"{PG_URL}?options=-csearch_path%3D{schema}", (admin, schema)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("error: wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="on-api-load-"))
    report: dict[str, Any] = {
        "benchmark": "api_load", "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_at_start": os.getloadavg()},
        "setup": {"uvicorn_workers": 2, "wrk_threads": THREADS, "wrk_connections": CONNECTIONS,
                  "seconds_per_run": args.seconds, "target_rate": args.rate, "data": DATA.name},
        "goal": "p95 < 25 ms at 500 RPS, zero errors",
    }  # fmt: skip
    try:
        report["sqlite"] = bench_backend(
            "sqlite", f"sqlite:///{work / 'sqlite' / 'api.db'}", args.seconds, args.rate, work
        )
        if not args.skip_postgres:
            url, (admin, schema) = postgres_schema()
            try:
                report["postgresql"] = bench_backend("postgresql", url, args.seconds, args.rate, work)
            finally:
                admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
                admin.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report["machine"]["load_average_at_end"] = os.getloadavg()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
