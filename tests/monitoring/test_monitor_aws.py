"""The AWS side of monitoring against moto: StartPipelineExecution, the S3 lake, the monitor Lambda.

moto stands in for SageMaker, S3 and CloudWatch only; the check itself, the registry adapter and
the forecast store (SQLite here) are the real code. The "model" is a seasonal naive forecaster
fitted on real Store Item Demand data, registered through the SageMaker registry adapter with its
real backtest WAPE, and its forecasts are written to the store like the forecast pipeline does.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from realcuts import store_item_cut

from features.lake import SalesLake
from features.outages import Outage
from inference.store.monitoring import MonitoringStore
from inference.store.sql import SqlForecastStore
from models.metrics import wape
from models.naive import SeasonalNaive
from monitoring.lake import S3Lake
from monitoring.trigger import SageMakerTrigger, debounce
from ordernimbus.settings import RetrainPolicy, get_settings

pytestmark = pytest.mark.aws
REGION = "us-east-1"
LAKE_BUCKET, ARTIFACTS = "ordernimbus-dev-lake-123456789012-us-east-1", "ordernimbus-dev-artifacts"
LAKE_URI = f"s3://{LAKE_BUCKET}/sales"
PIPELINE = "ordernimbus-dev-build"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/ordernimbus-inference:1.0"
TRAIN_END = pd.Timestamp("2017-09-30")
QUANTILES = (0.1, 0.5, 0.9)


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
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in (LAKE_BUCKET, ARTIFACTS):
            s3.create_bucket(Bucket=bucket)
        boto3.client("sagemaker", region_name=REGION).create_pipeline(
            PipelineName=PIPELINE,
            PipelineDefinition='{"Version": "2020-12-01", "Parameters": [], "Steps": []}',
            RoleArn="arn:aws:iam::123456789012:role/ordernimbus-dev-sagemaker",
        )
        yield boto3


def _execution(boto3: Any, arn: str) -> Any:
    from moto.sagemaker.models import sagemaker_backends

    backend = sagemaker_backends["123456789012"][REGION]
    return backend.pipelines[PIPELINE].pipeline_executions[arn]


def test_trigger_starts_the_build_for_one_tenant_and_sees_only_its_runs(aws: Any) -> None:
    trigger = SageMakerTrigger(PIPELINE, LAKE_URI, REGION)
    assert trigger.builds("acme") == []
    started = trigger.start(
        "acme", reason="psi: PSI of units_index 0.41", token=str(uuid.uuid4()), horizon=14
    )
    trigger.start("globex", reason="manual", token=str(uuid.uuid4()), horizon=None)

    runs = trigger.builds("acme")
    assert [r.run_id for r in runs] == [started.run_id]
    sm = aws.client("sagemaker", region_name=REGION)
    params = sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=started.run_id)[
        "PipelineParameters"
    ]
    assert {p["Name"]: p["Value"] for p in params} == {
        "TenantId": "acme",
        "InputDataUri": f"{LAKE_URI}/acme",
        "ModelApprovalStatus": "PendingManualApproval",
        "Horizon": "14",
    }
    described = sm.describe_pipeline_execution(PipelineExecutionArn=started.run_id)
    assert described["PipelineExecutionDescription"].startswith("psi: PSI of units_index")

    now = datetime.now(UTC)
    assert debounce(runs, None, RetrainPolicy(), now + timedelta(days=2), manual=False) is None
    _execution(aws, started.run_id).pipeline_execution_status = "Executing"  # as SageMaker reports a live run
    blocked = debounce(trigger.builds("acme"), None, RetrainPolicy(), now, manual=True)
    assert blocked is not None
    assert "still running" in blocked
    assert (
        debounce(trigger.builds("globex"), None, RetrainPolicy(), now + timedelta(days=2), manual=True)
        is None
    )


def _sales() -> pd.DataFrame:
    sales = store_item_cut(stores=2, items=10, since="2016-06-01")
    sales = sales.assign(unit_price=2.0 + 0.5 * sales["sku"].astype(int))
    sales = sales[sales["date"] <= TRAIN_END + pd.Timedelta(days=14)].copy()
    later = (sales["date"] > TRAIN_END) & sales["sku"].isin(["1", "2", "3"])
    sales.loc[later, "units"] = (sales.loc[later, "units"] * 1.4).round()
    sales.loc[later, "unit_price"] *= 0.8
    return sales


def _backtest_wape(history: pd.DataFrame) -> float:
    """The naive model's WAPE on two 14-day windows before the end of training (its 'backtest')."""
    errors, totals = 0.0, 0.0
    for cutoff in (TRAIN_END - pd.Timedelta(days=28), TRAIN_END - pd.Timedelta(days=14)):
        past = history[history["date"] <= cutoff]
        pred = SeasonalNaive().fit(past, "D").predict(past, 14, QUANTILES)
        truth = history.rename(columns={"date": "target_date"})
        joined = pred.merge(truth, on=["store_id", "sku", "target_date"])
        errors += wape(joined["units"].to_numpy(), joined["p50"].to_numpy()) * joined["units"].sum()
        totals += joined["units"].sum()
    return errors / totals


