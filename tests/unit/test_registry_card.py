"""Model card: right numbers from a synthetic version and backtest; HTML with the plots and metrics."""

from __future__ import annotations

import base64
import json
import math
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from models.registry.base import APPROVED, PENDING, AuditEntry, ModelVersion
from models.registry.card import (
    CardError,
    build_card,
    card_for,
    compare,
    metric_rows,
    render_card_html,
    series_wape,
)
from models.registry.local import LocalRegistry

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def metrics(wape: float, coverage: float, passed: bool = True) -> dict[str, Any]:
    ens = {"wape": wape, "mase": 0.8, "smape": 0.3, "pinball": 1.5, "coverage": coverage}
    naive = {"wape": 0.27, "mase": 1.0, "smape": 0.36, "pinball": 2.2, "coverage": 0.55}
    return {
        "frequency": "D",
        "horizon": 7,
        "season_length": 7,
        "quantiles": [0.1, 0.5, 0.9],
        "ensemble": ens,
        "members": {"xgboost": dict(ens, wape=wape + 0.02), "arima": dict(ens, mase=float("nan"))},
        "baselines": {"seasonal_naive": naive, "seasonal_naive_year": dict(naive, wape=0.31)},
        "gate": {
            "passed": passed,
            "metric": "wape",
            "max_ratio": 1.0,
            "best_baseline": "seasonal_naive",
            "best_baseline_value": 0.27,
            "ensemble_value": wape,
            "windows": ["2017-09-11"],
            "per_window": [
                {"cutoff": "2017-09-11", "ensemble_value": wape + 0.015, "best_baseline_value": 0.27}
            ],
        },
        "windows": [
            {
                "cutoff": "2017-09-04",
                "ensemble": {"wape": wape - 0.01},
                "members": {"xgboost": {"wape": wape}, "arima": {"wape": wape + 0.05}},
                "baselines": {"seasonal_naive": {"wape": 0.26}, "seasonal_naive_year": {"wape": 0.3}},
            },
            {"cutoff": "2017-09-11", "ensemble": {"wape": wape + 0.01}},  # an older evaluation.json
        ],
        "weights": {"xgboost": 0.7, "arima": 0.3},
        "weighting": {
            "tail_check": {  # models.evaluation.check_tails, as the weighting summary keeps it
                "p90": {
                    "own_weights": 3.49116,
                    "median_weights": 3.48055,
                    "window": "2017-09-04",
                    "kept": False,
                },
                "p10": {
                    "own_weights": 0.91867,
                    "median_weights": 0.919036,
                    "window": "2017-09-04",
                    "kept": True,
                },
            }
        },
        "details": {  # the training steps' details.json, as the evaluate step collects them
            "arima": {
                "fallbacks": {"s0|k0": "too short", "s1|k1": "constant", "s2|k2": "too short"},
                "pooled_season": {"series": 3, "of": 3},
            },
            "xgboost": {"trees": {"capacity": "small"}},
            "deepar": {
                "pooled_season": {"covariate": True},
                "returns_clipped": {"rows": 0.014, "distribution": "negative_binomial"},
            },
        },
        "data": {"start": "2013-01-01", "end": "2017-10-02", "series": 6, "rows": 10950},
    }


def version(n: int, wape: float, coverage: float, status: str = PENDING) -> ModelVersion:
    return ModelVersion(
        tenant_id="acme", group="ordernimbus-acme", version=n, status=status,  # type: ignore[arg-type]
        artifact_uri=f"s3://b/acme/{n}.tar.gz", metrics=metrics(wape, coverage),
        lineage={"pipeline_run_id": f"run-{n}", "data_fingerprint": "sha256:feed"}, gate_passed=True,
        created_at=T0 + timedelta(days=n), approved_at=T0 + timedelta(days=n) if status == APPROVED else None,
    )  # fmt: skip


