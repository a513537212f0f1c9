"""Failed rows listed, corrections checked and retried, through the API with a real worker."""

from __future__ import annotations

from sqlalchemy import func, select

from shared.models import User
from tests.support.builders import basic_mapping, to_csv

HEADERS = ["Username", "Email", "First Name"]


def team(count: int, broken: dict[int, dict[str, str]], prefix: str = "tm") -> bytes:
    rows = [
        {"Username": f"{prefix}{i}", "Email": f"{prefix}{i}@example.com", "First Name": f"Tom{i}"}
        for i in range(count)
    ]
    for index, values in broken.items():
        rows[index].update(values)
    return to_csv(rows, headers=HEADERS)


def mapping(imports) -> dict:
    return basic_mapping(imports.reference("roles")["Agent"]) | {"first_name": {"column": "First Name"}}


def rows(imports, job_id: str, query: str = "status=error,duplicate") -> dict:
    resp = imports.client.get(f"/api/v1/imports/{job_id}/rows?{query}", headers=imports.auth)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def test_failed_rows_are_listed_with_their_values_and_each_message_beside_its_column(imports, worker):
    broken = {1: {"Email": "tm1-at-example"}, 3: {"Username": "x", "Email": "bad"}, 5: {"Username": "tm0"}}
    job = imports.run(team(8, broken), mapping(imports))
    assert (job["created"], job["errors"], job["duplicates"]) == (5, 2, 1)
    assert job["links"]["rows"] == f"/api/v1/imports/{job['id']}/rows"

    first = rows(imports, job["id"], "status=error,duplicate&per_page=2")
    assert (first["total"], first["page"], first["per_page"]) == (3, 1, 2)
    assert first["columns"] == HEADERS
    assert [(i["row"], i["status"]) for i in first["items"]] == [(3, "error"), (5, "error")]
    assert first["items"][0]["values"] == {"Username": "tm1", "Email": "tm1-at-example", "First Name": "Tom1"}
    assert first["items"][0]["messages"] == ['Email "tm1-at-example" is not a valid email address']
    assert first["items"][0]["problems"] == [
        {
            "field": "email",
            "column": "Email",
            "message": 'Email "tm1-at-example" is not a valid email address',
        }
    ]
    assert [p["column"] for p in first["items"][1]["problems"]] == ["Username", "Email"]
    second = rows(imports, job["id"], "status=error,duplicate&per_page=2&page=2")
    assert second["items"] == [
        {
            "row": 7,
            "status": "duplicate",
            "values": {"Username": "tm0", "Email": "tm5@example.com", "First Name": "Tom5"},
            "messages": ['Username "tm0" repeats row 2'],
            "problems": [
                {"field": "username", "column": "Username", "message": 'Username "tm0" repeats row 2'}
            ],
        }
    ]
    assert rows(imports, job["id"], "")["total"] == 8
    assert rows(imports, job["id"], "status=created")["total"] == 5
    bad = imports.client.get(f"/api/v1/imports/{job['id']}/rows?status=broken", headers=imports.auth)
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_parameter"
    bad = imports.client.get(f"/api/v1/imports/{job['id']}/rows?per_page=1000", headers=imports.auth)
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_parameter"
    assert [p["field"] for p in bad.get_json()["error"]["details"]["invalid"]] == ["per_page"]


def test_corrected_cells_are_checked_against_the_same_rules(imports, worker):
    job = imports.run(team(3, {1: {"Email": "nope"}, 2: {"Username": "admin"}}), mapping(imports))

    def check(row: int, values: object):
        return imports.client.post(
            f"/api/v1/imports/{job['id']}/rows/{row}/check", headers=imports.auth, json={"values": values}
        )

    assert check(3, {"Email": "tm1@example.com"}).get_json() == {"row": 3, "valid": True, "problems": []}
    still = check(3, {"Email": "still bad", "Username": "ok"}).get_json()
    assert still["valid"] is False
    assert still["problems"] == [
        {
            "field": "username",
            "column": "Username",
            "message": 'Username "ok" must be 3 to 64 letters, digits or . _ - @',
        },
        {"field": "email", "column": "Email", "message": 'Email "still bad" is not a valid email address'},
    ]
    # A value another user holds would be a duplicate: said as it is typed.
    taken = check(4, {}).get_json()
    assert taken["problems"] == [
        {"field": "username", "column": "Username", "message": 'Username "admin" already exists'}
    ]
    assert check(4, {"Username": "tm2"}).get_json()["valid"] is True
    unknown = check(3, {"Mail": "x"})
    assert unknown.status_code == 422
    assert unknown.get_json()["error"] == {
        "code": "invalid_values",
        "message": 'Row 3: the file has no column "Mail".',
        "details": [{"row": 3, "message": 'Row 3: the file has no column "Mail".'}],
    }
    assert check(99, {}).status_code == 404
    typed = check(3, "text")  # the body's shape is checked before the row: 400 naming the field
    assert typed.status_code == 400 and typed.get_json()["error"]["code"] == "invalid_field"
    assert [p["field"] for p in typed.get_json()["error"]["details"]["invalid"]] == ["values"]


