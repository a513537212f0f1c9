"""the request id that added each unit of work, for the worker's log lines

Revision ID: 0009_metrics
Revises: 0008_bounded_queries
Create Date: 2026-12-02 01:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_metrics"
down_revision: str | Sequence[str] | None = "0008_bounded_queries"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("work_items") as batch:
        batch.add_column(sa.Column("request_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("work_items") as batch:
        batch.drop_column("request_id")
