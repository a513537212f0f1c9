"""The HTTP contract as an OpenAPI 3 document, built with apispec: GET /api/v1/openapi.json."""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from flask import Flask, jsonify

from shared.models import RowStatus

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
                    "enum": [
                        "queued",
                        "validating",
                        "running",
                        "succeeded",
                        "failed",
                        "cancelled",
                        "undoing",
                        "undone",
                    ],
                },
                "dry_run": {"type": "boolean"},
                "total": {"type": "integer"},
                "processed": {"type": "integer"},
                "created": {"type": "integer"},
                "duplicates": {"type": "integer"},
                "errors": {"type": "integer"},
                "percent": {"type": "integer"},
                "error": {"type": "string", "nullable": True},
                "undone": {"type": "integer", "description": "users an undo removed"},
                "undone_at": {"type": "string", "nullable": True},
                "retry_of": {
                    "type": "string",
                    "nullable": True,
                    "description": "the import this one retries",
                },
                "retried_by": {"type": "array", "items": {"type": "string"}},
                "regenerating": {"type": "boolean", "description": "new passwords are being made"},
                "regenerated": {"type": "integer", "description": "users holding the newest passwords"},
                "password_generation": {"type": "integer"},
                "passwords_regenerated_at": {"type": "string", "nullable": True},
                "links": {"type": "object"},
            },
        },
    )
    spec.components.schema(
        "SavedMapping",
        {
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "name": {"type": "string"},
                "mapping": {"$ref": "#/components/schemas/Mapping"},
                "columns": {"type": "array", "items": {"type": "string"}},
                "created_by": {"type": "string", "nullable": True},
                "created_at": {"type": "string"},
                "updated_at": {"type": "string"},
            },
        },
    )
    spec.components.schema(
        "RowProblem",
        {
            "type": "object",
            "properties": {
                "field": {"type": "string", "nullable": True, "description": "mapping key; null: the row"},
                "column": {
                    "type": "string",
                    "nullable": True,
                    "description": "the file column it is read from",
                },
                "message": {"type": "string"},
            },
        },
    )
    status = {"$ref": "#/components/schemas/ImportStatus"}
    upload = {
        "type": "object",
        "properties": {
            "upload_id": {"type": "string"},
            "filename": {"type": "string"},
            "format": {"type": "string", "enum": ["csv", "xlsx"]},
            "headers": {"type": "array", "items": {"type": "string"}},
            "row_count": {"type": "integer"},
            "preview": {"type": "array", "items": {"type": "object"}},
            "suggested_mapping": {"type": "object", "description": "a mapping, possibly incomplete"},
            "suggested_from": {
                "type": "string",
                "description": "the saved mapping the suggestion comes from",
            },
            "suggestion_problems": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                },
                "description": "what the saved mapping chose that was deleted since (left out)",
            },
        },
    }
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
                "responses": {"201": _json(upload, "Created")} | _errors(400, 401, 413, 415),
            }
        },
    )
    p(
        "/api/v1/uploads/{id}",
        operations={"get": _op("An upload's headers, preview and suggested mapping", ok_schema=upload)},
    )
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
    _beyond_the_help_page(p, status)
    document = spec.to_dict()
    document["security"] = [{"bearer": []}]
    return document