def test_retrying_corrected_rows_creates_exactly_the_rest_with_the_same_mapping(imports, worker, session):
    broken = {2: {"Email": "a@"}, 4: {"Username": "!!"}, 6: {"Email": ""}, 8: {"Username": "tm0"}}
    job = imports.run(team(10, broken), mapping(imports))
    assert (job["created"], job["errors"], job["duplicates"]) == (6, 3, 1)
    resp = imports.post(
        job["id"],
        "retry",
        {
            "rows": [
                {"row": 4, "values": {"Email": "tm2@example.com"}},
                {"row": 6, "values": {"Username": "tm4"}},
                {"row": 8, "values": {"Email": "tm6@example.com"}},
                {"row": 10, "values": {"Username": "tm8"}},
            ]
        },
    )
    assert resp.status_code == 202, resp.get_json()
    retried = resp.get_json()
    assert retried["retry_of"] == job["id"] and retried["filename"] == "users (failed rows).csv"
    assert resp.headers["Location"] == f"/api/v1/imports/{retried['id']}"
    done = imports.wait_done(retried["id"])
    assert (done["total"], done["created"], done["errors"], done["duplicates"]) == (4, 4, 0, 0)
    assert imports.status(job["id"])["retried_by"] == [retried["id"]]
    names = set(session.scalars(select(User.username).where(User.import_id.in_([job["id"], retried["id"]]))))
    assert names == {f"tm{i}" for i in range(10)}
    assert (
        session.scalar(select(User.first_name).where(User.username == "tm4")) == "Tom4"
    )  # unchanged cells go too
    listed = imports.client.get("/api/v1/imports", headers=imports.auth).get_json()["items"]
    assert [(j["id"], j["retry_of"]) for j in listed] == [(retried["id"], job["id"]), (job["id"], None)]


def test_bad_retries_are_refused_with_every_problem(imports, worker):
    job = imports.run(team(4, {1: {"Email": "a@"}}), mapping(imports))
    # A body not shaped as documented is a 400 naming each bad place, before the rows are looked at.
    resp = imports.post(
        job["id"],
        "retry",
        {"rows": [{"row": 2, "values": {}}, {"row": 3, "values": {"Nope": "x", "Email": 5}}, "x"]},
    )
    assert resp.status_code == 400
    error = resp.get_json()["error"]
    assert error["code"] == "invalid_field"
    assert [p["field"] for p in error["details"]["invalid"]] == ["rows.1.values.Email", "rows.2"]
    assert imports.post(job["id"], "retry", {"rows": "all"}).status_code == 400
    # Well shaped, it names every correction that does not fit this import.
    resp = imports.post(
        job["id"], "retry", {"rows": [{"row": 2, "values": {}}, {"row": 3, "values": {"Nope": "x"}}]}
    )
    assert resp.status_code == 422
    error = resp.get_json()["error"]
    assert error["code"] == "invalid_retry"
    assert error["details"] == [
        {"row": 2, "message": "Row 2 is not an error or duplicate row of this import."},
        {"row": 3, "message": 'Row 3: the file has no column "Nope".'},
    ]
    clean = imports.run(team(2, {}, prefix="clean"), mapping(imports))
    nothing = imports.post(clean["id"], "retry", {})
    assert nothing.status_code == 409 and nothing.get_json()["error"]["code"] == "retry_not_allowed"
    dry = imports.run(team(2, {0: {"Email": "x"}}, prefix="dry"), mapping(imports), dry_run=True)
    assert imports.post(dry["id"], "retry", {}).status_code == 409


def test_a_row_number_written_with_a_zero_fraction_is_that_row(imports, worker):
    """JSON Schema counts 3.0 (and 3e0) as the integer the document promises; 3.5 is no row number."""
    job = imports.run(team(4, {1: {"Email": "a@"}}), mapping(imports))
    half = imports.post(job["id"], "retry", {"rows": [{"row": 3.5, "values": {}}]})
    assert half.status_code == 400 and half.get_json()["error"]["code"] == "invalid_field"
    assert [p["field"] for p in half.get_json()["error"]["details"]["invalid"]] == ["rows.0.row"]
    resp = imports.client.post(
        f"/api/v1/imports/{job['id']}/retry",
        headers=imports.auth,
        data='{"rows": [{"row": 3.0, "values": {"Email": "tm1@example.com"}}]}',
        content_type="application/json",
    )
    assert resp.status_code == 202, resp.get_json()
    done = imports.wait_done(resp.get_json()["id"])
    assert (done["total"], done["created"]) == (1, 1)


def test_a_retry_whose_rows_collide_with_users_created_meanwhile_makes_them_duplicates(
    imports, worker, session
):
    job = imports.run(team(3, {1: {"Email": "bad"}, 2: {"Email": "worse"}}), mapping(imports))
    fixes = {
        "rows": [
            {"row": 3, "values": {"Email": "late@example.com"}},
            {"row": 4, "values": {"Email": "tm2@example.com"}},
        ]
    }
    meanwhile = to_csv(
        [{"Username": "someone", "Email": "late@example.com", "First Name": "S"}], headers=HEADERS
    )
    assert imports.run(meanwhile, mapping(imports))["created"] == 1
    resp = imports.post(job["id"], "retry", fixes)
    done = imports.wait_done(resp.get_json()["id"])
    assert (done["created"], done["duplicates"], done["errors"]) == (1, 1, 0)
    dup = rows(imports, done["id"])["items"]
    assert [(i["row"], i["messages"]) for i in dup] == [(2, ['Email "late@example.com" already exists'])]
    assert session.scalar(select(func.count()).select_from(User).where(User.email == "late@example.com")) == 1