def synthetic_backtest() -> pd.DataFrame:
    """6 series x 2 windows x 7 days (window cutoffs as timestamps, as the evaluate step saves them).
    Series i has p50 = actual x (1 + 0.1 i), so ensemble WAPE is
    exactly 0.1 i; series 5 never sells (WAPE undefined). The band p50 ± 2.5 holds the actual for
    series 0-2 and 5 and misses it for series 3-4 (|error| >= 3): coverage 4/6."""
    rows = []
    for window, start in (("2017-09-04", "2017-09-04"), ("2017-09-11", "2017-09-11")):
        for day, date in enumerate(pd.date_range(start, periods=7, freq="D")):
            for i in range(6):
                actual = 0.0 if i == 5 else 10.0 + day % 3
                p50 = actual * (1 + 0.1 * i)
                base = {"store_id": f"s{i}", "sku": f"k{i}", "date": date, "window": pd.Timestamp(window),
                        "actual": actual}  # fmt: skip
                rows.append(
                    base | {"model": "ensemble", "p10": p50 - 2.5, "p50": p50, "p90": p50 + 2.5, "mean": p50}
                )
                rows.append(
                    base | {"model": "xgboost", "p10": actual, "p50": actual, "p90": actual, "mean": actual}
                )
    return pd.DataFrame(rows)


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    synthetic_backtest().to_parquet(tmp_path / "backtest.parquet", index=False)
    explain = {
        "global": [
            {"feature": "lag_7", "mean_abs_shap": 3.2},
            {"feature": "dow", "mean_abs_shap": 1.1},
            {"feature": "price", "mean_abs_shap": 2.4},
        ],
        "per_series": {"s1|k1": [{"feature": "lag_7", "mean_abs_shap": 2.0}]},
    }
    (tmp_path / "explain.json").write_text(json.dumps(explain))
    return tmp_path


def audit() -> list[AuditEntry]:
    return [
        AuditEntry("acme", T0, "pipeline", "register", 3, {"status": PENDING}),
        AuditEntry("acme", T0, "pipeline", "register", 4, {"status": PENDING}),
        AuditEntry("acme", T0 + timedelta(hours=1), "alice", "approve", 3,
                   {"reason": "<script>alert(1)</script> beats naive", "overrides": []}),
    ]  # fmt: skip


def test_card_numbers(artifact: Path) -> None:
    card = build_card(version(3, 0.21, 0.79), version(2, 0.25, 0.70, APPROVED), artifact, audit=audit())
    json.dumps(card, allow_nan=False)  # strict JSON: NaN became null
    rows = {(r["kind"], r["name"]): r for r in card["metrics"]["rows"]}
    assert [r["name"] for r in card["metrics"]["rows"]] == [
        "ensemble", "arima", "xgboost", "seasonal_naive", "seasonal_naive_year",
    ]  # fmt: skip
    assert rows[("member", "xgboost")]["wape"] == pytest.approx(0.23)
    assert rows[("member", "arima")]["mase"] is None
    assert rows[("baseline", "seasonal_naive_year")]["wape"] == 0.31
    deltas = card["champion"]["deltas"]
    assert card["champion"]["version"] == 2
    assert deltas["wape"]["delta"] == pytest.approx(-0.04)
    assert deltas["wape"]["better"] is True
    assert deltas["coverage"]["better"] is True  # 0.79 is closer to the nominal 0.80 than 0.70
    assert deltas["mase"]["better"] is None  # equal
    assert card["gate"]["ratio"] == pytest.approx(0.21 / 0.27)
    assert card["gate"]["passed"] is True
    assert card["coverage"]["nominal"] == pytest.approx(0.8)
    assert card["coverage"]["reported"] == 0.79
    assert card["coverage"]["backtest"] == pytest.approx(4 / 6)
    assert card["coverage"]["by_window"] == {
        "2017-09-04": pytest.approx(4 / 6),
        "2017-09-11": pytest.approx(4 / 6),
    }
    # series 3-4 forecast 30-40 % high: their misses are all below the p10
    assert card["coverage"]["tails"]["below_p10"]["backtest"] == pytest.approx(2 / 6)
    assert card["coverage"]["tails"]["above_p90"]["backtest"] == 0.0
    assert card["coverage"]["tails"]["below_p10"]["reported"] is None  # not in this evaluation
    reps = card["backtest"]["representative"]
    assert [(r["role"], r["store_id"], r["sku"]) for r in reps] == [
        ("best", "s0", "k0"), ("median", "s2", "k2"), ("worst", "s4", "k4"),
    ]  # fmt: skip
    assert [r["wape"] for r in reps] == pytest.approx([0.0, 0.2, 0.4])
    assert len(reps[1]["points"]) == 14
    first = reps[2]["points"][0]
    assert first == {
        "date": "2017-09-04",
        "window": "2017-09-04",
        "actual": 10.0,
        "p10": pytest.approx(11.5),
        "p50": pytest.approx(14.0),
        "p90": pytest.approx(16.5),
    }
    assert card["backtest"]["series"] == 6
    assert [d["feature"] for d in card["drivers"]] == ["lag_7", "price", "dow"]
    assert [h["action"] for h in card["history"]] == ["register", "approve"]  # only version 3's
    assert card["data"]["end"] == "2017-10-02"
    assert card["lineage"]["pipeline_run_id"] == "run-3"
    assert card["missing"] == []
    # per window, the gate's baseline and the best member beside the ensemble (an approver's override)
    assert card["windows"][0] == {
        "cutoff": "2017-09-04", "wape": pytest.approx(0.20), "gated": None, "baseline": "seasonal_naive",
        "baseline_wape": 0.26, "best_member": "xgboost", "best_member_wape": 0.21,
    }  # fmt: skip
    # a member that fell back on some series says how many and why
    assert card["fallbacks"] == [{"model": "arima", "series": 3, "of": 6, "reason": "too short"}]
    # ...and one fitted on the tenant's pooled season says on how many series
    assert card["pooled_season"] == [
        {"model": "arima", "series": 3, "of": 3, "covariate": False},
        {"model": "deepar", "series": None, "of": None, "covariate": True},
    ]
    # ...and one that read net-negative (returns) days as no demand says how many
    assert card["returns_clipped"] == [{"model": "deepar", "rows": 0.014, "counts": True}]
    # ...and each tail checked one window back says whether it kept its own weights, p10 first
    assert [(t["quantile"], t["kept"]) for t in card["coverage"]["tail_check"]] == [
        ("p10", True),
        ("p90", False),
    ]
    assert card["coverage"]["tail_check"][1]["own"] == pytest.approx(3.49116)
    # the gate's own out-of-sample figure sits beside the window it pooled; the earliest has none
    assert card["windows"][1]["gated"] == pytest.approx(0.225)
    assert card["gate"]["windows"] == ["2017-09-11"]
    assert card["windows"][1]["baseline_wape"] is None
    assert card["windows"][1]["best_member"] is None


