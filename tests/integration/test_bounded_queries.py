"""The Users table and the extension lookups read what the page or the file needs, and still
answer exactly what reading everything would (SQLite and PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import delete, select

from shared.dialer.tenants import create_admin, create_tenant
from shared.dialer.users import list_users
from shared.imports.extensions import lowest_free, taken_among
from shared.models import ImportRow, RowStatus, Tenant, TenantUserCount, User
from tests.support.builders import stored_job


def _demo(session) -> Tenant:
    return session.scalar(select(Tenant).where(Tenant.slug == "demo"))


def _add_users(session, tenant: Tenant, count: int, start: int = 0) -> None:
    role = session.scalar(select(User.role_id).where(User.tenant_id == tenant.id))
    session.add_all(
        User(
            tenant_id=tenant.id,
            username=f"Agent{i:03d}",
            email=f"agent{i:03d}@calls.example",
            first_name="Ann" if i % 2 else "Bob",
            last_name=f"Smith-{i}",
            extension=str(5000 + i),
            role_id=role,
            password_hash="x",
        )
        for i in range(start, start + count)
    )
    session.flush()


def _count_row(session, tenant: Tenant) -> int | None:
    return session.scalar(select(TenantUserCount.users).where(TenantUserCount.tenant_id == tenant.id))


def test_the_total_follows_inserts_and_deletes_of_any_kind(session):
    tenant = _demo(session)
    assert _count_row(session, tenant) == 1  # the demo admin
    _add_users(session, tenant, 30)
    session.execute(delete(User).where(User.tenant_id == tenant.id, User.extension.in_(["5000", "5001"])))
    session.commit()
    real = len(session.scalars(select(User.id).where(User.tenant_id == tenant.id)).all())
    assert list_users(session, tenant.id).total == real == _count_row(session, tenant) == 29
    other = create_tenant(session, "empty")
    assert list_users(session, other.id).total == 0 and list_users(session, other.id).items == []


def test_every_page_holds_what_an_offset_over_all_users_would(session):
    tenant = _demo(session)
    _add_users(session, tenant, 23)
    session.commit()
    newest_first = select(User.id).where(User.tenant_id == tenant.id).order_by(User.id.desc())
    everyone = session.scalars(newest_first).all()
    for page in range(1, 7):
        listed = list_users(session, tenant.id, page=page, per_page=5)
        assert [u.id for u in listed.items] == list(everyone[(page - 1) * 5 : page * 5]), page
        assert listed.total == 24
    assert list_users(session, tenant.id, page=9, per_page=5).items == []  # past the end: empty


def test_a_search_matches_the_start_of_any_field_and_counts_its_matches(session):
    tenant = _demo(session)
    _add_users(session, tenant, 12)
    session.commit()

    def names(q: str) -> set[str]:
        found = list_users(session, tenant.id, q=q, per_page=50)
        assert found.total == len(found.items)
        return {u.username for u in found.items}

    assert names("AGENT00") == {f"Agent00{i}" for i in range(10)}
    assert names("agent011@") == {"Agent011"}
    assert names("smith-1") == {"Agent001", "Agent010", "Agent011"}
    assert names("501") == {"Agent010", "Agent011"}  # extensions 5010 and 5011
    assert len(names("Ann")) == 6
    # Wildcards are text: "%" and "_" match themselves, not everything.
    assert names("%") == set() and names("agent_0") == set()


def test_a_search_on_postgresql_also_finds_text_inside_a_field(database_url, session):
    if database_url.startswith("sqlite"):
        return  # SQLite matches the start of a field only (no trigram index there)
    tenant = _demo(session)
    _add_users(session, tenant, 12)
    session.commit()
    found = list_users(session, tenant.id, q="gent01", per_page=50)
    assert {u.username for u in found.items} == {"Agent010", "Agent011"} and found.total == 2
    # A match may not span two fields: "calls.example" ends the email, "5" starts the extension.
    assert list_users(session, tenant.id, q="example5").total == 0


def test_taken_extensions_are_read_for_the_files_values(database_url, session, settings):
    tenant = _demo(session)
    _add_users(session, tenant, 3)  # 5000-5002
    job = stored_job(session, settings, ["p1"])
    session.add(ImportRow(job_id=job, row_number=2, status=RowStatus.PENDING, extension="5003", messages=[]))
    session.add(ImportRow(job_id=job, row_number=3, status=RowStatus.ERROR, extension="5004", messages=[]))
    session.flush()
    values = [str(n) for n in range(4990, 5010)]
    assert taken_among(session, tenant.id, values) == {"5000", "5001", "5002", "5003"}
    assert taken_among(session, create_tenant(session, "other").id, values) == set()


def test_generated_extensions_are_the_lowest_free_ones(session):
    tenant = _demo(session)
    tenant.extension_min, tenant.extension_max = 4998, 5006
    _add_users(session, tenant, 3)  # 5000-5002
    free = lowest_free(session, tenant, 4, reserved={"4999", "5004"})
    assert free == ["4998", "5003", "5005", "5006"]
    everything_left = ["4998", "4999", "5003", "5004", "5005", "5006"]
    assert lowest_free(session, tenant, 10, reserved=set()) == everything_left


def test_an_admin_takes_the_highest_free_extension(session, settings):
    tenant = create_tenant(session, "top", extension_min=100, extension_max=2000)
    first = create_admin(session, settings, tenant, "boss", "boss@top.example", "A-long-password-1")
    second = create_admin(session, settings, tenant, "boss2", "boss2@top.example", "A-long-password-1")
    assert (first.extension, second.extension) == ("2000", "1999")
