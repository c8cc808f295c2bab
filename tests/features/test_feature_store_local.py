"""The embedded feature store: online == offline, incremental updates, as-of joins, tenant isolation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from realcuts import store_item_cut

from features.engineering import build_features
from features.store.base import FeatureStoreError
from features.store.groups import FeatureDefinition, record_id, sales_group
from features.store.local import LocalFeatureStore
from features.store.materialize import materialize
from ordernimbus.errors import TenantError

GROUP = "sales-daily"


def open_store(root: Path) -> LocalFeatureStore:
    return LocalFeatureStore(root / "offline", root / "online.db", root / "locks")


@pytest.fixture
def sales() -> pd.DataFrame:
    frame = store_item_cut(stores=2, items=3, since="2016-06-01")
    frame["unit_price"] = np.where(frame["units"] > 30, 4.5, 5.0)  # a realistic covariate column
    return frame


def assert_online_matches_offline(store: LocalFeatureStore, tenant: str) -> None:
    offline = store.read_offline(tenant, GROUP)
    last = offline.sort_values("date").drop_duplicates("record_id", keep="last").set_index("record_id")
    online = store.online.all(GROUP, tenant).set_index("record_id")
    assert sorted(online.index) == sorted(last.index)
    for column in online.columns:
        a, b = online[column], last.loc[online.index, column]
        if pd.api.types.is_numeric_dtype(b):
            np.testing.assert_array_equal(
                a.to_numpy(dtype="float64"), b.to_numpy(dtype="float64"), err_msg=column
            )
        else:
            assert a.astype(str).tolist() == b.astype(str).tolist(), column


def test_full_then_append_then_correct_keeps_online_equal_to_last_offline_row(
    tmp_path: Path, sales: pd.DataFrame
) -> None:
    store = open_store(tmp_path)
    first = materialize(store, "acme", sales[sales["date"] <= "2017-06-30"], "D")
    assert first.mode == "full"
    assert first.records == len(sales[sales["date"] <= "2017-06-30"])
    assert_online_matches_offline(store, "acme")

    appended = materialize(store, "acme", sales[sales["date"] <= "2017-07-03"], "D")
    assert (appended.mode, appended.since, appended.records) == ("incremental", "2017-07-01", 3 * 6)
    assert appended.partitions == 1  # only July's file was rewritten
    assert_online_matches_offline(store, "acme")
    latest = store.latest("acme", GROUP, "1", "2")
    assert latest is not None
    assert latest["event_time"] == "2017-07-03T00:00:00Z"

    corrected = sales[sales["date"] <= "2017-07-03"].copy()
    day = pd.Timestamp("2017-05-10")
    corrected.loc[(corrected["date"] == day) & (corrected["sku"] == "2"), "units"] += 100
    fixed = materialize(store, "acme", corrected, "D")
    assert (fixed.mode, fixed.since, fixed.changed_periods) == ("incremental", "2017-05-10", 1)
    assert_online_matches_offline(store, "acme")

    fresh = open_store(tmp_path / "fresh")
    materialize(fresh, "acme", corrected, "D")
    got, want = store.read_offline("acme", GROUP), fresh.read_offline("acme", GROUP)
    skip = ["write_time"]
    pd.testing.assert_frame_equal(got.drop(columns=skip), want.drop(columns=skip))
    row = got[(got["sku"] == "2") & (got["store_id"] == "1") & (got["date"] == day + pd.Timedelta(days=1))]
    assert (
        row["lag_1"].item()
        == corrected.loc[
            (corrected["date"] == day) & (corrected["sku"] == "2") & (corrected["store_id"] == "1"), "units"
        ].item()
    )

    again = materialize(store, "acme", corrected, "D")
    assert again.mode == "unchanged"


def test_offline_layout_is_partitioned_by_tenant_and_month(tmp_path: Path, sales: pd.DataFrame) -> None:
    store = open_store(tmp_path)
    materialize(store, "acme", sales, "D")
    parts = sorted(p.relative_to(tmp_path / "offline") for p in (tmp_path / "offline").rglob("part.parquet"))
    assert parts[0] == Path("sales-daily/tenant_id=acme/year=2016/month=06/part.parquet")
    assert len(parts) == 19  # June 2016 .. December 2017
    june = pd.read_parquet(tmp_path / "offline" / parts[0])
    assert june["date"].min() == pd.Timestamp("2016-06-01")
    assert june["date"].max() == pd.Timestamp("2016-06-30")
    assert set(june["tenant_id"]) == {"acme"}


def test_as_of_join_takes_the_newest_record_at_or_before_each_label(
    tmp_path: Path, sales: pd.DataFrame
) -> None:
    store = open_store(tmp_path)
    history = sales[sales["date"] <= "2017-09-30"]
    materialize(store, "acme", history, "D")
    labels = pd.DataFrame(
        {
            "store_id": ["1", "2", "1", "2", "9"],
            "sku": ["1", "3", "2", "1", "1"],
            "date": pd.to_datetime(["2017-03-15", "2017-09-30", "2017-10-20", "2017-01-02", "2017-03-15"]),
            "units": [1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )
    joined = store.as_of_join("acme", GROUP, labels, columns=["units", "lag_1", "roll_mean_28", "lag_364"])
    assert list(joined["units"]) == [1.0, 2.0, 3.0, 4.0, 5.0]  # the entities' order and labels are kept
    expected = build_features(history, sales_group("D").spec).set_index(["store_id", "sku", "date"])
    for i in (0, 1, 3):
        key = (labels.at[i, "store_id"], labels.at[i, "sku"], labels.at[i, "date"])
        assert joined.at[i, "feature_time"] == labels.at[i, "date"]
        assert joined.at[i, "lag_1"] == expected.loc[key, "lag_1"]
        assert joined.at[i, "units_feature"] == expected.loc[key, "units"]
    # after the last stored day: the newest earlier record, never a later one
    assert joined.at[2, "feature_time"] == pd.Timestamp("2017-09-30")
    assert pd.isna(joined.at[4, "feature_time"])  # unknown series: no match
    stale = store.as_of_join("acme", GROUP, labels, columns=["lag_1"], tolerance=pd.Timedelta(days=7))
    assert pd.isna(stale.at[2, "feature_time"])
    assert stale.at[0, "feature_time"] == labels.at[0, "date"]
    with pytest.raises(FeatureStoreError, match="sku"):
        store.as_of_join("acme", GROUP, labels.drop(columns="sku"))


def test_tenants_never_see_each_other(tmp_path: Path, sales: pd.DataFrame) -> None:
    store = open_store(tmp_path)
    materialize(store, "acme", sales[sales["date"] <= "2017-03-31"], "D")
    other = sales[sales["date"] <= "2017-02-28"].assign(units=lambda f: f["units"] * 10)
    materialize(store, "globex", other, "D")
    a, b = store.latest("acme", GROUP, "1", "1"), store.latest("globex", GROUP, "1", "1")
    assert a is not None
    assert b is not None
    assert (a["tenant_id"], a["event_time"][:10]) == ("acme", "2017-03-31")
    assert (b["tenant_id"], b["event_time"][:10]) == ("globex", "2017-02-28")
    assert a["record_id"] == record_id("acme", "1", "1") != b["record_id"]
    assert set(store.read_offline("globex", GROUP)["tenant_id"]) == {"globex"}
    assert all(r["tenant_id"] == "acme" for r in store.find_latest("acme", "1"))
    assert store.online.get(GROUP, "globex", a["record_id"]) is None  # another tenant's id finds nothing
    for bad in ("../acme", "ACME", "a"):
        with pytest.raises(TenantError):
            store.read_offline(bad, GROUP)
        with pytest.raises(TenantError):
            store.latest(bad, GROUP, "1", "1")


def test_record_ids_escape_separators() -> None:
    assert record_id("acme", "a#b", "50%") == "acme#a%23b#50%25"
    assert record_id("acme", "a", "b#c") != record_id("acme", "a#b", "c")


def test_a_feature_never_changes_type(tmp_path: Path, sales: pd.DataFrame) -> None:
    store = open_store(tmp_path)
    materialize(store, "acme", sales[sales["date"] <= "2016-08-01"], "D")
    group = sales_group("D")
    retyped = type(group)(
        group.name,
        group.record_identifier,
        group.event_time,
        tuple(
            FeatureDefinition(f.name, "String", f.role) if f.name == "lag_1" else f for f in group.features
        ),
        group.spec,
    )
    with pytest.raises(FeatureStoreError, match="lag_1"):
        store.ensure_group("acme", retyped)
    assert "unit_price" in store.declared("acme", GROUP)  # the tenant's covariates were appended


def test_a_new_feature_spec_recomputes_everything(tmp_path: Path, sales: pd.DataFrame) -> None:
    store = open_store(tmp_path)
    history = sales[sales["date"] <= "2016-09-30"]
    materialize(store, "acme", history, "D")
    state = store.read_state("acme", GROUP)
    assert state is not None
    assert state["spec_version"] == sales_group("D").spec.version
    store.write_state("acme", GROUP, {**state, "spec_version": "older-code"})
    again = materialize(store, "acme", history, "D")
    assert (again.mode, again.records) == ("full", len(history))
