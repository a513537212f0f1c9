"""queries bounded by the file: the Users table's search and pages, pending extensions

Revision ID: 0008_bounded_queries
Revises: 0007
Create Date: 2026-12-02 01:30:00

PostgreSQL: a trigram index (pg_trgm) over the searchable fields, so a search reads its matches
only; (tenant_id, id), so a page's ids and the count are index-only reads of the tenant's
entries (it replaces the index on tenant_id alone). SQLite has no trigram index: expression
indexes on lower(field) answer its prefix search. Both: the extensions of rows still pending,
so checking a file's extensions reads those values only.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_bounded_queries"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The same expression as shared.dialer.users.SEARCH_TEXT when this revision was written
# (a migration keeps its own copy: the module may change later, this index may not).
SEARCH_TEXT = (
    "(chr(31) || lower(coalesce(users.username, ''))"
    " || chr(31) || lower(coalesce(users.email, ''))"
    " || chr(31) || lower(coalesce(users.extension, ''))"
    " || chr(31) || lower(coalesce(users.first_name, ''))"
    " || chr(31) || lower(coalesce(users.last_name, ''))"
    " || chr(31) || lower(coalesce(users.phone_number, '')))"
)
SQLITE_PREFIX = ("first_name", "last_name", "extension", "phone_number")  # username, email: unique indexes


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(f"CREATE INDEX ix_users_search ON users USING gin ({SEARCH_TEXT} gin_trgm_ops)")
    else:
        for column in SQLITE_PREFIX:
            op.execute(f"CREATE INDEX ix_users_tenant_lower_{column} ON users (tenant_id, lower({column}))")
    op.create_index("ix_users_tenant_id_id", "users", ["tenant_id", "id"])
    op.drop_index("ix_users_tenant_id", table_name="users")
    op.create_index(
        "ix_import_rows_pending_extension",
        "import_rows",
        ["extension"],
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index("ix_import_rows_pending_extension", table_name="import_rows")
    op.create_index("ix_users_tenant_id", "users", ["tenant_id"])
    op.drop_index("ix_users_tenant_id_id", table_name="users")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_users_search")
    else:
        for column in SQLITE_PREFIX:
            op.execute(f"DROP INDEX ix_users_tenant_lower_{column}")
