"""queries bounded by the file: the Users table's search and pages, pending extensions

Revision ID: 0008_bounded_queries
Revises: 0007
Create Date: 2026-12-02 01:30:00

Both: each tenant's number of users in tenant_user_counts, kept by triggers on users, so the
Users table's total is one row (a later batch_alter_table of users on SQLite rebuilds the table
and must create its triggers again). PostgreSQL: a trigram index (pg_trgm) over the searchable
fields, so a search reads its matches only. SQLite has no trigram index: expression indexes on
lower(field) answer its prefix search. Both: (tenant_id, id), so a page's ids are index-only
reads (it replaces the index on tenant_id alone), and the extensions of rows still pending, so
checking a file's extensions reads those values only.
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
# Each tenant's number of users, kept by triggers on users in the statement that changes them,
# so the Users table's total is one row read, whatever inserts or deletes the users.
PG_COUNT = """
CREATE FUNCTION tenant_user_counts_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tenant_user_counts (tenant_id, users)
    SELECT tenant_id, count(*) FROM added GROUP BY tenant_id ORDER BY tenant_id
    ON CONFLICT (tenant_id) DO UPDATE SET users = tenant_user_counts.users + EXCLUDED.users;
    RETURN NULL;
END $$;
CREATE FUNCTION tenant_user_counts_remove() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tenant_user_counts SET users = tenant_user_counts.users - gone.users
    FROM (SELECT tenant_id, count(*) AS users FROM removed GROUP BY tenant_id) AS gone
    WHERE tenant_user_counts.tenant_id = gone.tenant_id;
    RETURN NULL;
END $$;
CREATE TRIGGER users_counted_in AFTER INSERT ON users REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION tenant_user_counts_add();
CREATE TRIGGER users_counted_out AFTER DELETE ON users REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION tenant_user_counts_remove();
"""
SQLITE_COUNT = (
    """CREATE TRIGGER users_counted_in AFTER INSERT ON users BEGIN
    INSERT INTO tenant_user_counts (tenant_id, users) VALUES (NEW.tenant_id, 1)
    ON CONFLICT (tenant_id) DO UPDATE SET users = users + 1;
END""",
    """CREATE TRIGGER users_counted_out AFTER DELETE ON users BEGIN
    UPDATE tenant_user_counts SET users = users - 1 WHERE tenant_id = OLD.tenant_id;
END""",
)
SQLITE_PREFIX = ("first_name", "last_name", "extension", "phone_number")  # username, email: unique indexes


def upgrade() -> None:
    op.create_table(
        "tenant_user_counts",
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("users", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id"),
    )
    op.execute(
        "INSERT INTO tenant_user_counts (tenant_id, users)"
        " SELECT tenant_id, count(*) FROM users GROUP BY tenant_id"
    )
    if _postgres():
        op.execute(PG_COUNT)
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(f"CREATE INDEX ix_users_search ON users USING gin ({SEARCH_TEXT} gin_trgm_ops)")
    else:
        for statement in SQLITE_COUNT:
            op.execute(statement)
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
    op.execute("DROP TRIGGER users_counted_in ON users" if _postgres() else "DROP TRIGGER users_counted_in")
    op.execute("DROP TRIGGER users_counted_out ON users" if _postgres() else "DROP TRIGGER users_counted_out")
    if _postgres():
        op.execute("DROP FUNCTION tenant_user_counts_add(); DROP FUNCTION tenant_user_counts_remove()")
    op.drop_table("tenant_user_counts")
    op.drop_index("ix_import_rows_pending_extension", table_name="import_rows")
    op.create_index("ix_users_tenant_id", "users", ["tenant_id"])
    op.drop_index("ix_users_tenant_id_id", table_name="users")
    if _postgres():
        op.execute("DROP INDEX ix_users_search")
    else:
        for column in SQLITE_PREFIX:
            op.execute(f"DROP INDEX ix_users_tenant_lower_{column}")


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"
