"""Index for reads filtered by SKU alone (one product across all stores).

The primary key serves store-first reads; without this, ``?sku=`` walks the whole set.

Revision ID: 0003_forecasts_sku_index
Revises: 0002_api_keys
Create Date: 2025-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0003_forecasts_sku_index"
down_revision = "0002_api_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_forecasts_sku", "forecasts", ["tenant_id", "forecast_set_id", "sku", "store_id", "target_date"]
    )


def downgrade() -> None:
    op.drop_index("ix_forecasts_sku", table_name="forecasts")
