"""``make bench``: every benchmark script, one after the other, then one summary of the key figures.

Each script in ``benchmarks/`` (not this one, not ``_private`` helpers, only files that run as a
script) runs as its own subprocess, so one benchmark's imports, threads and memory cannot bend the
next one's figures, and a failure or a timeout is recorded and the next benchmark still runs.
Cheap benchmarks go first and the ~30-minute accuracy run last. Each script writes its own JSON
to ``benchmarks/results/``; the files it wrote (by modification time) are read back and a few key
figures per benchmark go to ``benchmarks/results/summary.json`` and into a markdown table on stdout.
Entries of benchmarks not run this time are kept in the summary with the time they ran.

    .venv/bin/python benchmarks/run_all.py [--only a,b] [--skip accuracy] [--timeout 3600] [--list]

Exit status: 0 when every benchmark that ran succeeded, 1 when one failed, 2 for a bad option.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
SUMMARY = RESULTS / "summary.json"
# Quick ones first, so a failure shows early; the build and accuracy benchmarks train real models.
ORDER = (
    "ingest_online_retail",
    "features",
    "forecast_store_write",
    "lambda_cold_import",
    "forecast_publish",
    "monitor_check",
    "api_load",
    "pipeline_cache",
    "build_small_cut",
    "dev_windows",
    "accuracy",
)
# Key figures per results file (by stem): dotted paths, ``*`` for any key or list item.
FIGURES: dict[str, tuple[str, ...]] = {
    "ingest": ("seconds", "rows_per_second", "peak_rss_mb", "meets_goal"),
    "features": ("results.*.compute_seconds", "results.*.store_full_seconds", "results.*.meets_goal"),
    "forecast_store": ("results.*.seconds", "results.*.meets_goal"),
    "lambda_cold_import": (
        "package.unzipped_mb",
        "cold_start_package.import_median_s",
        "cold_start_package.first_call_median_s",
    ),
    "forecast_publish": ("transform.speedup", "transform.seconds_by_workers.*", "publish.results.*.seconds"),
    "monitor_check": ("series", "check.seconds", "check.decision.action"),
    "api_load": ("*.*.paced.rps", "*.*.paced.p95_ms", "*.*.paced.errors"),
    "pipeline_cache": ("first_seconds", "second_seconds", "second_share_of_first", "target_met"),
    "build_small_cut": ("series", "build_seconds", "ensemble.wape", "gate.passed"),
    "dev_windows": ("stl.seconds_per_series.*", "walmart_d1.*", "xgboost.*.wape", "xgboost.*.seconds"),
    "accuracy": (
        "sets.*.build_seconds",
        "sets.*.scores.ensemble.wape",
        "sets.*.improvement_vs_best_baseline",
    ),
}
# Fallback for a results file not listed above (or whose shape changed): figure-like leaves.
FIGURE_KEY = re.compile(r"(seconds|_s|_ms|per_second|rps|wape|_mb|meets_goal|errors|passed|speedup)$")
CONTEXT_KEYS = frozenset({"machine", "setup", "load_average", "access_log_sample", "steps", "timing"})
NAME_FIELDS = ("data_set", "backend", "name", "set", "route")
MAX_FIGURES = 10
TAIL_LINES = 30


@dataclass(frozen=True)
class Outcome:
    name: str
    status: str  # ok | failed | timeout
    exit_code: int | None
    seconds: float
    results: tuple[Path, ...]
    tail: tuple[str, ...]


def discover(folder: Path = HERE) -> list[str]:
    """Benchmark names in run order: ORDER first, then any newer script by name."""
    names = {
        path.stem
        for path in folder.glob("*.py")
        if path.name != Path(__file__).name
        and not path.name.startswith("_")
        and "__main__" in path.read_text(encoding="utf-8")
    }
    return [n for n in ORDER if n in names] + sorted(names - set(ORDER))


def select(names: list[str], only: str | None, skip: str | None) -> list[str]:
    """Apply --only/--skip; an unknown name is a usage error, not a silently empty run."""
    wanted = _names(only) if only else list(names)
    skipped = _names(skip) if skip else []
    unknown = [n for n in (*wanted, *skipped) if n not in names]
    if unknown:
        raise ValueError(f"unknown benchmark(s) {unknown}; known: {', '.join(names)}")
    return [n for n in names if n in wanted and n not in skipped]


def _names(text: str) -> list[str]:
    return [part.strip().removesuffix(".py") for part in text.split(",") if part.strip()]


def _snapshot(results: Path) -> dict[Path, int]:
    return {path: path.stat().st_mtime_ns for path in results.glob("*.json") if path.name != SUMMARY.name}


def run_one(script: Path, timeout: float, results: Path = RESULTS) -> Outcome:
    """Run one script, streaming its output; attribute the results files it (re)wrote."""
    name = script.stem
    before = _snapshot(results)
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    started = time.perf_counter()
    status = "ok"
    with subprocess.Popen(
        [sys.executable, "-P", str(script)],  # -P: benchmarks/features.py must not shadow the package
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,  # its own process group: a timeout stops its servers and workers too
    ) as proc:
        pump = threading.Thread(target=_pump, args=(proc.stdout, name, tail), daemon=True)
        pump.start()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            status = "timeout"
            tail.append(f"killed after {timeout:.0f}s (--timeout)")
        pump.join(timeout=30)
    if status == "ok" and proc.returncode != 0:
        status = "failed"
    written = [p for p, mtime in _snapshot(results).items() if before.get(p) != mtime]
    text = script.read_text(encoding="utf-8")
    own = tuple(sorted(p for p in written if p.name in text) or sorted(written))
    return Outcome(name, status, proc.returncode, round(time.perf_counter() - started, 1), own, tuple(tail))


def _pump(out: IO[str], name: str, tail: deque[str]) -> None:
    """Echo the child's lines prefixed with its name, keeping the last ones for the summary."""
    for line in out:
        tail.append(line.rstrip("\n"))
        print(f"  [{name}] {line}", end="", flush=True)


