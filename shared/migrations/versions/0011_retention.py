"""retention: when an upload's bytes and an import's row data were deleted; indexes the purge reads

Revision ID: 0011_retention
Revises: 0010_scale
Create Date: 2026-12-02 01:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_retention"
down_revision: str | Sequence[str] | None = "0010_scale"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("uploads", sa.Column("content_expired_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("import_jobs", sa.Column("row_data_expired_at", sa.DateTime(timezone=True), nullable=True))
    # The purge finds what is past retention by age, a batch at a time.
    op.create_index("ix_import_jobs_finished_at", "import_jobs", ["finished_at"])
    op.create_index("ix_audit_events_created_at", "audit_events", ["created_at"])
    # An upload's imports: its retention reads their ends, and deleting an upload checks none is left.
    op.create_index("ix_import_jobs_upload_id", "import_jobs", ["upload_id"])


def downgrade() -> None:
    op.drop_index("ix_import_jobs_upload_id", table_name="import_jobs")
    op.drop_index("ix_audit_events_created_at", table_name="audit_events")
    op.drop_index("ix_import_jobs_finished_at", table_name="import_jobs")
    with op.batch_alter_table("import_jobs") as batch:
        batch.drop_column("row_data_expired_at")
    with op.batch_alter_table("uploads") as batch:
        batch.drop_column("content_expired_at")
