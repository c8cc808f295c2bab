"""Core mirrors of the tables the migrations create, for building queries.

The migrations (inference/store/migrations/versions) are the schema's source of truth and never
import this module; a test reflects a migrated database and compares it with these definitions.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TZ = sa.DateTime(timezone=True)

store_metadata = sa.MetaData()
forecast_sets = sa.Table(
    "forecast_sets",
    store_metadata,
    sa.Column("set_id", sa.String(36), primary_key=True),
    sa.Column("tenant_id", sa.String(63), nullable=False),
    sa.Column("model_version", sa.Integer, nullable=False),
    sa.Column("generated_at", _TZ, nullable=False),
    sa.Column("completed_at", _TZ),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("series", sa.Integer, nullable=False),
    sa.Column("start_date", sa.Date),
    sa.Column("end_date", sa.Date),
    sa.Column("metadata", _JSON, nullable=False),
)
forecasts = sa.Table(
    "forecasts",
    store_metadata,
    sa.Column("tenant_id", sa.String(63), primary_key=True),
    sa.Column("forecast_set_id", sa.String(36), primary_key=True),
    sa.Column("store_id", sa.String(128), primary_key=True),
    sa.Column("sku", sa.String(128), primary_key=True),
    sa.Column("target_date", sa.Date, primary_key=True),
    sa.Column("horizon_day", sa.Integer, nullable=False),
    sa.Column("p10", sa.Double, nullable=False),
    sa.Column("p50", sa.Double, nullable=False),
    sa.Column("p90", sa.Double, nullable=False),
    sa.Column("mean", sa.Double, nullable=False),
)
current_sets = sa.Table(
    "current_sets",
    store_metadata,
    sa.Column("tenant_id", sa.String(63), primary_key=True),
    sa.Column("set_id", sa.String(36), nullable=False),
    sa.Column("updated_at", _TZ, nullable=False),
)
api_keys = sa.Table(
    "api_keys",
    store_metadata,
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column("tenant_id", sa.String(63), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("secret_hash", sa.String(255), nullable=False),
    sa.Column("created_at", _TZ, nullable=False),
    sa.Column("revoked_at", _TZ),
)
inventory_recommendations = sa.Table(
    "inventory_recommendations",
    store_metadata,
    sa.Column("tenant_id", sa.String(63), primary_key=True),
    sa.Column("forecast_set_id", sa.String(36), primary_key=True),
    sa.Column("store_id", sa.String(128), primary_key=True),
    sa.Column("sku", sa.String(128), primary_key=True),
    sa.Column("lead_time_days", sa.Integer, nullable=False),
    sa.Column("service_level", sa.Double, nullable=False),
    sa.Column("lead_time_demand", sa.Double, nullable=False),
    sa.Column("safety_stock", sa.Double, nullable=False),
    sa.Column("reorder_point", sa.Double, nullable=False),
    sa.Column("order_quantity", sa.Double, nullable=False),
    sa.Column("on_hand", sa.Double),
    sa.Column("stockout_risk", sa.Boolean, nullable=False),
)
sales_history = sa.Table(
    "sales_history",
    store_metadata,
    sa.Column("tenant_id", sa.String(63), primary_key=True),
    sa.Column("store_id", sa.String(128), primary_key=True),
    sa.Column("sku", sa.String(128), primary_key=True),
    sa.Column("date", sa.Date, primary_key=True),
    sa.Column("units", sa.Double, nullable=False),
    sa.Column("unit_price", sa.Double),
)
accuracy = sa.Table(
    "accuracy",
    store_metadata,
    sa.Column("tenant_id", sa.String(63), primary_key=True),
    sa.Column("check_id", sa.String(36), primary_key=True),
    sa.Column("level", sa.String(8), primary_key=True),
    sa.Column("store_id", sa.String(128), primary_key=True),
    sa.Column("sku", sa.String(128), primary_key=True),
    sa.Column("forecast_set_id", sa.String(36), nullable=False),
    sa.Column("model_version", sa.Integer, nullable=False),
    sa.Column("checked_at", _TZ, nullable=False),
    sa.Column("start_date", sa.Date, nullable=False),
    sa.Column("end_date", sa.Date, nullable=False),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("wape", sa.Double),
    sa.Column("bias", sa.Double),
    sa.Column("pinball", sa.Double),
    sa.Column("coverage", sa.Double),
)
jobs = sa.Table(
    "jobs",
    store_metadata,
    sa.Column("job_id", sa.String(36), primary_key=True),
    sa.Column("tenant_id", sa.String(63), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("run_id", sa.String(64)),
    sa.Column("progress", sa.Double, nullable=False),
    sa.Column("message", sa.Text),
    sa.Column("parameters", _JSON, nullable=False),
    sa.Column("created_at", _TZ, nullable=False),
    sa.Column("updated_at", _TZ, nullable=False),
    sa.Column("created_by", sa.String(32)),
)
monitor_decisions = sa.Table(
    "monitor_decisions",
    store_metadata,
    sa.Column("tenant_id", sa.String(63), primary_key=True),
    sa.Column("check_id", sa.String(36), primary_key=True),
    sa.Column("checked_at", _TZ, nullable=False),
    sa.Column("origin", sa.String(16), nullable=False),
    sa.Column("retrain", sa.Boolean, nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("reasons", _JSON, nullable=False),
    sa.Column("run_id", sa.String(256)),
    sa.Column("model_version", sa.Integer),
    sa.Column("actuals_through", sa.Date),
    sa.Column("details", _JSON, nullable=False),
)
