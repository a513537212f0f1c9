"""Generated extensions never collide with another import's chunk that commits mid-allocation.

PostgreSQL runs READ COMMITTED: a chunk of import A that commits while import B allocates moves
its rows from "pending" to "users". B must see them in one of the two, whenever A commits.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import event, select

from shared.imports import allocation, row_check
from shared.models import ImportRow, RowStatus, User
from tests.support.builders import stored_job
from worker.tasks import run_chunk, run_validation


def _reads_pending_extensions(statement: str) -> bool:
    lowered = statement.lower()
    return "import_rows.extension" in lowered and "import_rows.status" in lowered


@pytest.mark.parametrize("moment", ["before_cursor_execute", "after_cursor_execute"])
def test_a_chunk_committing_during_allocation_never_yields_its_extension(
    database_url, engine, session, sessions, settings, moment
):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers: a chunk cannot commit while an allocation holds the lock")
    first = stored_job(session, settings, ["race_a"])
    assert run_validation(sessions, settings, first) == [0]  # race_a holds 1000, pending
    second = stored_job(session, settings, ["race_b"])
    with sessions.begin() as s:
        assert row_check.begin(s, second)
    with sessions() as s:
        checked = row_check.check_rows(s, settings, second)

    fired: list[str] = []

    def commit_first_import(conn, cursor, statement, *_args) -> None:
        # The other import's chunk commits in its own session right at this moment of ours.
        if not fired and _reads_pending_extensions(statement):
            fired.append(statement)
            assert run_chunk(sessions, settings, first, 0) == 1

    hook: Callable = commit_first_import
    with sessions.begin() as s:
        connection = s.connection()
        event.listen(connection, moment, hook)
        try:
            allocation.allocate(s, checked, settings.chunk_size, settings.worker_processes)
        finally:
            event.remove(connection, moment, hook)
    assert fired, "the allocation never read the pending rows' extensions"
    session.expire_all()
    taken_by_first = session.scalar(select(User.extension).where(User.username == "race_a"))
    row = session.scalar(select(ImportRow).where(ImportRow.job_id == second))
    assert taken_by_first == "1000"
    assert (row.status, row.extension) == (RowStatus.PENDING, "1001")
