"""undo, regenerated passwords, retries of failed rows, saved mappings

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 09:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:  # SQLite adds foreign keys by rebuilding import_jobs: its rows must not cascade away
        op.execute("PRAGMA foreign_keys=OFF")
    with op.batch_alter_table("import_jobs") as batch:
        batch.add_column(sa.Column("retry_of", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("undo_by_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_import_jobs_retry_of", "import_jobs", ["retry_of"], ["id"], ondelete="SET NULL"
        )
        batch.create_foreign_key(
            "fk_import_jobs_undo_by_id", "users", ["undo_by_id"], ["id"], ondelete="SET NULL"
        )
    if sqlite:
        op.execute("PRAGMA foreign_keys=ON")
    op.add_column("import_jobs", sa.Column("undo_requested_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("import_jobs", sa.Column("undone_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "import_jobs", sa.Column("password_generation", sa.Integer(), server_default="0", nullable=False)
    )
    op.add_column(
        "import_jobs", sa.Column("regenerating", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.add_column(
        "import_jobs", sa.Column("passwords_regenerated_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_index("ix_import_jobs_retry_of", "import_jobs", ["retry_of"])
    op.add_column("import_rows", sa.Column("problem_fields", sa.JSON(), nullable=True))
    op.add_column(
        "import_rows", sa.Column("password_generation", sa.Integer(), server_default="0", nullable=False)
    )
    op.create_table(
        "saved_mappings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("mapping", sa.JSON(), nullable=False),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_saved_mappings_tenant_name"),
    )
    op.create_index("ix_saved_mappings_tenant_id", "saved_mappings", ["tenant_id"])


def downgrade() -> None:
    op.drop_index("ix_saved_mappings_tenant_id", table_name="saved_mappings")
    op.drop_table("saved_mappings")
    op.drop_index("ix_import_jobs_retry_of", table_name="import_jobs")
    # SQLite (3.35+) drops a plain column in place; these two carry no constraint.
    op.drop_column("import_rows", "password_generation")
    op.drop_column("import_rows", "problem_fields")
    for column in ("passwords_regenerated_at", "regenerating", "password_generation", "undone_at",
                   "undo_requested_at"):  # fmt: skip
        op.drop_column("import_jobs", column)
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:  # the rebuild drops import_jobs: its rows must not cascade away meanwhile
        op.execute("PRAGMA foreign_keys=OFF")
    with op.batch_alter_table("import_jobs") as batch:
        batch.drop_constraint("fk_import_jobs_undo_by_id", type_="foreignkey")
        batch.drop_constraint("fk_import_jobs_retry_of", type_="foreignkey")
        batch.drop_column("undo_by_id")
        batch.drop_column("retry_of")
    if sqlite:
        op.execute("PRAGMA foreign_keys=ON")
