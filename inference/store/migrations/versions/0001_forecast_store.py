"""Forecast sets, their rows, and the per-tenant pointer to the current set.

Revision ID: 0001_forecast_store
Revises:
Create Date: 2025-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001_forecast_store"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "forecast_sets",
        sa.Column("set_id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(63), nullable=False),
        sa.Column("model_version", sa.Integer, nullable=False),
        sa.Column("generated_at", TZ, nullable=False),
        sa.Column("completed_at", TZ, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("series", sa.Integer, nullable=False, server_default="0"),
        sa.Column("start_date", sa.Date, nullable=True),
        sa.Column("end_date", sa.Date, nullable=True),
        sa.Column("metadata", JSON, nullable=False),
        sa.CheckConstraint("status IN ('writing', 'complete')", name="ck_forecast_sets_status"),
    )
    op.create_index(
        "ix_forecast_sets_tenant_status", "forecast_sets", ["tenant_id", "status", "completed_at"]
    )
    # The primary key is the API's access path: tenant, set, then keyset order (store, sku, date).
    # On SQLite the table is clustered on it (WITHOUT ROWID), so a page is one range scan.
    op.create_table(
        "forecasts",
        sa.Column("tenant_id", sa.String(63), nullable=False),
        sa.Column("forecast_set_id", sa.String(36), nullable=False),
        sa.Column("store_id", sa.String(128), nullable=False),
        sa.Column("sku", sa.String(128), nullable=False),
        sa.Column("target_date", sa.Date, nullable=False),
        sa.Column("horizon_day", sa.Integer, nullable=False),
        sa.Column("p10", sa.Double, nullable=False),
        sa.Column("p50", sa.Double, nullable=False),
        sa.Column("p90", sa.Double, nullable=False),
        sa.Column("mean", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "forecast_set_id", "store_id", "sku", "target_date", name="pk_forecasts"
        ),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "current_sets",
        sa.Column("tenant_id", sa.String(63), primary_key=True),
        sa.Column(
            "set_id",
            sa.String(36),
            sa.ForeignKey("forecast_sets.set_id", name="fk_current_sets_set"),
            nullable=False,
        ),
        sa.Column("updated_at", TZ, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("current_sets")
    op.drop_table("forecasts")
    op.drop_index("ix_forecast_sets_tenant_status", table_name="forecast_sets")
    op.drop_table("forecast_sets")
