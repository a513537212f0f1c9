"""work items: units of import work claimed by workers in fair order

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 15:20:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "work_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("chunk", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["import_jobs.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("job_id", "kind", "chunk", name="uq_work_items_job_kind_chunk"),
    )
    op.create_index("ix_work_items_job_id", "work_items", ["job_id"])
    op.create_index("ix_work_items_status_tenant", "work_items", ["status", "tenant_id"])
    # Jobs that were queued or running before this migration get their work items.
    op.execute(
        "INSERT INTO work_items (tenant_id, job_id, kind, chunk, rows, status, attempts, created_at) "
        "SELECT tenant_id, id, 'validate', 0, total, 'pending', 0, created_at FROM import_jobs "
        "WHERE status IN ('queued', 'validating')"
    )
    op.execute(
        "INSERT INTO work_items (tenant_id, job_id, kind, chunk, rows, status, attempts, created_at) "
        "SELECT j.tenant_id, r.job_id, 'create', r.chunk, COUNT(*), 'pending', 0, j.created_at "
        "FROM import_rows r JOIN import_jobs j ON j.id = r.job_id "
        "WHERE j.status = 'running' AND r.status = 'pending' AND r.chunk IS NOT NULL "
        "GROUP BY j.tenant_id, r.job_id, r.chunk, j.created_at"
    )


def downgrade() -> None:
    op.drop_index("ix_work_items_status_tenant", table_name="work_items")
    op.drop_index("ix_work_items_job_id", table_name="work_items")
    op.drop_table("work_items")