def test_series_wape_matches_a_direct_computation() -> None:
    backtest = synthetic_backtest()
    table = series_wape(backtest).set_index(["store_id", "sku"])["wape"]
    ens = backtest[backtest["model"] == "ensemble"]
    for (store, sku), group in ens.groupby(["store_id", "sku"]):
        total = np.abs(group["actual"]).sum()
        if total == 0:
            assert (store, sku) not in table.index
        else:
            assert table[(store, sku)] == pytest.approx(np.abs(group["actual"] - group["p50"]).sum() / total)


def test_card_says_what_is_missing(tmp_path: Path) -> None:
    bare = build_card(version(1, 0.2, 0.8), None, None)
    assert bare["backtest"] is None
    assert bare["drivers"] is None
    assert bare["champion"] is None
    text = " | ".join(bare["missing"])
    assert "no artifact directory" in text
    assert "no champion" in text
    assert "history not provided" in text
    html = render_card_html(bare)
    assert "no artifact directory given" in html
    assert "No backtest table was available" in html
    assert "data:image/png" not in html
    only_backtest = build_card(version(1, 0.2, 0.8), None, tmp_path)
    assert any("backtest.parquet not in the artifact" in m for m in only_backtest["missing"])
    assert any("explain.json not in the artifact" in m for m in only_backtest["missing"])


def test_malformed_artifact_files_are_named(tmp_path: Path) -> None:
    synthetic_backtest().drop(columns=["p90"]).to_parquet(tmp_path / "backtest.parquet")
    with pytest.raises(CardError, match=r"backtest\.parquet: missing column\(s\) \['p90'\]"):
        build_card(version(1, 0.2, 0.8), None, tmp_path)
    (tmp_path / "backtest.parquet").unlink()
    (tmp_path / "explain.json").write_text('{"global": [{"feature": "lag_7"}]}')
    with pytest.raises(CardError, match=r"explain\.json"):
        build_card(version(1, 0.2, 0.8), None, tmp_path)


