"""The Spark path, run locally with local[2]: what it exercises, exactly.

* feature computation with ``applyInPandas`` over buckets of whole series equals the pandas run;
* ``sagemaker-feature-store-pyspark``'s ``FeatureStoreManager.load_feature_definitions_from_schema``
  (the connector's jar, in the JVM) derives the same feature types our group declares;
* ingestion without AWS: Spark stages Parquet by month, the embedded store commits each month; the
  offline store then equals the pandas materialisation and the online store holds the newest rows.

Not exercised (no AWS here): ``FeatureStoreManager.ingest_data`` into a real feature group.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from realcuts import store_item_cut

from features.engineering import build_features
from features.store.groups import sales_group
from features.store.local import LocalFeatureStore
from features.store.materialize import materialize

pytestmark = [
    pytest.mark.spark,
    pytest.mark.skipif(
        importlib.util.find_spec("pyspark") is None
        or importlib.util.find_spec("feature_store_pyspark") is None,
        reason="pyspark / sagemaker-feature-store-pyspark not installed (pip install -e '.[spark]')",
    ),
]


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    from features.store.spark import spark_session

    session = spark_session("local[2]", buckets=2)
    yield session
    session.stop()


@pytest.fixture(scope="module")
def sales() -> pd.DataFrame:
    frame = store_item_cut(stores=1, items=3, since="2016-11-01")
    frame = frame[~((frame["sku"] == "3") & (frame["date"] > "2017-10-01"))]  # a series that stops early
    frame["unit_price"] = np.where(frame["units"] > 40, 2.5, 3.0)
    return frame.reset_index(drop=True)


def test_spark_features_equal_the_pandas_run(spark: Any, sales: pd.DataFrame) -> None:
    from features.store.spark import compute_features

    got = compute_features(spark.createDataFrame(sales), "D", ["unit_price"]).toPandas()
    got = got.sort_values(["store_id", "sku", "date"], ignore_index=True)
    want = build_features(sales, sales_group("D").spec)
    assert len(got) == len(want)
    assert got.loc[got["sku"] == "3", "date"].max() == pd.Timestamp("2017-12-31")  # zeros to the tenant's end
    for column in want.columns:
        if column in ("store_id", "sku"):
            assert got[column].tolist() == want[column].tolist()
        elif column == "date":
            assert (got[column].to_numpy() == want[column].to_numpy()).all()
        else:
            np.testing.assert_array_equal(
                got[column].to_numpy(dtype="float64"), want[column].to_numpy(dtype="float64"), err_msg=column
            )


def test_connector_derives_the_declared_feature_types(spark: Any, sales: pd.DataFrame) -> None:
    from features.store.spark import compute_features, feature_definitions

    feats = compute_features(spark.createDataFrame(sales.head(400)), "D", ["unit_price"])
    derived = {d["FeatureName"]: d["FeatureType"] for d in feature_definitions(feats.drop("date"))}
    declared = sales_group("D").for_frame(build_features(sales.head(400), sales_group("D").spec)).types
    shared = set(derived) & set(declared)
    assert len(shared) == len(derived)  # every column Spark ingests is a declared feature
    assert {name: derived[name] for name in shared} == {name: declared[name] for name in shared}


def test_spark_ingestion_into_the_embedded_layout(spark: Any, sales: pd.DataFrame, tmp_path: Path) -> None:
    from features.store.spark import compute_features, ingest_local

    via_spark = LocalFeatureStore(
        tmp_path / "spark" / "offline", tmp_path / "spark" / "online.db", tmp_path / "locks"
    )
    group = sales_group("D").with_covariates(
        ["unit_price", "relative_price", "price_change", "promo_price_cut"]
    )
    feats = compute_features(spark.createDataFrame(sales), "D", ["unit_price"])
    result = ingest_local(feats, via_spark, "acme", group)
    assert result.records == len(build_features(sales, group.spec))
    assert result.partitions == 14  # November 2016 .. December 2017, one file per month

    via_pandas = LocalFeatureStore(
        tmp_path / "pd" / "offline", tmp_path / "pd" / "online.db", tmp_path / "locks"
    )
    materialize(via_pandas, "acme", sales, "D")
    got, want = via_spark.read_offline("acme", "sales-daily"), via_pandas.read_offline("acme", "sales-daily")
    pd.testing.assert_frame_equal(
        got.drop(columns="write_time"),
        want.drop(columns="write_time")[got.columns.drop("write_time")],
        check_dtype=False,
    )
    latest = via_spark.latest("acme", "sales-daily", "1", "3")
    assert latest is not None
    assert latest["event_time"] == "2017-12-31T00:00:00Z"
    assert latest["zero_run"] == 90  # no sale from 2017-10-02 to 2017-12-30


def test_records_for_the_connector_match_the_declared_records(spark: Any) -> None:
    """What ``ingest_data`` would be given (AWS itself is not reachable here): same ids and times."""
    from features.store.groups import to_records
    from features.store.spark import compute_features, sagemaker_records

    sales = store_item_cut(stores=1, items=2, since="2017-12-01")
    sales["store_id"] = "United Kingdom"
    sales["sku"] = sales["sku"].map({"1": "85123A", "2": "A#1 50%"})
    group = sales_group("D")
    got = sagemaker_records(compute_features(spark.createDataFrame(sales), "D", []), "acme", group).toPandas()
    want = to_records(build_features(sales, group.spec), group, "acme")
    got = got.sort_values(["record_id", "event_time"], ignore_index=True)
    want = want.sort_values(["record_id", "event_time"], ignore_index=True)[list(got.columns)]
    assert set(got["record_id"]) == {"acme#United%20Kingdom#85123A", "acme#United%20Kingdom#A%231%2050%25"}
    assert list(got.columns) == [n for n in group.names if n in got.columns]
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
