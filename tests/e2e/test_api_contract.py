"""The OpenAPI document against the code, and the inputs that once answered 500 (issue 9)."""

from __future__ import annotations

import json
import re

import pytest
from openapi_spec_validator import validate

from shared.mapping.fields import FIELDS, Field, Source
from shared.models import AUTH_TYPES, MAX_ID, SIP_MODES
from web.contract.mapping_model import mapping_model
from web.contract.routes import at_most

API = "/api/v1"
REFERENCE = ("roles", "desks", "skill-groups", "pbx-domains")


@pytest.fixture
def doc(client) -> dict:
    return client.get(f"{API}/openapi.json").get_json()


def schema_of(doc: dict, name: str) -> dict:
    return doc["components"]["schemas"][name]


def test_the_document_is_valid_openapi_3_2(doc):
    assert doc["openapi"] == "3.2.0"
    validate(doc)  # openapi-spec-validator: raises on the first problem


def test_every_route_of_the_api_is_in_the_document(app, doc):
    """A view registered beside the route table (a bare @bp.get) would be missing here."""
    from web.contract.openapi import _path

    for rule in app.url_map.iter_rules():
        if not (rule.rule.startswith(API) or rule.rule in ("/healthz", "/readyz")):
            continue
        path = _path(rule.rule)[0]
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in doc["paths"].get(path, {}), f"{method} {path} is not documented"


def test_every_path_parameter_query_parameter_and_body_is_typed(doc):
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == {part[1:-1] for part in path.split("/") if part.startswith("{")}, path
            for parameter in op.get("parameters", []):
                assert parameter["schema"].get("type") or parameter["schema"].get("anyOf"), (path, parameter)
            assert op["responses"], (method, path)
    users = {p["name"]: p for p in doc["paths"][f"{API}/users"]["get"]["parameters"]}
    assert set(users) == {"page", "per_page", "q", "import_id"}
    assert users["page"]["schema"]["type"] == "integer"
    rows = {p["name"]: p for p in doc["paths"][f"{API}/imports/{{job_id}}/rows"]["get"]["parameters"]}
    assert set(rows) == {"job_id", "status", "page", "per_page"}
    assert re.fullmatch(rows["status"]["schema"]["pattern"], "error,duplicate")
    check = doc["paths"][f"{API}/imports/{{job_id}}/rows/{{row}}/check"]["post"]
    assert {p["name"]: p["schema"]["type"] for p in check["parameters"]} == {
        "job_id": "string",
        "row": "integer",
    }


def test_what_came_after_the_help_page_is_typed(doc):
    """Undo, regenerated passwords, failed rows, retries, saved mappings (API.md "Beyond the help page")."""
    status = schema_of(doc, "ImportStatus")
    assert {"undone", "undone_at", "retry_of", "retried_by", "regenerating", "regenerated"} <= set(
        status["required"]
    )
    assert {"undoing", "undone"} <= set(schema_of(doc, "JobStatus")["enum"])
    assert {"suggested_from", "suggestion_problems"} <= set(schema_of(doc, "UploadAnswer")["properties"])
    for path, method in [("/undo", "post"), ("/regenerate-passwords", "post"), ("/retry", "post")]:
        answers = doc["paths"][f"{API}/imports/{{job_id}}{path}"][method]["responses"]
        assert answers["202"]["content"]["application/json"]["schema"]["$ref"].endswith("/ImportStatus")
        assert "409" in answers
    retry = doc["paths"][f"{API}/imports/{{job_id}}/retry"]["post"]
    assert retry["requestBody"]["required"] is False  # no body: every failed row, unchanged
    saved = doc["paths"][f"{API}/mappings"]["post"]["responses"]
    assert saved["201"] == saved["200"] | {"description": "Created"}
    assert schema_of(doc, "SavedMapping")["properties"]["mapping"]["$ref"].endswith("/Mapping")
    assert "204" in doc["paths"][f"{API}/mappings/{{mapping_id}}"]["delete"]["responses"]


