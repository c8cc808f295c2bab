"""The SageMaker Feature Store adapter: moto where moto implements it, botocore's Stubber where it does not.

moto 5.2.5 implements CreateFeatureGroup and DescribeFeatureGroup (and S3), not the
``sagemaker-featurestore-runtime`` API: PutRecord/GetRecord are checked with botocore's Stubber,
which validates each request against the service model. Nothing here talks to AWS.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from realcuts import store_item_cut

from features.engineering import build_features
from features.store.aws_shapes import check_request
from features.store.base import FeatureStoreError
from features.store.groups import sales_group, to_records
from features.store.sagemaker import SageMakerFeatureStore, feature_group_name

pytestmark = pytest.mark.aws
REGION = "us-east-1"
BUCKET = "ordernimbus-test-features"
ROLE = "arn:aws:iam::123456789012:role/ordernimbus-sagemaker"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    import boto3
    from moto import mock_aws

    with mock_aws():
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
        yield boto3


@pytest.fixture
def features() -> pd.DataFrame:
    sales = store_item_cut(stores=1, items=2, since="2017-11-01")
    sales["unit_price"] = 3.5
    return build_features(sales, sales_group("D").spec)


def store_with(boto3: Any, runtime: Any = None) -> SageMakerFeatureStore:
    clients = {
        "sagemaker": boto3.client("sagemaker", region_name=REGION),
        "s3": boto3.client("s3", region_name=REGION),
        "sagemaker-featurestore-runtime": runtime
        or boto3.client("sagemaker-featurestore-runtime", region_name=REGION),
    }
    return SageMakerFeatureStore(REGION, ROLE, f"s3://{BUCKET}/feature-store", clients=clients)


def test_create_request_matches_the_sagemaker_api_shape(aws: Any, features: pd.DataFrame) -> None:
    store = store_with(aws)
    group = sales_group("D").for_frame(features)
    request = store.create_request("acme", group)  # runs botocore's ParamValidator + max/pattern/enum checks
    assert request["FeatureGroupName"] == "ordernimbus-acme-sales-daily"
    assert request["RecordIdentifierFeatureName"] == "record_id"
    assert request["EventTimeFeatureName"] == "event_time"
    assert request["OfflineStoreConfig"]["DataCatalogConfig"]["TableName"] == "ordernimbus_acme_sales_daily"
    types = {d["FeatureName"]: d["FeatureType"] for d in request["FeatureDefinitions"]}
    assert types["event_time"] == "String"
    assert types["lag_364"] == "Fractional"
    assert types["is_holiday"] == "Integral"
    assert {"unit_price", "relative_price", "promo_price_cut"} <= types.keys()
    assert set(types) == set(to_records(features, group, "acme").columns) - {"date"}


def test_the_shape_check_catches_what_sagemaker_would_refuse() -> None:
    good = {
        "FeatureGroupName": "ordernimbus-acme-sales-daily",
        "RecordIdentifierFeatureName": "record_id",
        "EventTimeFeatureName": "event_time",
        "FeatureDefinitions": [{"FeatureName": "x", "FeatureType": "String"}],
    }
    check_request("sagemaker", "CreateFeatureGroup", good)
    bad_cases = {
        "FeatureName": {
            **good,
            "FeatureDefinitions": [{"FeatureName": "price.eur", "FeatureType": "String"}],
        },
        "FeatureType": {**good, "FeatureDefinitions": [{"FeatureName": "x", "FeatureType": "Decimal"}]},
        "FeatureGroupName": {**good, "FeatureGroupName": "g" * 65},
        "RecordIdentifierFeatureName": {k: v for k, v in good.items() if k != "RecordIdentifierFeatureName"},
        "FeatureDefinitions": {
            **good,
            "FeatureDefinitions": [{"FeatureName": f"f{i}", "FeatureType": "String"} for i in range(2501)],
        },
    }
    for member, request in bad_cases.items():
        with pytest.raises(FeatureStoreError, match=member):
            check_request("sagemaker", "CreateFeatureGroup", request)


def test_ensure_group_creates_the_group_in_moto(aws: Any, features: pd.DataFrame) -> None:
    store = store_with(aws)
    group = sales_group("D").for_frame(features)
    store.ensure_group("acme", group)
    store.ensure_group("acme", group)  # idempotent: the group exists, nothing to append
    described = aws.client("sagemaker", region_name=REGION).describe_feature_group(
        FeatureGroupName="ordernimbus-acme-sales-daily"
    )
    assert [d["FeatureName"] for d in described["FeatureDefinitions"]] == group.names
    assert described["RoleArn"] == ROLE
    assert described["OfflineStoreConfig"]["S3StorageConfig"]["S3Uri"] == f"s3://{BUCKET}/feature-store"
    assert store.describe("globex", "sales-daily") is None


def test_put_and_get_record_requests(aws: Any, features: pd.DataFrame) -> None:
    from botocore.stub import Stubber

    runtime = aws.client("sagemaker-featurestore-runtime", region_name=REGION)
    store = store_with(aws, runtime)
    group = sales_group("D").for_frame(features)
    store.ensure_group("acme", group)
    last = features.tail(1)
    record = to_records(last, group, "acme").iloc[0]
    expected_put = store.put_request("acme", group, record.to_dict())
    values = {v["FeatureName"]: v["ValueAsString"] for v in expected_put["Record"]}
    assert values["record_id"] == "acme#1#2"
    assert values["event_time"] == "2017-12-31T00:00:00Z"
    assert float(values["lag_7"]) == last["lag_7"].item()
    assert values["day_of_week"] == "6"
    assert "lag_364" not in values  # NaN features are left out of the record, as Feature Store expects
    with Stubber(runtime) as stub:
        stub.add_response("put_record", {}, expected_put)  # Stubber validates the params against the model
        stub.add_response(
            "get_record",
            {"Record": expected_put["Record"]},
            {"FeatureGroupName": "ordernimbus-acme-sales-daily", "RecordIdentifierValueAsString": "acme#1#2"},
        )
        written = store.write("acme", group, last)
        got = store.latest("acme", "sales-daily", "1", "2")
        stub.assert_no_pending_responses()
    assert written.records == 1
    assert got is not None
    assert got["lag_7"] == last["lag_7"].item()
    assert got["day_of_week"] == 6
    assert got["lag_364"] is None
    with Stubber(runtime) as stub:  # a record of another tenant under this id is refused, never shown
        foreign = [
            {**v, "ValueAsString": "globex"} if v["FeatureName"] == "tenant_id" else v
            for v in expected_put["Record"]
        ]
        stub.add_response("get_record", {"Record": foreign})
        with pytest.raises(FeatureStoreError, match="does not belong"):
            store.latest("acme", "sales-daily", "1", "2")


def test_offline_store_reads_sagemaker_layout_newest_version_and_as_of(
    aws: Any, features: pd.DataFrame
) -> None:
    features = features[features["date"] >= "2017-12-15"].reset_index(drop=True)
    store = store_with(aws)
    group = sales_group("D").for_frame(features)
    store.ensure_group("acme", group)
    described = aws.client("sagemaker", region_name=REGION).describe_feature_group(
        FeatureGroupName=feature_group_name("acme", "sales-daily")
    )
    resolved = described["OfflineStoreConfig"]["S3StorageConfig"]["ResolvedOutputS3Uri"]
    prefix = resolved.split(f"s3://{BUCKET}/", 1)[1]
    records = to_records(features, group, "acme").drop(columns="date")
    records["write_time"] = pd.Timestamp("2018-01-01", tz="UTC")
    records["api_invocation_time"] = pd.Timestamp("2018-01-01", tz="UTC")
    records["is_deleted"] = False
    fix = records[records["event_time"] == "2017-12-20T00:00:00Z"].assign(
        lag_1=-1.0,
        write_time=pd.Timestamp("2018-01-02", tz="UTC"),
        api_invocation_time=pd.Timestamp("2018-01-02", tz="UTC"),
    )
    s3 = aws.client("s3", region_name=REGION)
    for (event, version), rows in pd.concat([records, fix]).groupby(["event_time", "write_time"]):
        d = pd.Timestamp(event)  # SageMaker's layout: year=/month=/day=/hour= of the event time
        key = f"{prefix}/year={d.year}/month={d.month:02d}/day={d.day:02d}/hour=00/{version.value}.parquet"
        buffer = io.BytesIO()
        rows.to_parquet(buffer, index=False)
        s3.put_object(Bucket=BUCKET, Key=key, Body=buffer.getvalue())
    offline = store.read_offline("acme", "sales-daily")
    assert len(offline) == len(features)  # two versions of 2017-12-20 became one
    assert (offline.loc[offline["date"] == "2017-12-20", "lag_1"] == -1.0).all()
    december = store.read_offline("acme", "sales-daily", start=pd.Timestamp("2017-12-25"))
    assert december["date"].min() == pd.Timestamp("2017-12-25")
    labels = pd.DataFrame(
        {"store_id": ["1", "1"], "sku": ["1", "2"], "date": pd.to_datetime(["2017-12-21", "2018-01-03"])}
    )
    joined = store.as_of_join("acme", "sales-daily", labels, columns=["lag_1", "lag_7"])
    assert list(joined["feature_time"]) == [pd.Timestamp("2017-12-21"), pd.Timestamp("2017-12-31")]
    truth = features.set_index(["sku", "date"])
    assert joined.at[0, "lag_7"] == truth.loc[("1", pd.Timestamp("2017-12-21")), "lag_7"]
    assert np.isclose(joined.at[1, "lag_1"], truth.loc[("2", pd.Timestamp("2017-12-31")), "lag_1"])


def test_state_round_trips_through_s3_and_names_fit(aws: Any) -> None:
    store = store_with(aws)
    assert store.read_state("acme", "sales-daily") is None
    store.write_state("acme", "sales-daily", {"spec_version": "abc", "digests": {"2017-01-01": "00ff"}})
    assert store.read_state("acme", "sales-daily") == {
        "spec_version": "abc",
        "digests": {"2017-01-01": "00ff"},
    }
    assert store.read_state("globex", "sales-daily") is None
    long = feature_group_name("t" + "x" * 62, "sales-weekly")
    assert len(long) <= 64
    check_request("sagemaker", "DescribeFeatureGroup", {"FeatureGroupName": long})
    with pytest.raises(FeatureStoreError, match="--store"):
        store.find_latest("acme", "1")
