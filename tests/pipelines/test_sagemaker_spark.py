"""Large tenants: the features step as a PySparkProcessor, and the Spark job it runs (local[2]).

Exercised here: the compiled step (image, spark-submit command, app and py-files under the code
archive's content key, the same inputs/outputs/edges as the pandas step), the choice by the tenant's
row count, and the job itself on a real cut with a local Spark session, whose rows equal the pandas
feature computation. Not exercised: the SageMaker Spark image itself and Feature Store ingestion
(no AWS here; ``--feature-group-arn`` calls the connector's ``ingest_data``).
"""

from __future__ import annotations

import importlib.util
import io
import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from realcuts import store_item_cut
from typer.testing import CliRunner

from features.engineering import build_features
from features.lake import SalesLake
from features.store.groups import sales_group
from ordernimbus.cli import app
from ordernimbus.settings import Settings
from pipelines.contract import parse
from pipelines.definition import build_pipeline
from pipelines.local import runner_view
from pipelines.sagemaker_code import build_bundle
from pipelines.sagemaker_spark import PY_FILES, SPARK_APP, run_job, spark_files
from pipelines.sagemaker_view import compiled_view
from pipelines.steps import validate

runner = CliRunner()
HAS_SPARK = importlib.util.find_spec("pyspark") is not None and importlib.util.find_spec(
    "feature_store_pyspark"
)


def test_large_tenant_compiles_features_as_pyspark_with_the_same_dag(home: Settings) -> None:
    SalesLake(home.lake_dir).upsert("big-co", store_item_cut(stores=1, items=2, since="2017-01-01"), "cut")
    result = runner.invoke(app, ["pipeline", "definition", "--placeholders", "--region", "eu-west-1",
                                 "--tenant", "big-co", "--spark-min-rows", "500"])  # fmt: skip
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    features = next(s for s in document["Steps"] if s["Name"] == "Features")["Arguments"]
    entry = features["AppSpecification"]["ContainerEntrypoint"]
    assert entry[0] == "smspark-submit"
    assert entry[-1] == f"/opt/ml/processing/input/code/{SPARK_APP}"
    folder = next(i for i in features["ProcessingInputs"] if i["InputName"] == "code")["S3Input"]["S3Uri"]
    assert folder.startswith("s3://${OrderNimbus:ArtifactsBucket}/pipelines/code/")
    assert folder.endswith(f"/{SPARK_APP}")
    assert entry[entry.index("--py-files") + 1] == folder.replace(SPARK_APP, PY_FILES)
    assert "sagemaker-spark-processing:3.5-cpu" in features["AppSpecification"]["ImageUri"]
    assert features["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 2

    sm, local = compiled_view(document), runner_view(build_pipeline())
    assert sm["edges"] == local["edges"]
    assert sm["inputs"]["Features"] == {"sales": "Validate/sales"}
    assert "Features" in sm["cached"]


def test_spark_app_and_py_files_come_from_the_code_archive() -> None:
    bundle = build_bundle()
    files = spark_files(bundle.data)
    assert files == spark_files(bundle.data)  # deterministic: same content key, same bytes
    assert (
        files[SPARK_APP]
        == (Path(__file__).resolve().parents[2] / "pipelines" / "sagemaker_spark.py").read_bytes()
    )
    with zipfile.ZipFile(io.BytesIO(files[PY_FILES])) as zipped:
        names = set(zipped.namelist())
    assert {"features/store/spark.py", "features/engineering.py", "ordernimbus/tenancy.py"} <= names


@pytest.mark.spark
@pytest.mark.skipif(
    not HAS_SPARK, reason="pyspark / sagemaker-feature-store-pyspark not installed: '.[spark]'"
)
def test_spark_job_writes_the_same_features_as_pandas(tmp_path: Path) -> None:
    from features.store.spark import spark_session

    base = tmp_path / "opt" / "ml"
    raw = base / "processing" / "input" / "raw"
    raw.mkdir(parents=True)
    sales = store_item_cut(stores=1, items=3, since="2017-03-01")
    sales.insert(0, "tenant_id", "big-co")
    sales.to_parquet(raw / "sales.parquet", index=False)
    validate.main(parse(["--sm-base", str(base), "--tenant", "big-co"]))
    sales_out = base / "processing" / "output" / "sales"
    (base / "processing" / "input" / "sales").symlink_to(sales_out)

    spark = spark_session("local[2]", buckets=2)
    try:
        summary = run_job(spark, base, "big-co")
    finally:
        spark.stop()

    out = base / "processing" / "output" / "features"
    got = pd.read_parquet(out / "offline").drop(columns="month")
    got = got.sort_values(["store_id", "sku", "date"], ignore_index=True)
    frame = pd.read_parquet(sales_out / "sales.parquet").drop(columns="tenant_id")
    expected = build_features(frame, sales_group("D").spec)
    expected = expected.sort_values(["store_id", "sku", "date"], ignore_index=True)[list(got.columns)]
    assert summary["records"] == len(expected) == len(got)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, check_exact=False, rtol=1e-6)
    assert json.loads((out / "materialization.json").read_text())["mode"] == "spark"
