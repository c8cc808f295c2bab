"""Feature ingestion of a large tenant as a SageMaker ``PySparkProcessor`` step, and the Spark job it runs.

Compile side (:func:`spark_step_args`): when the target asks for Spark (``--spark-features``, or a
tenant whose lake holds ``--spark-min-rows`` rows), the definition's features step becomes a
PySparkProcessor on the SageMaker Spark image with the same inputs, outputs and arguments. This file
itself is the ``submit_app`` and a zip of our packages the ``--py-files``, both stored next to the
code archive under its content key (so the step cache behaves as for every other step).

Job side (:func:`main`, run by ``spark-submit``): the validated sales are read by Spark, features
are computed per bucket of whole series (:func:`features.store.spark.compute_features`, equal to the
pandas run) and written to the step's ``features`` output as Parquet by month, with the same
``materialization.json`` summary the pandas step writes; with ``--feature-group-arn`` the rows are
also bulk-ingested into the SageMaker Feature Store by ``sagemaker-feature-store-pyspark``.
The Spark image must offer Python 3.11 with our requirements (the default SageMaker Spark image is
used unless the target names another): see the README's SageMaker section.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

SPARK_APP = "spark_features.py"
PY_FILES = "ordernimbus-code.zip"


# --- compile side ------------------------------------------------------------------------------
def spark_files(archive: bytes) -> dict[str, bytes]:
    """``submit_app`` and ``--py-files`` derived from the code archive (deterministic bytes)."""
    import tarfile

    members: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for info in tar.getmembers():
            handle = tar.extractfile(info)
            if handle is not None and info.name.endswith(".py"):
                members[info.name] = handle.read()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zipped:
        for name in sorted(members):
            zipped.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), members[name])
    return {SPARK_APP: members["pipelines/sagemaker_spark.py"], PY_FILES: out.getvalue()}


def spark_step_args(compiler: Any, step: Any) -> Any:
    """The PySparkProcessor step arguments of ``step`` (the compiler's inputs, outputs and arguments)."""
    from sagemaker.core.spark.processing import PySparkProcessor

    target = compiler.target
    folder = compiler.code_uri.rsplit("/", 1)[0]
    processor = PySparkProcessor(
        role=target.role_arn,
        instance_type=compiler.params[step.instance_type_param],
        instance_count=target.spark_instance_count,
        image_uri=target.spark_image(),
        volume_size_in_gb=target.volume_gb,
        volume_kms_key=target.kms_key_id,
        output_kms_key=target.kms_key_id,
        max_runtime_in_seconds=target.max_runtime_seconds,
        base_job_name=f"ordernimbus-{step.name.lower()}-spark"[:32],
        sagemaker_session=compiler.session,
        env={"PYTHONUNBUFFERED": "1"},
    )
    return processor.run(
        submit_app=f"{folder}/{SPARK_APP}",
        submit_py_files=[f"{folder}/{PY_FILES}"],
        inputs=compiler._processing_inputs(step),
        outputs=compiler._processing_outputs(step),
        arguments=compiler._arguments(step),
    )


# --- job side ----------------------------------------------------------------------------------
def run_job(spark: Any, base: Path, tenant: str, feature_group_arn: str | None = None) -> dict[str, Any]:
    """Compute the tenant's features with ``spark`` from ``base``'s sales input into its features output."""
    import pandas as pd

    from features.engineering import covariate_columns
    from features.store.groups import sales_group
    from features.store.spark import compute_features, ingest_sagemaker
    from ordernimbus.tenancy import validate_tenant

    validate_tenant(tenant)
    started = time.perf_counter()
    sales_dir = base / "processing" / "input" / "sales"
    meta = json.loads((sales_dir / "meta.json").read_text())
    frame = pd.read_parquet(sales_dir / "sales.parquet")
    covariates = covariate_columns(frame.drop(columns=["tenant_id"], errors="ignore"))
    sales = _read_sales(spark, sales_dir / "sales.parquet")
    feats = compute_features(sales, meta["frequency"], covariates).cache()
    out = base / "processing" / "output" / "features"
    from pyspark.sql import functions as F  # noqa: N812 - the PySpark idiom

    (
        feats.withColumn("month", F.date_format("date", "yyyy-MM"))
        .write.mode("overwrite")
        .partitionBy("month")
        .parquet(str(out / "offline"))
    )
    records = feats.count()
    if feature_group_arn:
        ingest_sagemaker(feats, tenant, sales_group(meta["frequency"]), feature_group_arn)
    summary = {
        "mode": "spark",
        "tenant": tenant,
        "records": int(records),
        "covariates": covariates,
        "ingested_into": feature_group_arn or None,
        "seconds": round(time.perf_counter() - started, 2),
    }
    (out / "materialization.json").write_text(json.dumps(summary, indent=1))
    return summary


def _read_sales(spark: Any, path: Path) -> Any:
    """The sales as Spark reads them; pandas writes nanosecond timestamps, which Spark reads as longs."""
    from pyspark.sql import functions as F  # noqa: N812 - the PySpark idiom
    from pyspark.sql.types import LongType

    spark.conf.set("spark.sql.legacy.parquet.nanosAsLong", "true")
    sales = spark.read.parquet(str(path)).drop("tenant_id")
    if isinstance(sales.schema["date"].dataType, LongType):
        sales = sales.withColumn("date", F.timestamp_seconds(F.col("date") / F.lit(1_000_000_000)))
    return sales


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=SPARK_APP, allow_abbrev=False)
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--sm-base", type=Path, default=Path("/opt/ml"))
    parser.add_argument("--feature-group-arn", default=None)
    args, _ = parser.parse_known_args(argv)  # the features step may grow arguments Spark ignores
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.appName("ordernimbus-features")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    summary = run_job(spark, args.sm_base, args.tenant, args.feature_group_arn)
    print(f"features (spark): {summary['records']} records for {args.tenant} in {summary['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
