"""A real client: schemathesis generates requests from the OpenAPI document and checks every answer.

Each operation is one test on a freshly seeded database, with every default check (no 5xx,
statuses, content types, headers and bodies as documented, valid data accepted, invalid data
refused, authentication enforced). The operations that destroy what they touch (a password
reset, an unlock, a revoked token, a cancel, an acknowledge, a role's default) get a token
of their own for each request and, unless the request's id is the malformed part, a victim
of their own: the fuzzer never ends its own session or the state the other requests rely on.
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
from sqlalchemy import select

from shared.auth import issue_token
from shared.jobs import create_job
from shared.models import Role, Tenant, Upload, User
from shared.settings import Settings
from tests.builders import basic_mapping
from web import create_app
from web.openapi import document

# Per operation and database, on top of the coverage phase's deterministic cases. FUZZ_SEED and
# FUZZ_EXAMPLES explore further by hand; the suite's run is fixed, so it repeats exactly.
MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))
SEED = int(os.environ.get("FUZZ_SEED", "20260917"))
# Valid requests that a schema cannot tell from a bad file: the file's content decides.
FILE_STATUSES = ["2xx", "400", "401", "403", "404", "409", "413", "415", "429"]
DESTRUCTIVE: dict[tuple[str, str], str | None] = {
    ("POST", "/api/v1/users/{user_id}/reset-password"): "user_id",
    ("POST", "/api/v1/users/{user_id}/unlock"): "user_id",
    ("POST", "/api/v1/imports/{job_id}/cancel"): "job_id",
    ("POST", "/api/v1/imports/{job_id}/acknowledge"): "job_id",
    ("PATCH", "/api/v1/roles/{role_id}"): "role_id",
    ("DELETE", "/api/v1/auth/token"): None,
}
CASES: Counter[tuple[str, str]] = Counter()  # (operation, database) -> requests sent
SECONDS = [0.0]


def _document() -> dict[str, Any]:
    create_app(Settings(database_url="sqlite://", secret_key="fuzz", encryption_key="fuzz"))  # views register
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
    """What a destructive operation may destroy: its own token per request, its own user, job, role."""

    def __init__(self, sessions, settings: Settings) -> None:
        self.sessions = sessions
        self.settings = settings
        with sessions.begin() as session:
            tenant = session.scalar(select(Tenant).where(Tenant.slug == "demo"))
            agent = session.scalar(select(Role).where(Role.tenant_id == tenant.id, Role.name == "Agent"))
            user = User(
                tenant_id=tenant.id,
                username="victim",
                email="victim@demo.example",
                extension="1999",
                role_id=agent.id,
                password_hash="x",
            )
            role = Role(tenant_id=tenant.id, name="Victims", permissions=[])
            upload = Upload(
                tenant_id=tenant.id,
                filename="victims.csv",
                format="csv",
                size=30,
                content=b"Username,Email\nv1,v1@x.example\n",
                headers=["Username", "Email"],
                row_count=1,
            )
            session.add_all([user, role, upload])
            session.flush()
            job = create_job(session, tenant.id, None, upload.id, basic_mapping(agent.id), dry_run=False)
            self.ids = {"user_id": user.id, "role_id": role.id, "job_id": job.id}
            self.admin_id = session.scalar(select(User.id).where(User.username == "admin"))

    def token(self) -> str:
        with self.sessions.begin() as session:
            return issue_token(session, self.settings, session.get(User, self.admin_id))[0]


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
    name = DESTRUCTIVE.get((case.method.upper(), case.path), "")
    if name and not (case.meta and case.meta.is_negative_at(ParameterLocation.PATH)):
        case.path_parameters[name] = victims.ids[name]  # a valid id: make it this test's victim
    if case.headers and case.headers.get("Authorization") == f"Bearer {PLACEHOLDER}":
        own = victims.token() if (case.method.upper(), case.path) in DESTRUCTIVE else token
        case.headers["Authorization"] = f"Bearer {own}"
    case.operation.schema.app = app  # in-process WSGI, for the checks' own probes too (this test's app)
    case.call_and_validate(app=app)
    CASES[case.operation.label, app.config["SETTINGS"].database_url.split(":")[0]] += 1
