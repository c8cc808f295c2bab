"""Lambda package size and cold start: build the package as deployed, then time fresh imports.

    .venv/bin/python benchmarks/lambda_cold_import.py [--runs 9] [--package DIR]

Builds the package with :mod:`serving.package` (manylinux wheels from PyPI for this Python, our
light sources) unless ``--package`` names one already built, and reports its unzipped size against
the 50 MB limit. Cold start: ``--runs`` fresh interpreters started with ``-S`` (no site-packages:
everything must come from the package directory, as on Lambda) each time
``import serving.lambda_handler`` and then one API Gateway v2 event for ``/v1/health`` through the
handler; the figures are the import time and the first invocation, median and worst. Wall time
and CPU time are both recorded: on a shared machine the wall time includes waiting for a core,
and the load average is written beside the figures. The same import is also timed in the
development environment for comparison. Writes
benchmarks/results/lambda_cold_import.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from serving.package import DEFAULT_MAX_MB, build, size_mb  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "lambda_cold_import.json"
PROBE = """
import os, sys, time, json
if sys.argv[1]:
    sys.path.insert(0, sys.argv[1])
os.environ["ORDERNIMBUS_HOME"] = sys.argv[2]
t0, c0 = time.perf_counter(), time.process_time()
import serving.lambda_handler as h
t1, c1 = time.perf_counter(), time.process_time()
event = {"version": "2.0", "routeKey": "$default", "rawPath": "/v1/health", "rawQueryString": "",
         "headers": {"host": "x"}, "isBase64Encoded": False,
         "requestContext": {"http": {"method": "GET", "path": "/v1/health", "protocol": "HTTP/1.1",
                                     "sourceIp": "1.1.1.1", "userAgent": "bench"}, "stage": "$default",
                            "requestId": "bench-1"}}
status = h.handler(event, {})["statusCode"]
t2 = time.perf_counter()
heavy = [m for m in ("pandas", "numpy", "torch", "pyarrow", "boto3") if m in sys.modules]
print(json.dumps({"import_s": t1 - t0, "import_cpu_s": c1 - c0, "first_call_s": t2 - t1,
                  "status": status, "heavy": heavy, "fastapi_from": sys.modules["fastapi"].__file__}))
"""


def probe(package: Path | None, runs: int, home: Path) -> list[dict[str, Any]]:
    out = []
    flags = ["-S"] if package is not None else []
    for _ in range(runs):
        env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERNIMBUS_")}
        env["PYTHONDONTWRITEBYTECODE"] = "1"  # /var/task is read-only: nothing compiled gets kept
        # cwd outside the checkout: ``-c`` puts the cwd on sys.path, and nothing may come from here.
        result = subprocess.run(
            [sys.executable, *flags, "-c", PROBE, str(package or ""), str(home)],
            capture_output=True, text=True, timeout=120, check=False, env=env, cwd=home.parent,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(result.stderr)
        out.append(json.loads(result.stdout.strip().splitlines()[-1]))
    return out


def summary(samples: list[dict[str, Any]]) -> dict[str, Any]:
    imports = [s["import_s"] for s in samples]
    cpu = [s["import_cpu_s"] for s in samples]
    calls = [s["first_call_s"] for s in samples]
    return {
        "runs": len(samples),
        "import_median_s": round(statistics.median(imports), 3),
        "import_min_s": round(min(imports), 3),
        "import_max_s": round(max(imports), 3),
        "import_cpu_median_s": round(statistics.median(cpu), 3),
        "first_call_median_s": round(statistics.median(calls), 3),
        "first_call_max_s": round(max(calls), 3),
        "status": sorted({s["status"] for s in samples}),
        "heavy_modules_loaded": sorted({m for s in samples for m in s["heavy"]}),
        "fastapi_from": samples[0]["fastapi_from"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--package", type=Path, default=None, help="an already built package directory")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="on-lambda-"))
    package = args.package
    build_s = None
    if package is None:
        package = work / "lambda"
        started = time.perf_counter()
        build(package, python_version=f"{sys.version_info.major}.{sys.version_info.minor}",
              platform="manylinux2014_x86_64")  # fmt: skip
        build_s = round(time.perf_counter() - started, 1)
    mb = size_mb(package)
    load = os.getloadavg()
    lambda_runs = summary(probe(package, args.runs, work / "home"))
    dev_runs = summary(probe(None, args.runs, work / "home"))
    report = {
        "benchmark": "lambda_cold_import",
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "package": {"unzipped_mb": round(mb, 1), "limit_mb": DEFAULT_MAX_MB, "build_seconds": build_s},
        "cold_start_package": lambda_runs,
        "cold_start_dev_env": dev_runs,
        "goal": "package < 50 MB unzipped; cold import < 1 s",
        "machine": {"cpus": os.cpu_count(), "load_average": load},
    }
    print(f"package {mb:.1f} MB unzipped (limit {DEFAULT_MAX_MB:.0f} MB)")
    pkg, dev = lambda_runs, dev_runs
    first = pkg["first_call_median_s"]
    print(f"cold import (package, -S): median {pkg['import_median_s']:.3f} s wall "
          f"({pkg['import_cpu_median_s']:.3f} s CPU), max {pkg['import_max_s']:.3f} s; "
          f"first call median {first:.3f} s")  # fmt: skip
    print(
        f"cold import (dev env):     median {dev['import_median_s']:.3f} s, max {dev['import_max_s']:.3f} s"
    )
    print(f"load average {load}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0 if mb < DEFAULT_MAX_MB and lambda_runs["import_median_s"] < 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
