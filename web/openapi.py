"""The HTTP contract as an OpenAPI 3 document, built with apispec: GET /api/v1/openapi.json."""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from flask import Flask, jsonify

ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(code): _json(ERROR, "Error") for code in codes}


def _op(
    summary: str,
    ok: int = 200,
    ok_schema: dict[str, Any] | None = None,
    errors: tuple[int, ...] = (401, 404),
    body: dict[str, Any] | None = None,
    secured: bool = True,
    content: str = "application/json",
) -> dict:
    responses: dict[str, Any] = {str(ok): _json(ok_schema or {"type": "object"})} | _errors(*errors)
    if content != "application/json":
        responses[str(ok)] = {"description": "OK", "content": {content: {"schema": {"type": "string"}}}}
    op: dict[str, Any] = {"summary": summary, "responses": responses}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if not secured:
        op["security"] = []
    return op


def build_spec() -> dict[str, Any]:
    """The OpenAPI document of the API."""
    spec = APISpec(title="Mass user creation API", version="1.0.0", openapi_version="3.0.3")
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.schema(
        "Error",
        {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": {}},
                }
            },
        },
    )
    spec.components.schema(
        "Mapping",
        {
            "type": "object",
            "required": ["username", "email", "extension", "role"],
            "additionalProperties": True,
        },
    )
    spec.components.schema(
        "ImportStatus",
        {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "status": {
                    "type": "string",
                    "enum": ["queued", "validating", "running", "succeeded", "failed", "cancelled"],
                },
                "dry_run": {"type": "boolean"},
                "total": {"type": "integer"},
                "processed": {"type": "integer"},
                "created": {"type": "integer"},
                "duplicates": {"type": "integer"},
                "errors": {"type": "integer"},
                "percent": {"type": "integer"},
                "error": {"type": "string", "nullable": True},
                "links": {"type": "object"},
            },
        },
    )
    status = {"$ref": "#/components/schemas/ImportStatus"}
    items = {"type": "object", "properties": {"items": {"type": "array", "items": {"type": "object"}}}}
    p = spec.path
    p("/healthz", operations={"get": _op("Liveness", errors=(), secured=False)})
    p(
        "/readyz",
        operations={"get": _op("Readiness: database, Redis, a worker", errors=(503,), secured=False)},
    )
    p(
        "/api/v1/auth/token",
        operations={
            "post": _op(
                "Get a bearer token (admins); the answers ask for `code` and `new_password` as needed: "
                "401 code_required, 403 enrolment_required, 403 password_change_required, "
                "403 network_not_allowed, 403 admin_required, 423 account_locked, 401 invalid_credentials "
                "or invalid_code, 503 code_not_sent or mail_unavailable",
                errors=(400, 401, 403, 422, 423, 429, 503),
                secured=False,
                body={
                    "type": "object",
                    "required": ["tenant", "username", "password"],
                    "properties": {
                        "tenant": {"type": "string"},
                        "username": {"type": "string"},
                        "password": {"type": "string"},
                        "code": {
                            "type": "string",
                            "description": "one-time code (authenticator, email) or a recovery code",
                        },
                        "new_password": {"type": "string", "minLength": 12},
                    },
                },
                ok_schema={
                    "type": "object",
                    "properties": {
                        "token": {"type": "string"},
                        "expires_at": {"type": "string"},
                        "recovery_codes": {
                            "type": "array",
                            "items": {"type": "string"},
                            "description": "only when an authenticator was enrolled by this call; shown once",
                        },
                    },
                },
            ),
            "delete": {
                "summary": "Revoke the bearer token sent with this request",
                "responses": {"204": {"description": "Revoked"}} | _errors(401),
            },
        },
    )
    for kind in ("roles", "desks", "skill-groups", "pbx-domains"):
        p(f"/api/v1/{kind}", operations={"get": _op(f"List {kind}", ok_schema=items, errors=(401,))})
        p(f"/api/v1/{kind}/{{id}}", operations={"get": _op(f"One of {kind}")})
    p("/api/v1/users", operations={"get": _op("List users (page, per_page, q, import_id)", ok_schema=items)})
    user = {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "auth_type": {"type": "string", "enum": ["default", "disabled", "email_otp", "google_2fa"]},
            "effective_auth_type": {"type": "string", "enum": ["disabled", "email_otp", "google_2fa"]},
            "second_factor_enrolled": {"type": "boolean"},
            "locked": {"type": "boolean"},
            "failed_logins": {"type": "integer"},
            "last_login_at": {"type": "string", "nullable": True},
        },
        "additionalProperties": True,
    }
    p("/api/v1/users/{id}", operations={"get": _op("One user", ok_schema=user)})
    p(
        "/api/v1/users/{id}/reset-password",
        operations={
            "post": _op("Reset a user's password (also unlocks it and ends its sessions and tokens)")
        },
    )
    p(
        "/api/v1/users/{id}/unlock",
        operations={"post": _op("Unlock an account locked after failed logins", ok_schema=user)},
    )
    p(
        "/api/v1/roles/{id}",
        operations={
            "patch": _op(
                "Set a role's authentication default",
                errors=(400, 401, 403, 404),
                body={
                    "type": "object",
                    "required": ["auth_default"],
                    "properties": {
                        "auth_default": {
                            "type": "string",
                            "nullable": True,
                            "enum": ["default", "disabled", "email_otp", "google_2fa"],
                            "description": "default or null: the tenant's",
                        }
                    },
                },
            )
        },
    )
    p("/api/v1/imports/template.csv", operations={"get": _op("CSV template", content="text/csv")})
    p(
        "/api/v1/imports/template.xlsx",
        operations={
            "get": _op(
                "XLSX template", content="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            )
        },
    )
    p(
        "/api/v1/uploads",
        operations={
            "post": {
                "summary": "Upload a CSV or XLSX file (multipart part `file`)",
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "properties": {"file": {"type": "string", "format": "binary"}},
                            }
                        }
                    },
                },
                "responses": {"201": _json({"type": "object"}, "Created")} | _errors(400, 401, 413, 415),
            }
        },
    )
    p("/api/v1/uploads/{id}", operations={"get": _op("An upload's headers, preview and suggested mapping")})
    p(
        "/api/v1/imports",
        operations={
            "get": _op("The tenant's imports, newest first", ok_schema=items),
            "post": _op(
                "Start an import",
                ok=202,
                ok_schema=status,
                errors=(400, 401, 404, 422),
                body={
                    "type": "object",
                    "required": ["upload_id", "mapping"],
                    "properties": {
                        "upload_id": {"type": "string"},
                        "mapping": {"$ref": "#/components/schemas/Mapping"},
                        "dry_run": {"type": "boolean"},
                    },
                },
            ),
        },
    )
    p("/api/v1/imports/{id}", operations={"get": _op("Import status", ok_schema=status)})
    p(
        "/api/v1/imports/{id}/events",
        operations={"get": _op("Progress as Server-Sent Events", content="text/event-stream")},
    )
    p("/api/v1/imports/{id}/errors.csv", operations={"get": _op("Error details", content="text/csv")})
    p(
        "/api/v1/imports/{id}/success.csv",
        operations={
            "get": _op("Success details with temporary passwords", content="text/csv", errors=(401, 404, 410))
        },
    )
    p("/api/v1/imports/{id}/acknowledge", operations={"post": _op("Destroy the temporary passwords")})
    p(
        "/api/v1/imports/{id}/cancel",
        operations={"post": _op("Cancel the import", ok=202, errors=(401, 404, 409))},
    )
    document = spec.to_dict()
    document["security"] = [{"bearer": []}]
    return document


def init_app(app: Flask) -> None:
    """Serve the document."""
    document = build_spec()

    @app.get("/api/v1/openapi.json")
    def openapi_document() -> Any:
        return jsonify(document)
