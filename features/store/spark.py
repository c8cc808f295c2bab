"""Spark path for large tenants: features computed per bucket of series, then ingested.

Feature computation is per series, so Spark splits a tenant's sales into buckets of whole series
(a stable hash of store and sku) and runs :func:`features.engineering.build_features` on each
bucket with ``applyInPandas``. Because window sums are blocked on absolute periods and every bucket
is given the tenant's last period as ``end``, a bucket's rows are exactly the rows a single pandas
run over the whole tenant produces.

Ingestion then goes one of two ways:

* AWS: ``sagemaker-feature-store-pyspark``'s ``FeatureStoreManager.ingest_data`` into the tenant's
  feature group (online and/or offline store), the library's own bulk path;
* no AWS: the rows are staged as Parquet by month and committed month by month through the
  embedded store's atomic partition write (:class:`features.store.local.LocalFeatureStore`), so
  readers see whole months and the online store follows.

``pyspark`` and ``sagemaker-feature-store-pyspark`` are the ``spark`` extra; nothing imports this
module unless Spark is wanted.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from features.engineering import build_features, covariate_outputs
from features.store.base import FeatureStoreError, WriteResult
from features.store.groups import FeatureGroup, record_id, sales_group, to_records
from features.store.local import LocalFeatureStore
from ordernimbus.tenancy import validate_tenant

BUCKETS = 8


def spark_session(master: str = "local[2]", app: str = "ordernimbus-features", buckets: int = BUCKETS) -> Any:
    """A Spark session with the Feature Store connector's jar on the classpath.

    ``buckets`` is the number of series buckets (shuffle partitions): a few per core.
    """
    import feature_store_pyspark
    from pyspark.sql import SparkSession

    jars = ",".join(feature_store_pyspark.classpath_jars())
    # Python workers must run this interpreter (its pandas, its code); pyspark reads the variable once.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return (
        SparkSession.builder.master(master)
        .appName(app)
        .config("spark.jars", jars)
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", str(buckets))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", "2g")
        .getOrCreate()
    )


def spark_schema(group: FeatureGroup, covariates: list[str]) -> Any:
    """The Spark schema of ``build_features`` rows for ``group``: keys, date, features, covariates."""
    from pyspark.sql import types as T  # noqa: N812 (Spark convention)

    kinds = {"String": T.StringType(), "Integral": T.LongType(), "Fractional": T.DoubleType()}
    skip = {"record_id", "event_time", "tenant_id", "feature_spec_version"}
    fields = [
        T.StructField("store_id", T.StringType()),
        T.StructField("sku", T.StringType()),
        T.StructField("date", T.TimestampType()),
    ]
    for f in group.with_covariates(covariates).features:
        if f.name not in skip and f.name not in ("store_id", "sku"):
            fields.append(T.StructField(f.name, kinds[f.type]))
    return T.StructType(fields)


def compute_features(spark_sales: Any, freq: str, covariates: list[str], country: str | None = "US") -> Any:
    """Feature rows of every series, computed by Spark in buckets of whole series.

    ``covariates`` are the numeric covariate columns of the sales (``covariate_columns``): they fix
    the output schema, which Spark needs before it sees any row.
    """
    from pyspark.sql import functions as F  # noqa: N812 (Spark convention)

    group = sales_group(freq, country)
    schema = spark_schema(group, covariate_outputs(covariates, group.spec))
    end = spark_sales.agg(F.max("date")).first()[0]
    columns = [f.name for f in schema.fields]

    def bucket(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.assign(date=pd.to_datetime(frame["date"]))
        feats = build_features(frame.drop(columns="_bucket"), group.spec, end=pd.Timestamp(end))
        return feats.reindex(columns=columns)

    buckets = int(spark_sales.sparkSession.conf.get("spark.sql.shuffle.partitions"))
    keyed = spark_sales.withColumn("_bucket", F.abs(F.hash("store_id", "sku")) % buckets)
    return keyed.groupBy("_bucket").applyInPandas(bucket, schema=schema)


def feature_definitions(spark_features: Any) -> list[dict[str, str]]:
    """Feature definitions the connector derives from a DataFrame's schema (runs in the JVM, no AWS)."""
    from feature_store_pyspark.FeatureStoreManager import FeatureStoreManager

    definitions: list[dict[str, str]] = FeatureStoreManager().load_feature_definitions_from_schema(
        spark_features
    )
    return definitions


def sagemaker_records(spark_features: Any, tenant: str, group: FeatureGroup) -> Any:
    """Feature rows as records of ``group``: the same keys and event times as ``groups.to_records``."""
    import pandas as pd
    from pyspark.sql import functions as F  # noqa: N812 (Spark convention)

    validate_tenant(tenant)

    @F.pandas_udf("string")  # type: ignore[call-overload]
    def ids(stores: pd.Series, skus: pd.Series) -> pd.Series:
        return pd.Series([record_id(tenant, s, k) for s, k in zip(stores, skus, strict=True)])

    records = (
        spark_features.withColumn("tenant_id", F.lit(tenant))
        .withColumn("feature_spec_version", F.lit(group.spec.version))
        .withColumn("event_time", F.date_format("date", "yyyy-MM-dd'T'HH:mm:ss'Z'"))
        .withColumn("record_id", ids("store_id", "sku"))
    )
    return records.select(*[n for n in group.names if n in records.columns])


def ingest_sagemaker(
    spark_features: Any,
    tenant: str,
    group: FeatureGroup,
    feature_group_arn: str,
    target_stores: list[str] | None = None,
) -> None:
    """Bulk ingestion into the tenant's SageMaker feature group with the connector (needs AWS)."""
    from feature_store_pyspark.FeatureStoreManager import FeatureStoreManager

    FeatureStoreManager().ingest_data(
        sagemaker_records(spark_features, tenant, group), feature_group_arn, target_stores
    )


def ingest_local(
    spark_features: Any, store: LocalFeatureStore, tenant: str, group: FeatureGroup
) -> WriteResult:
    """Stage the rows as Parquet by month with Spark, then commit each month through the embedded store."""
    from pyspark.sql import functions as F  # noqa: N812 (Spark convention)

    staging = Path(tempfile.mkdtemp(prefix="ordernimbus-spark-"))
    try:
        by_month = spark_features.withColumn("_month", F.date_format("date", "yyyy-MM"))
        by_month.write.mode("overwrite").partitionBy("_month").parquet(str(staging))
        months = sorted(p for p in staging.glob("_month=*") if p.is_dir())
        if not months:
            raise FeatureStoreError("Spark produced no feature rows to ingest")
        store.ensure_group(tenant, group)
        total = WriteResult(0, 0, 0)
        for folder in months:
            frame = pd.read_parquet(folder).sort_values(["store_id", "sku", "date"], ignore_index=True)
            to_records(frame.head(1), group, tenant)  # fail on a shape mismatch before writing anything
            done = store.write(tenant, group, frame)
            total = WriteResult(
                total.records + done.records, total.partitions + done.partitions, total.online + done.online
            )
        return total
    finally:
        shutil.rmtree(staging, ignore_errors=True)
