"""fair claims at scale: each tenant's turn in work_tenants, the order of units written with them,
the worker holding a claim; finished units leave work_items

Revision ID: 0010_scale
Revises: 0009_metrics
Create Date: 2026-12-02 01:10:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_scale"
down_revision: str | Sequence[str] | None = "0009_metrics"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = sa.text("status = 'pending'")
CLAIMED = sa.text("status = 'claimed'")
WAITING = sa.text("head_at IS NOT NULL")


def upgrade() -> None:
    op.execute("DELETE FROM work_items WHERE status = 'done'")  # the table holds only work still to do
    with op.batch_alter_table("work_items") as batch:
        batch.add_column(sa.Column("node", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("job_created_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("kind_rank", sa.Integer(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE work_items SET job_created_at = "
        "(SELECT created_at FROM import_jobs WHERE import_jobs.id = work_items.job_id), "
        "kind_rank = CASE kind WHEN 'validate' THEN 0 WHEN 'create' THEN 1 WHEN 'undo' THEN 2 ELSE 3 END"
    )
    with op.batch_alter_table("work_items") as batch:
        batch.alter_column("job_created_at", existing_type=sa.DateTime(timezone=True), nullable=False)
    op.create_index(
        "ix_work_items_head",
        "work_items",
        ["tenant_id", "job_created_at", "kind_rank", "chunk", "id"],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )
    op.create_index(
        "ix_work_items_claimed",
        "work_items",
        ["tenant_id", "heartbeat_at"],
        postgresql_where=CLAIMED,
        sqlite_where=CLAIMED,
    )
    op.create_table(
        "work_tenants",
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("in_flight", sa.Integer(), nullable=False),
        sa.Column("last_served_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("head_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id"),
    )
    op.create_index(
        "ix_work_tenants_turn",
        "work_tenants",
        ["in_flight", "last_served_at", "head_at", "tenant_id"],
        postgresql_where=WAITING,
        sqlite_where=WAITING,
    )
    op.execute(
        "INSERT INTO work_tenants (tenant_id, in_flight, last_served_at, head_at) "
        "SELECT tenant_id, SUM(CASE WHEN status = 'claimed' THEN 1 ELSE 0 END), "
        "COALESCE(MAX(claimed_at), '1970-01-01 00:00:00'), "
        "MIN(CASE WHEN status = 'pending' THEN job_created_at END) "
        "FROM work_items GROUP BY tenant_id"
    )


def downgrade() -> None:
    op.drop_index("ix_work_tenants_turn", table_name="work_tenants")
    op.drop_table("work_tenants")
    op.drop_index("ix_work_items_claimed", table_name="work_items")
    op.drop_index("ix_work_items_head", table_name="work_items")
    with op.batch_alter_table("work_items") as batch:
        batch.drop_column("kind_rank")
        batch.drop_column("job_created_at")
        batch.drop_column("node")
