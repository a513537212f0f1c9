"""claim functions: on PostgreSQL a fair claim and a unit's finish are one round trip each

shared/imports/scheduling.py runs the claim as a handful of statements; at a thousand claims a second
their round trips and the Python that builds them are most of the cost. On PostgreSQL the same steps,
in the same order and with the same locks, run inside these functions: `claim_work` (the worker's own
or an abandoned unit first; then tenants in turn, FOR UPDATE SKIP LOCKED, then waiting; the
compare-and-set; the tenant's turn written) and `finish_work` (the turn written, the unit deleted).
PL/pgSQL, not SQL functions: their statements' plans are kept for the session. SQLite keeps the
statements (one writer at a time: no round trip to save). Which units a job still wants is spelled
here as in scheduling._wanted; the scheduling tests run the same claims on both databases.

Revision ID: 0013_claim_functions
Revises: 0012_invitations
Create Date: 2026-12-02 05:00:00

"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013_claim_functions"
down_revision: str | Sequence[str] | None = "0012_invitations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WANTED = """(
    (w.kind IN ('validate', 'create') AND j.status IN ('queued', 'validating', 'running'))
    OR (w.kind = 'undo' AND j.status = 'undoing')
    OR (w.kind = 'regenerate' AND j.regenerating)
    OR (w.kind = 'invite' AND j.status NOT IN ('undoing', 'undone'))
)"""

REFRESH = """
CREATE OR REPLACE FUNCTION work_tenant_refresh(p_tenant integer, p_served timestamptz, p_leaving integer)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    UPDATE work_tenants t SET
        in_flight = (SELECT count(*) FROM work_items w WHERE w.tenant_id = t.tenant_id
                     AND w.status = 'claimed' AND (p_leaving IS NULL OR w.id <> p_leaving)),
        head_at = (SELECT w.job_created_at FROM work_items w WHERE w.tenant_id = t.tenant_id
                   AND w.status = 'pending' AND (p_leaving IS NULL OR w.id <> p_leaving)
                   ORDER BY w.job_created_at LIMIT 1),
        last_served_at = coalesce(p_served, t.last_served_at)
    WHERE t.tenant_id = p_tenant;
END
$$
"""

# The compare-and-set (scheduling._take): the unit becomes the worker's unless another claimer took it
# first; then its tenant's turn counts it.
TAKE = """
CREATE OR REPLACE FUNCTION work_take(
    p_id integer, p_tenant integer, p_worker text, p_node text, p_now timestamptz, p_stale timestamptz,
    p_lapsed text[]
) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v_won integer;
BEGIN
    UPDATE work_items w SET status = 'claimed', claimed_by = p_worker, node = p_node,
        claimed_at = p_now, heartbeat_at = p_now, attempts = w.attempts + 1
    WHERE w.id = p_id AND (w.status = 'pending'
        OR (w.status = 'claimed' AND (w.claimed_by = p_worker OR w.heartbeat_at < p_stale
                                      OR w.node = ANY(p_lapsed))));
    GET DIAGNOSTICS v_won = ROW_COUNT;
    IF v_won > 0 THEN
        PERFORM work_tenant_refresh(p_tenant, p_now, NULL);
    END IF;
    RETURN v_won > 0;
END
$$
"""

CLAIM = f"""
CREATE OR REPLACE FUNCTION claim_work(
    p_worker text, p_node text, p_now timestamptz, p_stale timestamptz, p_lapsed text[]
) RETURNS TABLE (id integer, job_id varchar, tenant_id integer, kind varchar, chunk integer,
                 request_id varchar)
LANGUAGE plpgsql AS $$
DECLARE
    v_id integer;
    v_tenant integer;
    v_empty integer[];
    v_skip boolean;
BEGIN
    -- A retried slot finishes its own unit first; then units whose worker went silent.
    SELECT w.id, w.tenant_id INTO v_id, v_tenant
    FROM work_items w JOIN import_jobs j ON j.id = w.job_id
    WHERE {WANTED} AND w.status = 'claimed'
      AND (w.claimed_by = p_worker OR w.heartbeat_at < p_stale OR w.node = ANY(p_lapsed))
    ORDER BY CASE WHEN w.claimed_by = p_worker THEN 0 ELSE 1 END, w.heartbeat_at
    LIMIT 1;
    IF FOUND AND work_take(v_id, v_tenant, p_worker, p_node, p_now, p_stale, p_lapsed) THEN
        RETURN QUERY SELECT w.id, w.job_id, w.tenant_id, w.kind, w.chunk, w.request_id
            FROM work_items w WHERE w.id = v_id;
        RETURN;
    END IF;
    -- First the tenants no other claimer is serving right now, then any (waiting for them). The
    -- tenant's row is locked before its unit, as everywhere, so claimers never wait in a circle.
    FOREACH v_skip IN ARRAY ARRAY[true, false] LOOP
        v_empty := '{{}}';
        FOR attempt IN 1..20 LOOP
            IF v_skip THEN
                SELECT t.tenant_id INTO v_tenant FROM work_tenants t
                WHERE t.head_at IS NOT NULL AND t.tenant_id <> ALL(v_empty)
                ORDER BY t.in_flight, t.last_served_at, t.head_at, t.tenant_id
                LIMIT 1 FOR UPDATE SKIP LOCKED;
            ELSE
                SELECT t.tenant_id INTO v_tenant FROM work_tenants t
                WHERE t.head_at IS NOT NULL AND t.tenant_id <> ALL(v_empty)
                ORDER BY t.in_flight, t.last_served_at, t.head_at, t.tenant_id
                LIMIT 1 FOR UPDATE;
            END IF;
            EXIT WHEN NOT FOUND;
            SELECT w.id INTO v_id
            FROM work_items w JOIN import_jobs j ON j.id = w.job_id
            WHERE {WANTED} AND w.tenant_id = v_tenant AND w.status = 'pending'
            ORDER BY w.job_created_at, w.kind_rank, w.chunk, w.id
            LIMIT 1;
            IF NOT FOUND THEN
                v_empty := v_empty || v_tenant;
                PERFORM work_tenant_refresh(v_tenant, NULL, NULL);  -- its turn may be out of date
                CONTINUE;
            END IF;
            IF work_take(v_id, v_tenant, p_worker, p_node, p_now, p_stale, p_lapsed) THEN
                RETURN QUERY SELECT w.id, w.job_id, w.tenant_id, w.kind, w.chunk, w.request_id
                    FROM work_items w WHERE w.id = v_id;
                RETURN;
            END IF;
        END LOOP;
    END LOOP;
END
$$
"""

FINISH = """
CREATE OR REPLACE FUNCTION finish_work(p_item integer, p_tenant integer)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    -- The tenant's row first, as a claim locks it: the two never wait for each other in a circle.
    PERFORM work_tenant_refresh(p_tenant, NULL, p_item);
    DELETE FROM work_items w WHERE w.id = p_item;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(REFRESH)
    op.execute(TAKE)
    op.execute(CLAIM)
    op.execute(FINISH)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION IF EXISTS finish_work(integer, integer)")
    op.execute("DROP FUNCTION IF EXISTS claim_work(text, text, timestamptz, timestamptz, text[])")
    op.execute(
        "DROP FUNCTION IF EXISTS work_take(integer, integer, text, text, timestamptz, timestamptz, text[])"
    )
    op.execute("DROP FUNCTION IF EXISTS work_tenant_refresh(integer, timestamptz, integer)")