def _match(node: Any, parts: list[str], label: list[str]) -> list[tuple[str, Any]]:
    """Leaves of ``node`` along a dotted path; list items are labelled by their name field."""
    if not parts:
        if isinstance(node, dict | list):
            return []
        return [(".".join(label), node)]
    head, rest = parts[0], parts[1:]
    if isinstance(node, dict):
        keys = [k for k in node if k not in CONTEXT_KEYS] if head == "*" else [head] if head in node else []
        return [hit for key in keys for hit in _match(node[key], rest, [*label, str(key)])]
    if isinstance(node, list) and head == "*":
        return [
            hit for i, item in enumerate(node) for hit in _match(item, rest, [*label, _item_name(item, i)])
        ]
    return []


def _item_name(item: Any, index: int) -> str:
    if isinstance(item, dict):
        for field in NAME_FIELDS:
            if isinstance(item.get(field), str):
                return str(item[field])
    return str(index)


def _generic(node: Any, label: list[str]) -> list[tuple[str, Any]]:
    if isinstance(node, dict):
        return [
            hit for k, v in node.items() if k not in CONTEXT_KEYS for hit in _generic(v, [*label, str(k)])
        ]
    if isinstance(node, list):
        return [hit for i, item in enumerate(node) for hit in _generic(item, [*label, _item_name(item, i)])]
    key = label[-1] if label else ""
    is_figure = isinstance(node, bool | int | float) and FIGURE_KEY.search(key)
    return [(".".join(label), node)] if is_figure else []


def figures(path: Path) -> dict[str, Any]:
    """A results file's key figures (at most MAX_FIGURES); {} when the file is not JSON."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    hits = [hit for pattern in FIGURES.get(path.stem, ()) for hit in _match(doc, pattern.split("."), [])]
    hits = hits or _generic(doc, [])
    return {key: _round(value) for key, value in hits[:MAX_FIGURES]}


def _round(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value


def entry(outcome: Outcome) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for path in outcome.results:
        prefix = "" if len(outcome.results) == 1 else f"{path.stem}:"
        found |= {f"{prefix}{key}": value for key, value in figures(path).items()}
    return {
        "status": outcome.status,
        "exit_code": outcome.exit_code,
        "seconds": outcome.seconds,
        "ran_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "results": [str(p.relative_to(ROOT) if p.is_relative_to(ROOT) else p) for p in outcome.results],
        "figures": found,
        "log_tail": [] if outcome.status == "ok" else list(outcome.tail),
    }


def write_summary(entries: dict[str, dict[str, Any]], path: Path = SUMMARY) -> dict[str, Any]:
    """Merge this run's entries into summary.json (write then swap); earlier entries stay."""
    previous: dict[str, Any] = {}
    if path.exists():
        try:
            previous = json.loads(path.read_text(encoding="utf-8")).get("benchmarks", {})
        except ValueError:
            previous = {}
    summary = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "python": platform.python_version(),
            "cpus": len(os.sched_getaffinity(0)),
            "load_average": [round(x, 2) for x in os.getloadavg()],
        },
        "benchmarks": {**previous, **entries},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.name}.tmp")
    part.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    part.replace(path)
    return summary


def table(entries: dict[str, dict[str, Any]]) -> str:
    lines = ["| benchmark | status | wall s | key figures |", "|---|---|---:|---|"]
    for name, item in entries.items():
        shown = "; ".join(f"{k} = {v}" for k, v in item["figures"].items()) or "(no results written)"
        lines.append(f"| {name} | {item['status']} | {item['seconds']:.1f} | {shown} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated benchmark names (file names without .py)")
    parser.add_argument("--skip", help="comma-separated benchmark names to leave out, e.g. accuracy")
    parser.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds per benchmark before it is killed"
    )
    parser.add_argument("--list", action="store_true", help="print the benchmarks in run order and exit")
    args = parser.parse_args(argv)
    known = discover()
    try:
        chosen = select(known, args.only, args.skip)
    except ValueError as exc:
        parser.error(str(exc))
    if args.list:
        print("\n".join(known))
        return 0
    entries: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(chosen, 1):
        print(f"[{i}/{len(chosen)}] {name}", flush=True)
        outcome = run_one(HERE / f"{name}.py", args.timeout)
        entries[name] = entry(outcome)
        print(f"[{i}/{len(chosen)}] {name}: {outcome.status} in {outcome.seconds:.1f}s", flush=True)
    write_summary(entries)
    print(f"\n{table(entries)}\n\nsummary: {SUMMARY.relative_to(ROOT)}")
    return 0 if all(e["status"] == "ok" for e in entries.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
