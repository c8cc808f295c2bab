"""Accuracy rows and decisions in the store, on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from inference.store.base import ForecastStoreError
from inference.store.monitoring import AccuracyRow, Decision, MonitoringStore

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)


def _tenant() -> str:
    return f"mon-{uuid.uuid4().hex[:8]}"


def _rows(set_id: str, wape: float) -> list[AccuracyRow]:
    common = {
        "forecast_set_id": set_id,
        "model_version": 3,
        "start_date": date(2026, 2, 20),
        "end_date": date(2026, 2, 28),
    }
    return [
        AccuracyRow("total", "", "", n=18, wape=wape, bias=0.02, pinball=1.5, coverage=0.8, **common),
        AccuracyRow("store", "1", "", n=18, wape=wape, bias=0.02, pinball=1.5, coverage=0.8, **common),
        AccuracyRow("sku", "1", "A", n=9, wape=wape * 0.9, bias=-0.1, pinball=1.2, coverage=0.75, **common),
        AccuracyRow("sku", "1", "B", n=9, wape=float("nan"), bias=None, pinball=0.0, coverage=1.0, **common),
    ]


def test_accuracy_is_a_time_series_per_key_and_never_crosses_tenants(store_url: str) -> None:
    store = MonitoringStore(store_url)
    mine, other = _tenant(), _tenant()
    for day, wape in enumerate((0.10, 0.12, 0.30)):
        written = store.write_accuracy(
            mine, f"check-{day}", T0 + timedelta(days=day), _rows(f"set-{day}", wape)
        )
        assert written == 4
    store.write_accuracy(other, "check-x", T0, _rows("set-x", 0.99))

    series = store.accuracy_series(mine)
    assert [r.wape for r in series] == pytest.approx([0.10, 0.12, 0.30])
    assert [r.check_id for r in series] == ["check-0", "check-1", "check-2"]
    assert all(r.checked_at is not None and r.checked_at.tzinfo is not None for r in series)
    assert [r.wape for r in store.accuracy_series(mine, "sku", "1", "A", limit=2)] == pytest.approx(
        [0.108, 0.27]
    )
    undefined = store.accuracy_series(mine, "sku", "1", "B")
    assert all(r.wape is None for r in undefined)  # NaN (no sales) is stored as undefined

    rows = store.accuracy_of_check(mine, "check-2")
    assert [(r.level, r.store_id, r.sku) for r in rows] == [
        ("sku", "1", "A"),
        ("sku", "1", "B"),
        ("store", "1", ""),
        ("total", "", ""),
    ]
    assert store.accuracy_of_check(other, "check-2") == []
    assert [r.wape for r in store.accuracy_series(other)] == [0.99]


def test_accuracy_rows_that_do_not_fit_their_level_are_refused_and_nothing_is_written(store_url: str) -> None:
    store = MonitoringStore(store_url)
    tenant = _tenant()
    good = _rows("s", 0.1)
    bad = [
        *good[:2],
        AccuracyRow("store", "1", "A", "s", 3, date(2026, 1, 1), date(2026, 1, 2), 2, 0.1, 0.0, 1.0, 1.0),
    ]
    with pytest.raises(ForecastStoreError, match=r"accuracy row 3: a 'store' row needs store_id"):
        store.write_accuracy(tenant, "c1", T0, bad)
    with pytest.raises(ForecastStoreError, match="level must be one of"):
        store.write_accuracy(
            tenant,
            "c1",
            T0,
            [
                AccuracyRow(
                    "day",
                    "",
                    "",
                    "s",
                    3,
                    date(2026, 1, 1),  # type: ignore[arg-type]
                    date(2026, 1, 1),
                    1,
                    0.1,
                    0,
                    0,
                    0,
                )
            ],
        )
    assert store.accuracy_series(tenant) == []
    with pytest.raises(Exception, match="invalid tenant id"):
        store.write_accuracy("../x", "c1", T0, good)


def test_decisions_record_why_and_what_happened(store_url: str) -> None:
    store = MonitoringStore(store_url)
    tenant, other = _tenant(), _tenant()
    first = Decision(
        tenant,
        "c1",
        T0,
        "schedule",
        False,
        "none",
        [{"rule": "psi", "fired": False, "detail": "PSI 0.03 <= 0.10"}],
        model_version=1,
        actuals_through=date(2026, 2, 28),
        details={"psi": 0.03},
    )
    second = Decision(
        tenant,
        "c2",
        T0 + timedelta(days=1),
        "manual",
        True,
        "starting",
        [{"rule": "manual", "fired": True, "detail": "requested by a user"}],
        model_version=1,
        actuals_through=date(2026, 3, 1),
        details={"psi": 0.4},
    )
    store.record_decision(first)
    store.record_decision(second)
    store.record_decision(Decision(other, "c9", T0 + timedelta(days=5), "schedule", False, "none", []))

    store.update_decision(
        tenant,
        "c2",
        action="started",
        run_id="20260302T060000-abc123",
        details={"psi": 0.4, "run_status": "Succeeded"},
    )
    latest = store.last_decision(tenant)
    assert latest is not None
    assert latest.check_id == "c2"
    assert latest.action == "started"
    assert latest.run_id == "20260302T060000-abc123"
    assert latest.details["run_status"] == "Succeeded"
    assert latest.reasons == [{"rule": "manual", "fired": True, "detail": "requested by a user"}]
    assert latest.actuals_through == date(2026, 3, 1)
    assert latest.retrain is True
    assert [d.check_id for d in store.decisions(tenant)] == ["c2", "c1"]
    assert store.decision(other, "c1") is None
    with pytest.raises(ForecastStoreError, match="no monitoring check"):
        store.update_decision(other, "c2", action="failed")
    with pytest.raises(ForecastStoreError, match="action must be one of"):
        store.record_decision(Decision(tenant, "c3", T0, "manual", True, "maybe", []))
    with pytest.raises(ForecastStoreError, match="without NaN"):
        store.record_decision(
            Decision(tenant, "c4", T0, "manual", True, "none", [], details={"x": float("nan")})
        )
