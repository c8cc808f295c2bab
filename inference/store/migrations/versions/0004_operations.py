"""Tables the API reads beyond forecasts: inventory advice, sales history, realised accuracy, jobs.

Each table is keyed by tenant first, so every query the API builds starts from the credential's
tenant and an index serves it.

- ``inventory_recommendations``: one row per series of a forecast set (reorder point, order
  quantity for a lead time and service level), written with the set so both turn current together.
- ``sales_history``: the recent actuals per series, for charts beside a forecast and for scoring
  past forecasts without reading the lake (the API's Lambda has no pandas or parquet reader).
- ``accuracy``: realised accuracy of past forecast sets against actuals, one row per check ×
  level (total / store / sku) × key; monitoring appends, the API reads.
- ``jobs``: pipeline runs started through the API (``POST /v1/forecasts/generate``).
- ``monitor_decisions``: every monitoring check of a tenant, whether it retrains and why (the
  rules that fired, the evidence, the run it started or what held it back); monitoring writes.

Revision ID: 0004_operations
Revises: 0003_forecasts_sku_index
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004_operations"
down_revision = "0003_forecasts_sku_index"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "inventory_recommendations",
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
        sa.Column("on_hand", sa.Double, nullable=True),
        sa.Column("stockout_risk", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "sales_history",
        sa.Column("tenant_id", sa.String(63), primary_key=True),
        sa.Column("store_id", sa.String(128), primary_key=True),
        sa.Column("sku", sa.String(128), primary_key=True),
        sa.Column("date", sa.Date, primary_key=True),
        sa.Column("units", sa.Double, nullable=False),
        sa.Column("unit_price", sa.Double, nullable=True),
    )
    op.create_index("ix_sales_history_sku", "sales_history", ["tenant_id", "sku", "store_id", "date"])
    op.create_table(
        "accuracy",
        sa.Column("tenant_id", sa.String(63), primary_key=True),
        sa.Column("check_id", sa.String(36), primary_key=True),
        sa.Column("level", sa.String(8), primary_key=True),
        sa.Column("store_id", sa.String(128), primary_key=True),
        sa.Column("sku", sa.String(128), primary_key=True),
        sa.Column("forecast_set_id", sa.String(36), nullable=False),
        sa.Column("model_version", sa.Integer, nullable=False),
        sa.Column("checked_at", TZ, nullable=False),
        sa.Column("start_date", sa.Date, nullable=False),
        sa.Column("end_date", sa.Date, nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("wape", sa.Double, nullable=True),
        sa.Column("bias", sa.Double, nullable=True),
        sa.Column("pinball", sa.Double, nullable=True),
        sa.Column("coverage", sa.Double, nullable=True),
        sa.CheckConstraint("level IN ('total', 'store', 'sku')", name="ck_accuracy_level"),
    )
    op.create_index("ix_accuracy_checked", "accuracy", ["tenant_id", "level", "checked_at"])
    op.create_table(
        "jobs",
        sa.Column("job_id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(63), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("progress", sa.Double, nullable=False, server_default="0"),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("parameters", JSON, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("created_by", sa.String(32), nullable=True),
    )
    op.create_index("ix_jobs_tenant", "jobs", ["tenant_id", "created_at"])
    op.create_table(
        "monitor_decisions",
        sa.Column("tenant_id", sa.String(63), primary_key=True),
        sa.Column("check_id", sa.String(36), primary_key=True),
        sa.Column("checked_at", TZ, nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("retrain", sa.Boolean, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("reasons", JSON, nullable=False),
        sa.Column("run_id", sa.String(256), nullable=True),
        sa.Column("model_version", sa.Integer, nullable=True),
        sa.Column("actuals_through", sa.Date, nullable=True),
        sa.Column("details", JSON, nullable=False),
    )
    op.create_index("ix_monitor_decisions_checked", "monitor_decisions", ["tenant_id", "checked_at"])


def downgrade() -> None:
    op.drop_index("ix_monitor_decisions_checked", table_name="monitor_decisions")
    op.drop_table("monitor_decisions")
    op.drop_index("ix_jobs_tenant", table_name="jobs")
    op.drop_table("jobs")
    op.drop_index("ix_accuracy_checked", table_name="accuracy")
    op.drop_table("accuracy")
    op.drop_index("ix_sales_history_sku", table_name="sales_history")
    op.drop_table("sales_history")
    op.drop_table("inventory_recommendations")