def test_the_mapping_follows_the_field_registry(doc):
    mapping = schema_of(doc, "Mapping")
    assert set(mapping["required"]) == {f.key for f in FIELDS if f.required}
    assert mapping["additionalProperties"] is False  # unknown fields are refused
    forms = {Source.COLUMN: "ColumnSource", Source.GENERATE: "GenerateSource"}
    for f in FIELDS:
        schema = mapping["properties"][f.key]
        choices = next((c for c in schema.get("anyOf", [schema]) if c.get("type") != "null"), schema)
        refs = [c["$ref"].rsplit("/", 1)[1] for c in choices.get("oneOf", [choices])]
        value = "IdsSource" if f.many else "IdSource"
        assert refs == [forms.get(s, value) for s in f.sources], f.key
    sip = next(c for c in mapping["properties"]["sip"]["anyOf"] if "oneOf" in c)
    assert set(sip["discriminator"]["mapping"]) == set(SIP_MODES)
    assert mapping["properties"]["auth_type"]["enum"] == list(AUTH_TYPES)


def test_a_new_registry_field_appears_in_the_document_by_itself():
    badge = Field("badge", "Badge", lambda text, label, _resolver: text, "badge")
    model = mapping_model("MappingWithBadge", partial=False, registry=(*FIELDS, badge))
    assert "badge" in model.model_json_schema()["properties"]


def test_the_user_carries_every_registry_field(doc):
    user = schema_of(doc, "User")
    assert {f.attribute for f in FIELDS} <= set(user["properties"])
    assert {f.attribute for f in FIELDS} <= set(user["required"])


def test_uploads_require_the_file_and_the_import_answer_has_its_location(doc):
    upload = doc["paths"][f"{API}/uploads"]["post"]["requestBody"]["content"]["multipart/form-data"]
    form = schema_of(doc, upload["schema"]["$ref"].rsplit("/", 1)[1])
    assert form["required"] == ["file"] and form["properties"]["file"]["format"] == "binary"
    started = doc["paths"][f"{API}/imports"]["post"]["responses"]["202"]
    assert started["headers"]["Location"]["required"] is True
    status = schema_of(doc, "ImportStatus")["properties"]
    for name in ("created_at", "started_at", "finished_at", "links"):
        assert name in status


@pytest.mark.parametrize("limit", [1, 9, 10, 205, 1000, MAX_ID])
def test_path_ids_match_exactly_1_to_the_limit(limit):
    pattern = re.compile(at_most(limit))
    for n in [*range(1200), limit - 1, limit, limit + 1, 10 * limit]:
        assert bool(pattern.fullmatch(str(n))) == (1 <= n <= limit), n
    for text in ("01", "³", "١", " 1", "+1", "1_0"):
        assert not pattern.fullmatch(text)


# --- inputs that answered 500 ---------------------------------------------------------------------


def assert_error(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/json"
    body = resp.get_json()["error"]
    assert body["code"] == code and body["message"], body
    return body


@pytest.mark.parametrize("kind", REFERENCE)
def test_a_unicode_digit_in_a_path_id_is_not_found(client, auth, kind):
    assert_error(client.get(f"{API}/{kind}/%C2%B3", headers=auth), 404, "not_found")  # '³'


@pytest.mark.parametrize(
    "path",
    [
        "/users/99999999999999999999",
        "/roles/99999999999999999999",
        "/users/9223372036854775808",  # 2**63
        "/users/2147483648",  # 2**31: past PostgreSQL's INTEGER keys
        "/users/2147483647",  # the largest id: well formed, unknown
        "/users/0",
        "/users/007",
        "/users/-1",
        "/users/%D9%A1",  # Arabic-Indic one
        "/imports/not-an-id",
        "/imports/0123456789ABCDEF0123456789ABCDEF",  # upper case is not our id
        "/imports/0123456789abcdef0123456789abcdef0",
        "/uploads/%00",
        "/imports/0123456789abcdef0123456789abcdef/errors.csv",  # well formed, unknown
    ],
)
def test_ids_that_are_not_ids_answer_404_before_any_query(client, auth, path):
    assert_error(client.get(API + path, headers=auth), 404, "not_found")


def test_other_methods_on_unparsable_ids_answer_404_too(client, auth):
    resp = client.post(f"{API}/users/99999999999999999999/reset-password", headers=auth)
    assert_error(resp, 404, "not_found")
    assert_error(client.patch(f"{API}/roles/%C2%B3", headers=auth, json={}), 404, "not_found")
    assert_error(client.patch(f"{API}/roles/9223372036854775808", headers=auth, json={}), 404, "not_found")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("page=99999999999999999999", "page"),
        ("per_page=%C2%B3", "per_page"),
        ("page=0", "page"),
        ("per_page=201", "per_page"),
        ("page=%201", "page"),
        ("page=1_0", "page"),
        ("q=a%00b", "q"),
        ("import_id=x", "import_id"),
    ],
)
def test_bad_query_parameters_answer_400_naming_them(client, auth, query, field):
    body = assert_error(client.get(f"{API}/users?{query}", headers=auth), 400, "invalid_parameter")
    assert [p["field"] for p in body["details"]["invalid"]] == [field]
    assert field in body["message"]


