"""A real client: schemathesis generates requests from the OpenAPI document and checks every answer.

Each operation is one test on a freshly seeded database, with every default check (no 5xx,
statuses, content types, headers and bodies as documented, valid data accepted, invalid data
refused, authentication enforced). The operations that destroy what they touch (a password
reset, an unlock, a revoked token, a cancel, an acknowledge, an undo, a regeneration, a retry,
a role's default, a saved mapping's deletion) get a token of their own for each request and,
unless the request's id is the malformed part, a victim of their own: the fuzzer never ends its
own session or the state the other requests rely on. The rows of an import and the check of a
row are aimed at a real ended import the same way.
The seed is fixed so a run can be repeated (FUZZ_SEED picks another).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.core.parameters import ParameterLocation
from sqlalchemy import delete, select

from shared.accounts.tokens import issue_token
from shared.imports.jobs import create_job
from shared.models import (
    ImportJob,
    ImportRow,
    JobStatus,
    Role,
    RowStatus,
    SavedMapping,
    Tenant,
    Upload,
    User,
    WorkItem,
    utcnow,
)
from shared.settings import Settings
from tests.support.builders import basic_mapping
from web import create_app
from web.contract.openapi import document

# Per operation and database, on top of the coverage phase's deterministic cases. FUZZ_SEED and
# FUZZ_EXAMPLES explore further by hand; the suite's run is fixed, so it repeats exactly.
MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))
SEED = int(os.environ.get("FUZZ_SEED", "20260917"))
# Valid requests that a schema cannot tell from a bad file: the file's content decides.
FILE_STATUSES = ["2xx", "400", "401", "403", "404", "409", "413", "415", "429"]
API = "/api/v1"
# The operations that destroy what they touch: path parameter -> the victim put there.
DESTRUCTIVE: dict[tuple[str, str], dict[str, str]] = {
    ("POST", f"{API}/users/{{user_id}}/reset-password"): {"user_id": "user"},
    ("POST", f"{API}/users/{{user_id}}/unlock"): {"user_id": "user"},
    ("POST", f"{API}/imports/{{job_id}}/cancel"): {"job_id": "queued"},
    ("POST", f"{API}/imports/{{job_id}}/acknowledge"): {"job_id": "queued"},
    ("POST", f"{API}/imports/{{job_id}}/undo"): {"job_id": "ended"},
    ("POST", f"{API}/imports/{{job_id}}/regenerate-passwords"): {"job_id": "ended"},
    ("POST", f"{API}/imports/{{job_id}}/retry"): {"job_id": "ended"},
    ("PATCH", f"{API}/roles/{{role_id}}"): {"role_id": "role"},
    ("DELETE", f"{API}/mappings/{{mapping_id}}"): {"mapping_id": "mapping"},
    ("DELETE", f"{API}/auth/token"): {},
}
# Operations that read one thing in depth, aimed at a real one (a random id only ever sees their 404).
AIMED: dict[tuple[str, str], dict[str, str]] = {
    ("GET", f"{API}/imports/{{job_id}}/rows"): {"job_id": "ended"},
    ("GET", f"{API}/imports/{{job_id}}/events"): {"job_id": "ended"},  # each event against itemSchema
    ("POST", f"{API}/imports/{{job_id}}/rows/{{row}}/check"): {"job_id": "ended", "row": "error_row"},
}
# Valid requests whose answer the tenant's data decides: the file's columns, the rows that failed, the IDs.
DATA_STATUSES = ["2xx", "401", "403", "404", "409", "422", "429"]
CASES: Counter[tuple[str, str]] = Counter()  # (operation, database) -> requests sent
SECONDS = [0.0]


def _document() -> dict[str, Any]:
    create_app(Settings(database_url="sqlite://", secret_key="fuzz"))  # views register
    return document()


schema = schemathesis.openapi.from_dict(
    _document(),
    config=schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "generation": {"max-examples": MAX_EXAMPLES},
            "operations": [
                {
                    "include-operation-id": "upload_file",
                    "checks": {"positive_data_acceptance": {"expected-statuses": FILE_STATUSES}},
                },
                {
                    "include-operation-id": ["mappings_save", "check_import_row", "retry_import"],
                    "checks": {"positive_data_acceptance": {"expected-statuses": DATA_STATUSES}},
                },
                {  # no worker runs here: "not ready" is the documented answer
                    "include-operation-id": "readyz",
                    "checks": {"not_a_server_error": {"expected-statuses": ["2xx", "4xx", "503"]}},
                },
            ],
        }
    ),
)


@pytest.fixture(autouse=True)
def _timed() -> Iterator[None]:
    """Each operation's test, its fresh database included."""
    started = time.perf_counter()
    yield
    SECONDS[0] += time.perf_counter() - started