def _deploy(aws: Any, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Lake object, approved version, forecast set: what the pipelines would have left behind."""
    env = {
        "ORDERNIMBUS_HOME": str(tmp / "lambda-home"),
        "ORDERNIMBUS_DATABASE_URL": f"sqlite:///{tmp / 'aurora-stand-in.db'}",
        "ORDERNIMBUS_REGISTRY_BACKEND": "sagemaker",
        "ORDERNIMBUS_PIPELINE_BACKEND": "sagemaker",
        "ORDERNIMBUS_ARTIFACTS_BUCKET": ARTIFACTS,
        "ORDERNIMBUS_AWS_REGION": REGION,
        "ORDERNIMBUS_ENVIRONMENT": "dev",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    sales = _sales()
    local = SalesLake(tmp / "lake")
    local.upsert("acme", sales, "fixture")
    aws.client("s3", region_name=REGION).upload_file(
        str(local.path("acme")), LAKE_BUCKET, "sales/acme/sales.parquet"
    )

    from models.registry.sagemaker import SageMakerRegistry

    history = sales[sales["date"] <= TRAIN_END]
    registry = SageMakerRegistry(REGION, audit_bucket=ARTIFACTS, default_image=IMAGE)
    metrics = {"ensemble": {"wape": round(_backtest_wape(history), 5)}, "horizon": 14, "frequency": "D"}
    lineage = {"data_start": "2016-06-01", "data_end": str(TRAIN_END.date()), "pipeline_run_id": "seed"}
    version = registry.register(
        "acme", f"s3://{ARTIFACTS}/models/acme/1/model.tar.gz", metrics, lineage, True
    )
    registry.approve("acme", version.version, "approver@example.com", "seasonal naive baseline")

    forecast = SeasonalNaive().fit(history, "D").predict(history, 14, QUANTILES)
    columns = ["store_id", "sku", "target_date", "horizon_day", "p10", "p50", "p90", "mean"]
    rows = [
        tuple(r)
        for r in forecast.assign(target_date=forecast["target_date"].dt.date)[columns].itertuples(False)
    ]
    with SqlForecastStore(env["ORDERNIMBUS_DATABASE_URL"]) as store:
        store.write_set("acme", version.version, [rows])
    return {
        **env,
        "ORDERNIMBUS_BUILD_PIPELINE_NAME": PIPELINE,
        "ORDERNIMBUS_LAKE_URI": LAKE_URI,
        "ORDERNIMBUS_METRIC_NAMESPACE": "OrderNimbus",
    }


def test_the_lambda_checks_every_tenant_publishes_drift_and_starts_retraining(
    aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from monitoring.lambda_handler import MonitorRunError, handler

    env = _deploy(aws, tmp_path, monkeypatch)
    event = {"environment": "dev", "tenants": ["acme", "ghost"]}  # the drift-check rule's input
    with pytest.raises(MonitorRunError) as failed:
        handler(event, None, environ=env)
    assert set(failed.value.failures) == {"ghost"}
    assert "no sales data" in failed.value.failures["ghost"]

    decision = MonitoringStore(env["ORDERNIMBUS_DATABASE_URL"]).last_decision("acme")
    assert decision is not None
    assert decision.origin == "schedule"
    fired = {r["rule"] for r in decision.reasons if r["fired"]}
    assert "psi" in fired
    assert decision.action == "started"
    assert decision.run_id is not None
    assert decision.run_id.startswith("arn:aws:sagemaker:")
    assert decision.details["accuracy"]["n"] == 20 * 14
    assert {"units_index", "unit_price"} <= set(decision.details["drift"]["drifted"])
    assert not (tmp_path / "lambda-home" / "reports").exists()  # nothing on the function's disk

    sm = aws.client("sagemaker", region_name=REGION)
    executions = sm.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]
    assert [e["PipelineExecutionArn"] for e in executions] == [decision.run_id]
    params = sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=decision.run_id)[
        "PipelineParameters"
    ]
    assert {"Name": "InputDataUri", "Value": f"{LAKE_URI}/acme"} in params

    cloudwatch = aws.client("cloudwatch", region_name=REGION)
    stats = cloudwatch.get_metric_statistics(
        Namespace="OrderNimbus",
        MetricName="DriftDetected",
        Dimensions=[{"Name": "Environment", "Value": "dev"}, {"Name": "TenantId", "Value": "acme"}],
        StartTime=datetime.now(UTC) - timedelta(hours=1),
        EndTime=datetime.now(UTC) + timedelta(hours=1),
        Period=3600,
        Statistics=["Sum"],
    )
    assert [p["Sum"] for p in stats["Datapoints"]] == [1.0]

    again = handler({"tenant": "acme"}, None, environ=env)  # an hour later: no second build
    [line] = again["checks"]
    assert line["retrain"] is True
    assert line["action"] == "debounced"
    latest = MonitoringStore(env["ORDERNIMBUS_DATABASE_URL"]).last_decision("acme")
    assert latest is not None
    assert latest.details["debounce"].startswith("cool-down")
    assert len(sm.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]) == 1
    get_settings.cache_clear()


def test_the_s3_lake_reads_what_the_local_lake_wrote(aws: Any, tmp_path: Path) -> None:
    sales = store_item_cut(stores=1, items=2, since="2017-06-01")
    local = SalesLake(tmp_path / "lake")
    local.upsert("acme", sales, "fixture")
    lost = Outage.parse("2017-08-01", "2017-08-03", "1")
    local.update_outages("acme", lambda _: [lost])
    aws.client("s3", region_name=REGION).upload_file(
        str(local.path("acme")), LAKE_BUCKET, "sales/acme/sales.parquet"
    )
    lake = S3Lake(LAKE_URI, REGION)
    assert lake.outages("acme") == local.outages("acme") == [lost]  # what the accuracy check skips
    assert lake.exists("acme")
    assert not lake.exists("globex")
    pd.testing.assert_frame_equal(lake.read("acme"), local.read("acme"))
    assert lake.frequency("acme") == local.frequency("acme") == "D"
    with pytest.raises(Exception, match="invalid tenant id"):
        lake.key("../acme")