def test_json_nested_100000_deep_answers_400(client, auth):
    deep = "[" * 100_000 + "]" * 100_000
    resp = client.post(f"{API}/imports", headers=auth, data=deep, content_type="application/json")
    assert_error(resp, 400, "json_too_deep")
    nested = '{"a":' * 100_000 + "1" + "}" * 100_000
    resp = client.post(f"{API}/auth/token", data=nested, content_type="application/json")
    assert_error(resp, 400, "json_too_deep")


def test_brackets_inside_strings_do_not_count_as_depth(client, auth):
    body = {"upload_id": "0" * 32, "mapping": {"username": {"column": "[" * 1000 + '"{'}}}
    resp = client.post(f"{API}/imports", headers=auth, json=body)
    assert_error(resp, 404, "not_found")  # parsed; the upload does not exist


def test_a_json_body_past_the_limit_answers_413(client, auth):
    data = json.dumps({"upload_id": "0" * 32, "mapping": {}, "pad": "x" * (1024 * 1024)})
    resp = client.post(f"{API}/imports", headers=auth, data=data, content_type="application/json")
    assert_error(resp, 413, "body_too_large")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("post", "/healthz", {"GET", "HEAD", "OPTIONS"}),
        ("put", "/readyz", {"GET", "HEAD", "OPTIONS"}),
        ("delete", f"{API}/users", {"GET", "HEAD", "OPTIONS"}),
        ("put", f"{API}/auth/token", {"POST", "DELETE", "OPTIONS"}),
        ("get", f"{API}/imports/0123456789abcdef0123456789abcdef/cancel", {"POST", "OPTIONS"}),
    ],
)
def test_405_carries_allow_and_the_json_error_body(client, method, path, allowed):
    resp = getattr(client, method)(path)
    assert_error(resp, 405, "method_not_allowed")
    assert set(resp.headers["Allow"].replace(" ", "").split(",")) == allowed


def test_an_unknown_api_path_answers_json_and_a_page_answers_html(client):
    assert_error(client.get(f"{API}/nothing-here"), 404, "not_found")
    page = client.get("/nothing-here")
    assert page.status_code == 404 and page.mimetype == "text/html"


@pytest.mark.parametrize(
    "body",
    [
        {"tenant": "demo\x00", "username": "admin", "password": "x"},
        {"tenant": "demo", "username": "ad\x00min", "password": "x"},
        {"tenant": ["demo"], "username": "admin", "password": "x"},
        {"tenant": "demo", "username": "admin", "password": "x", "code": "\x00"},
    ],
)
def test_token_bodies_the_database_cannot_hold_answer_400(client, body):
    resp = client.post(f"{API}/auth/token", json=body)
    assert_error(resp, 400, "invalid_field")


def test_a_lone_surrogate_in_a_body_answers_400(client):
    data = '{"tenant": "\\ud800", "username": "admin", "password": "x"}'
    resp = client.post(f"{API}/auth/token", data=data, content_type="application/json")
    assert_error(resp, 400, "invalid_field")


def test_start_import_names_every_bad_field(client, auth):
    resp = client.post(f"{API}/imports", headers=auth, json={"upload_id": "nope", "dry_run": "yes"})
    body = assert_error(resp, 400, "invalid_field")
    assert body["details"]["missing"] == ["mapping"]
    assert {p["field"] for p in body["details"]["invalid"]} == {"upload_id", "dry_run"}