@pytest.fixture(scope="session", autouse=True)
def _report(request: pytest.FixtureRequest) -> Iterator[None]:
    """Say at the end how many requests the fuzzer sent, to how many operations, in how long."""
    yield
    capture = request.config.pluginmanager.getplugin("capturemanager")
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    if reporter is not None and capture is not None and CASES:
        with capture.global_and_fixture_disabled():
            reporter.write_line(
                f"\nfuzzer: {sum(CASES.values())} requests to {len({op for op, _ in CASES})} operations "
                f"on {len({db for _, db in CASES})} database(s) in {SECONDS[0]:.1f} s"
            )


class Victims:
    """What a destructive operation may destroy: its own token per request, and its own user, role,
    queued import, ended import (a created user and an error row) and saved mapping."""

    def __init__(self, sessions, settings: Settings) -> None:
        self.sessions = sessions
        self.settings = settings
        with sessions.begin() as session:
            tenant = session.scalar(select(Tenant).where(Tenant.slug == "demo"))
            agent = session.scalar(select(Role).where(Role.tenant_id == tenant.id, Role.name == "Agent"))
            user = _user(tenant.id, agent.id, "victim", "1999")
            role = Role(tenant_id=tenant.id, name="Victims", permissions=[])
            saved = SavedMapping(
                tenant_id=tenant.id,
                name="Victims",
                mapping=basic_mapping(agent.id),
                columns=["Username", "Email"],
            )
            session.add_all([user, role, saved])
            queued = create_job(
                session, tenant.id, None, _upload(session, tenant.id).id, basic_mapping(agent.id), False
            )
            ended = self._ended(session, tenant.id, agent.id)
            self.ids = {
                "user": user.id,
                "role": role.id,
                "queued": queued.id,
                "ended": ended.id,
                "error_row": 3,
                "mapping": saved.id,
            }
            self.admin_id = session.scalar(select(User.id).where(User.username == "admin"))

    @staticmethod
    def _ended(session, tenant_id: int, role_id: int) -> ImportJob:
        """An import that ended a moment ago: row 2 created its user, row 3 is an error."""
        job = create_job(
            session, tenant_id, None, _upload(session, tenant_id).id, basic_mapping(role_id), False
        )
        session.execute(delete(WorkItem).where(WorkItem.job_id == job.id))  # nothing left for a worker
        job.status, job.started_at, job.finished_at = JobStatus.SUCCEEDED, utcnow(), utcnow()
        made = _user(tenant_id, role_id, "v1", "1998", import_id=job.id)
        session.add(made)
        session.flush()
        session.add_all(
            [
                ImportRow(job_id=job.id, row_number=2, chunk=0, status=RowStatus.CREATED, messages=[],
                          username="v1", user_id=made.id),
                ImportRow(job_id=job.id, row_number=3, chunk=0, status=RowStatus.ERROR,
                          messages=['Email "bad" is not a valid email address'], problem_fields=["email"]),
            ]
        )  # fmt: skip
        return job

    def token(self) -> str:
        with self.sessions.begin() as session:
            return issue_token(session, self.settings, session.get(User, self.admin_id))[0]


def _user(tenant_id: int, role_id: int, username: str, extension: str, import_id: str | None = None) -> User:
    return User(
        tenant_id=tenant_id,
        username=username,
        email=f"{username}@demo.example",
        extension=extension,
        role_id=role_id,
        password_hash="x",
        import_id=import_id,
    )


def _upload(session, tenant_id: int) -> Upload:
    upload = Upload(
        tenant_id=tenant_id,
        filename="victims.csv",
        format="csv",
        size=38,
        content=b"Username,Email\nv1,v1@x.example\nv2,bad\n",
        headers=["Username", "Email"],
        row_count=2,
    )
    session.add(upload)
    session.flush()
    return upload


PLACEHOLDER = "fuzz-token"  # what the auth provider writes; each test swaps in its own token


@schema.auth(refresh_interval=None)
class Bearer:
    """Marks every case as authenticated by us (so the fuzzer does not also mutate the header).

    Some cases are built while tests are collected, before any token exists: the test swaps
    the placeholder for its own token, a fresh one for a destructive operation.
    """

    def get(self, _case: Any, _ctx: Any) -> str:
        return PLACEHOLDER

    def set(self, case: Any, data: str, _ctx: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@pytest.fixture
def victims(app, sessions, settings) -> Victims:
    return Victims(sessions, settings)


@schema.parametrize()
@settings(deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_api(case, app, token, victims):
    operation = (case.method.upper(), case.path)
    targets = DESTRUCTIVE.get(operation) or AIMED.get(operation) or {}
    if not (case.meta and case.meta.is_negative_at(ParameterLocation.PATH)):
        for name, victim in targets.items():  # valid ids: make them this test's victims
            case.path_parameters[name] = victims.ids[victim]
    if case.headers and case.headers.get("Authorization") == f"Bearer {PLACEHOLDER}":
        own = victims.token() if operation in DESTRUCTIVE else token
        case.headers["Authorization"] = f"Bearer {own}"
    case.operation.schema.app = app  # in-process WSGI, for the checks' own probes too (this test's app)
    case.call_and_validate(app=app)
    CASES[case.operation.label, app.config["SETTINGS"].database_url.split(":")[0]] += 1