def test_html_has_plots_metrics_and_escapes_text(artifact: Path) -> None:
    card = build_card(version(3, 0.21, 0.79), version(2, 0.25, 0.70, APPROVED), artifact, audit=audit())
    html = render_card_html(card)
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert [alt for alt, _ in images] == [
        "best series s0/k0", "median series s2/k2", "worst series s4/k4", "SHAP drivers",
    ]  # fmt: skip
    for _, payload in images:
        assert base64.b64decode(payload)[:8] == b"\x89PNG\r\n\x1a\n"
    expected = ["ordernimbus-acme · version 3", "PendingManualApproval", "seasonal_naive_year", "0.21"]
    expected += ["0.23", "-0.04", "66.7%", "79.0%", "80.0%", "sha256:feed", "2013-01-01", "passed", "n/a"]
    expected += ["0.26 (seasonal_naive)", "gate baseline", "(xgboost)"]
    expected += ["pooled over the backtest window(s) 2017-09-11", "3 of 6 series, most often: too short"]
    expected += ["3 of 3 series forecast on the", "sees the tenant's week and year, pooled over its series"]
    expected += ["the 1.4% of rows whose returns outweighed"]
    expected += ["<b>p90</b>: blends with the median's", "<b>p10</b>: blends with its own weights"]
    for text in expected:
        assert text in html, text
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; beats naive" in html
    assert "<link" not in html  # self-contained: nothing fetched from elsewhere
    assert "http" not in html.replace("http-equiv", "")


def test_html_from_a_backtest_frame_redraws_the_series(artifact: Path) -> None:
    card = build_card(version(3, 0.21, 0.79), None, None)
    backtest = synthetic_backtest()
    backtest = backtest[~backtest["store_id"].isin(["s0", "s4"])]  # best is now s1, worst s3
    html = render_card_html(card, backtest=backtest)
    assert re.findall(r'<img alt="([^"]+)"', html) == ["best series s1/k1", "median series s2/k2",
                                                       "worst series s3/k3"]  # fmt: skip


def test_card_for_and_compare_read_the_registry(tmp_path: Path, artifact: Path) -> None:
    registry = LocalRegistry(f"sqlite:///{tmp_path / 'registry.db'}")
    registry.register("acme", "s3://b/1", metrics(0.25, 0.70), {"pipeline_run_id": "r1", "code": "a"}, True)
    registry.register("acme", "s3://b/2", metrics(0.21, 0.79), {"pipeline_run_id": "r2", "code": "a"}, True)
    registry.approve("acme", 1, "alice", "first")
    card = card_for(registry, "acme", 2, artifact)
    assert card["champion"]["version"] == 1
    assert card["champion"]["deltas"]["wape"]["delta"] == pytest.approx(-0.04)
    assert [h["action"] for h in card["history"]] == ["register"]
    assert card_for(registry, "acme", 1, None)["champion"] is None  # the champion itself
    diff = compare(registry, "acme", 1, 2)
    row = next(r for r in diff["metrics"] if (r["model"], r["metric"]) == ("ensemble", "wape"))
    assert (row["a"], row["b"], row["b_better"]) == (0.25, 0.21, True)
    assert row["delta"] == pytest.approx(-0.04)
    nan_row = next(r for r in diff["metrics"] if (r["model"], r["metric"]) == ("arima", "mase"))
    assert nan_row["delta"] is None
    assert diff["lineage"]["code"]["same"] is True
    assert diff["lineage"]["pipeline_run_id"] == {"a": "r1", "b": "r2", "same": False}
    assert not any(isinstance(v, float) and math.isnan(v) for r in diff["metrics"] for v in r.values())


def test_screenshot_script_without_chromium_says_so(tmp_path: Path) -> None:
    page = tmp_path / "card.html"
    page.write_text("<html><body>card</body></html>")
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "screenshot_card.py"), str(page), str(tmp_path / "card.png"),
         "--chromium", str(tmp_path / "no-such-chromium")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "Chromium not found" in result.stderr
    assert not (tmp_path / "card.png").exists()


def test_a_model_both_member_and_baseline_has_one_row() -> None:
    """AutoETS is a baseline the blend may lean on: one row, both roles, not the same scores twice."""
    scores = {"wape": 0.3, "mase": 1.1}
    rows = metric_rows(
        {
            "ensemble": {"wape": 0.2},
            "members": {"xgboost": {"wape": 0.25}, "autoets": scores},
            "baselines": {"autoets": scores, "seasonal_naive": {"wape": 0.4}},
        }
    )
    assert [(r["name"], r["kind"]) for r in rows] == [
        ("ensemble", "ensemble"),
        ("autoets", "member, baseline"),
        ("xgboost", "member"),
        ("seasonal_naive", "baseline"),
    ]
    assert rows[1]["wape"] == 0.3
