"""Every JSON answer a test receives is checked against the model the contract declares for it.

Unknown fields are refused here (the published document leaves objects open), so a field the
code adds without declaring it in web/contract/schemas/ fails the test that saw it, as does an
answer status the route does not declare.
"""

from __future__ import annotations

from flask import Flask, Response, request
from pydantic import ValidationError

from web.contract.routes import ENDPOINTS, Endpoint
from web.contract.schemas.common import Error


def _endpoint() -> Endpoint | None:
    rule = request.url_rule.rule if request.url_rule is not None else None
    method = request.method.lower()
    return next((e for e in ENDPOINTS if e.path == rule and e.method == method), None)


def check_answers(app: Flask) -> list[str]:
    """Check the app's JSON answers from now on; returns the list that collects what does not conform."""
    violations: list[str] = []

    @app.after_request
    def _check(response: Response) -> Response:
        if not response.is_json or response.is_streamed:
            return response
        endpoint = _endpoint()
        status = response.status_code
        where = f"{request.method} {request.path} -> {status}"
        if endpoint is None:
            model = Error if request.path.startswith("/api/") and status >= 400 else None
        elif status in (endpoint.status, *endpoint.also):
            model = endpoint.answer
        elif status in endpoint.errors:
            model = endpoint.errors[status] or Error
        else:
            violations.append(f"{where}: status not declared for {endpoint.name}")
            return response
        if model is not None:
            try:
                model.model_validate(response.get_json())
            except ValidationError as exc:
                violations.append(f"{where}: {exc}")
        return response

    return violations
