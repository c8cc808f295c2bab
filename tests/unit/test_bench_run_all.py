"""benchmarks/run_all.py (``make bench``): real child scripts that succeed, fail and hang."""

from __future__ import annotations

import importlib.util
import json
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run_all", ROOT / "benchmarks" / "run_all.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


run_all = _load()


def _script(folder: Path, name: str, body: str) -> Path:
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def test_discovery_keeps_the_order_skips_itself_helpers_and_modules(tmp_path: Path) -> None:
    main = 'if __name__ == "__main__":\n    pass\n'
    for name in ("accuracy", "zeta_new", "features", "_helpers", "run_all"):
        _script(tmp_path, name, main)
    _script(tmp_path, "constants", "X = 1\n")  # imported by others, not a script
    assert run_all.discover(tmp_path) == ["features", "accuracy", "zeta_new"]


def test_real_benchmark_names_and_selection() -> None:
    names = run_all.discover()
    assert names[-1] == "accuracy"  # the half-hour one last
    assert "run_all" not in names
    assert run_all.select(names, "features,ingest_online_retail.py", None) == [
        "ingest_online_retail",
        "features",
    ]
    assert "accuracy" not in run_all.select(names, None, "accuracy")
    with pytest.raises(ValueError, match=r"unknown benchmark\(s\) \['nope'\]"):
        run_all.select(names, "nope", None)


def test_success_failure_and_timeout_are_recorded_with_their_results(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    (results / "older.json").write_text("{}")
    good = _script(
        tmp_path,
        "good",
        f"""
        import json
        print("working", flush=True)
        json.dump({{"seconds": 1.5, "rows_per_second": 1000, "machine": {{"cpus": 2}}}},
                  open({str(results / "good.json")!r}, "w"))
        """,
    )
    bad = _script(tmp_path, "bad", "print('about to fail')\nraise SystemExit('broken input')\n")
    hung = _script(tmp_path, "hung", "import time\nprint('sleeping', flush=True)\ntime.sleep(60)\n")

    ok = run_all.run_one(good, timeout=120, results=results)
    assert (ok.status, ok.exit_code) == ("ok", 0)
    assert [p.name for p in ok.results] == ["good.json"]  # older.json was not rewritten
    assert "working" in ok.tail
    row = run_all.entry(ok)
    assert row["figures"] == {"seconds": 1.5, "rows_per_second": 1000}  # machine context left out
    assert row["log_tail"] == []

    failed = run_all.run_one(bad, timeout=120, results=results)
    assert (failed.status, failed.exit_code, failed.results) == ("failed", 1, ())
    assert "broken input" in failed.tail
    assert run_all.entry(failed)["log_tail"][-1] == "broken input"

    stopped = run_all.run_one(hung, timeout=5, results=results)
    assert stopped.status == "timeout"
    assert stopped.seconds < 30  # killed, not waited for
    assert stopped.tail[-1] == "killed after 5s (--timeout)"


def test_key_figures_follow_the_declared_paths_and_fall_back(tmp_path: Path) -> None:
    store = tmp_path / "forecast_store.json"
    store.write_text(
        json.dumps(
            {
                "machine": {"load_average_1m": 5.0},
                "results": [
                    {"backend": "sqlite", "seconds": 4.44219, "meets_goal": True},
                    {"backend": "postgresql", "seconds": 7.7, "meets_goal": True},
                ],
            }
        )
    )
    assert run_all.figures(store) == {
        "results.sqlite.seconds": 4.4422,
        "results.postgresql.seconds": 7.7,
        "results.sqlite.meets_goal": True,
        "results.postgresql.meets_goal": True,
    }
    unknown = tmp_path / "brand_new.json"
    unknown.write_text(json.dumps({"setup": {"seconds": 9}, "p95_ms": 12.5, "note": "text", "wape": 0.1}))
    assert run_all.figures(unknown) == {"p95_ms": 12.5, "wape": 0.1}
    broken = tmp_path / "ingest.json"
    broken.write_text("{not json")
    assert run_all.figures(broken) == {}


def test_summary_merges_with_earlier_entries_and_the_table_shows_this_run(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    first = {"features": {"status": "ok", "seconds": 3.0, "figures": {"x": 1}}}
    run_all.write_summary(first, path)
    second = {"accuracy": {"status": "failed", "seconds": 9.0, "figures": {}}}
    merged = run_all.write_summary(second, path)
    assert set(merged["benchmarks"]) == {"features", "accuracy"}
    assert json.loads(path.read_text()) == merged
    assert not list(tmp_path.glob(".*.tmp"))
    table = run_all.table(second)
    assert "| accuracy | failed | 9.0 | (no results written) |" in table
    assert "features" not in table


def test_a_benchmark_named_like_a_package_does_not_shadow_it(tmp_path: Path) -> None:
    """benchmarks/features.py sits next to scripts that import the ``features`` package."""
    _script(tmp_path, "features", 'if __name__ == "__main__":\n    pass\n')
    user = _script(tmp_path, "user", "from features.lake import SalesLake\nprint(SalesLake.__module__)\n")
    outcome = run_all.run_one(user, timeout=120, results=tmp_path)
    assert outcome.status == "ok", outcome.tail
    assert outcome.tail[-1] == "features.lake"