def _beyond_the_help_page(p: Any, status: dict[str, Any]) -> None:
    """Undo, regenerated passwords, failed rows and retries, saved mappings (API.md)."""
    problem = {"$ref": "#/components/schemas/RowProblem"}
    saved = {"$ref": "#/components/schemas/SavedMapping"}
    values = {"type": "object", "additionalProperties": {"type": "string"}, "description": "cells by column"}
    p(
        "/api/v1/imports/{id}/undo",
        operations={
            "post": _op(
                "Remove the users this import created that still exist, within UNDO_WINDOW_HOURS of its end; "
                "409 undo_not_allowed while it runs, after the window, or twice",
                ok=202,
                ok_schema=status,
                errors=(401, 404, 409),
            )
        },
        parameters=[_path("id", "string")],
    )
    p(
        "/api/v1/imports/{id}/regenerate-passwords",
        operations={
            "post": _op(
                "New temporary passwords for every user of the import that still exists (they must change "
                "it, their sessions and tokens end); success.csv serves them; 409 regenerate_not_allowed "
                "while the import or an undo runs, after an undo, or during another regeneration",
                ok=202,
                ok_schema=status,
                errors=(401, 404, 409),
            )
        },
        parameters=[_path("id", "string")],
    )
    row = {
        "type": "object",
        "properties": {
            "row": {"type": "integer"},
            "status": {"type": "string", "enum": [s.value for s in RowStatus]},
            "values": values,
            "messages": {"type": "array", "items": {"type": "string"}},
            "problems": {"type": "array", "items": problem},
        },
    }
    p(
        "/api/v1/imports/{id}/rows",
        operations={
            "get": _op(
                "A page of the import's rows with their original values and messages",
                ok_schema={
                    "type": "object",
                    "properties": {
                        "items": {"type": "array", "items": row},
                        "total": {"type": "integer"},
                        "page": {"type": "integer"},
                        "per_page": {"type": "integer"},
                        "columns": {"type": "array", "items": {"type": "string"}},
                    },
                },
                errors=(400, 401, 404),
            )
            | {
                "parameters": [
                    _query("status", "error, duplicate, created, cancelled (several: comma separated)"),
                    _query("page", "from 1", "integer"),
                    _query("per_page", "1 to 200 (default 50)", "integer"),
                ]
            }
        },
        parameters=[_path("id", "string")],
    )
    p(
        "/api/v1/imports/{id}/rows/{row}/check",
        operations={
            "post": _op(
                "Check a row with corrected cells against the import's rules; every problem, per field",
                ok_schema={
                    "type": "object",
                    "properties": {
                        "row": {"type": "integer"},
                        "valid": {"type": "boolean"},
                        "problems": {"type": "array", "items": problem},
                    },
                },
                errors=(400, 401, 404, 422),
                body={"type": "object", "properties": {"values": values}},
            )
        },
        parameters=[_path("id", "string"), _path("row", "integer")],
    )
    p(
        "/api/v1/imports/{id}/retry",
        operations={
            "post": _op(
                "A new import (same mapping, retry_of) of this import's error and duplicate rows with the "
                "corrections applied; rows not listed go in unchanged",
                ok=202,
                ok_schema=status,
                errors=(400, 401, 404, 409, 422, 503),
                body={
                    "type": "object",
                    "properties": {
                        "rows": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["row"],
                                "properties": {"row": {"type": "integer"}, "values": values},
                            },
                        }
                    },
                },
            )
        },
        parameters=[_path("id", "string")],
    )
    p(
        "/api/v1/mappings",
        operations={
            "get": _op(
                "The tenant's saved mappings, newest first",
                ok_schema={"type": "object", "properties": {"items": {"type": "array", "items": saved}}},
                errors=(401,),
            ),
            "post": _op(
                "Save a mapping by name (201; 200 when it replaced the mapping of that name)",
                ok=201,
                ok_schema=saved,
                errors=(400, 401, 422),
                body={
                    "type": "object",
                    "required": ["name", "mapping"],
                    "properties": {
                        "name": {"type": "string", "maxLength": 100},
                        "mapping": {"$ref": "#/components/schemas/Mapping"},
                    },
                },
            ),
        },
    )
    p(
        "/api/v1/mappings/{id}",
        operations={
            "delete": {
                "summary": "Forget a saved mapping",
                "responses": {"204": {"description": "Deleted"}} | _errors(401, 404),
            }
        },
        parameters=[_path("id", "integer")],
    )


def _query(name: str, description: str, kind: str = "string") -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": kind},
    }


def _path(name: str, kind: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": kind}}


def init_app(app: Flask) -> None:
    """Serve the document."""
    document = build_spec()

    @app.get("/api/v1/openapi.json")
    def openapi_document() -> Any:
        return jsonify(document)
