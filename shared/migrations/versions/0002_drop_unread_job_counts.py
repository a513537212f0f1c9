"""drop job counts nothing reads (the row results are the counts)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 14:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("created", "duplicates", "errors", "chunk_count")


def upgrade() -> None:
    with op.batch_alter_table("import_jobs") as batch:
        for name in COLUMNS:
            batch.drop_column(name)


def downgrade() -> None:
    with op.batch_alter_table("import_jobs") as batch:
        for name in COLUMNS:
            batch.add_column(sa.Column(name, sa.Integer(), nullable=False, server_default="0"))
