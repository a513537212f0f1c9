"""The HTTP contract as an OpenAPI 3.1 document, written from the route table: GET /api/v1/openapi.json.

Nothing here lists an endpoint or a field: paths, parameters, bodies and answers come from the
`route` declarations (web/contract/routes.py) and their pydantic models (web/contract/schemas/), whose JSON
Schema (2020-12) is OpenAPI 3.1's own.
"""

from __future__ import annotations

import re
from functools import cache
from http import HTTPStatus
from typing import Any

from flask import Blueprint, Flask, jsonify
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, models_json_schema

from web.contract.routes import CONVERTERS, ENDPOINTS, JSON, Caller, Endpoint, route
from web.contract.schemas.common import Document, Error

bp = Blueprint("openapi", __name__, url_prefix="/api/v1")
EVENT_STREAM = "text/event-stream"
OPENAPI_VERSION = "3.2.0"  # 3.2 for itemSchema: an event stream described event by event
REF = "#/components/schemas/{model}"
_VARIABLE = re.compile(r"<(?:(?P<converter>\w+)(?:\([^)]*\))?:)?(?P<name>\w+)>")
_BINARY = {"type": "string", "format": "binary"}


class _Generator(GenerateJsonSchema):
    """Pydantic's JSON Schema without a title on every field (the field's name says it)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def _models(endpoints: list[Endpoint]) -> list[type[BaseModel]]:
    found: dict[type[BaseModel], None] = {Error: None}
    for e in endpoints:
        for model in (e.answer, e.body, e.form, *e.errors.values()):
            if model is not None:
                found[model] = None
    return list(found)


def _path(rule: str) -> tuple[str, list[dict[str, Any]]]:
    """The OpenAPI path of a Flask rule and its path parameters, typed by their converters."""
    parameters = []
    for match in _VARIABLE.finditer(rule):
        converter = CONVERTERS.get(match["converter"] or "")
        schema = dict(converter.schema) if converter is not None else {"type": "string"}  # type: ignore[attr-defined]
        parameters.append({"name": match["name"], "in": "path", "required": True, "schema": schema})
    return _VARIABLE.sub(lambda m: "{" + m["name"] + "}", rule), parameters


def _query(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(schema_generator=_Generator)
    required = set(schema.get("required", []))
    parameters = []
    for name, prop in schema["properties"].items():
        prop = dict(prop)
        choices = [c for c in prop.pop("anyOf", []) if c != {"type": "null"}]
        if choices:  # a query string cannot say null: an optional parameter is simply left out
            prop = (choices[0] if len(choices) == 1 else {"anyOf": choices}) | prop
        if prop.get("default", ...) is None:
            del prop["default"]
        parameter = {"name": name, "in": "query", "required": name in required}
        if "description" in prop:
            parameter["description"] = prop.pop("description")
        parameters.append(parameter | {"schema": prop})
    return parameters


def _json(schema: dict[str, Any], description: str, media: str = JSON) -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": schema}}}


def _event(data: dict[str, Any]) -> dict[str, Any]:
    """One Server-Sent Event whose `data` is a JSON document of the given schema (OpenAPI 3.2)."""
    return {
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "event": {"const": "progress"},
            "data": {"type": "string", "contentMediaType": JSON, "contentSchema": data},
        },
    }


def _success(e: Endpoint, status: int, refs: dict[type[BaseModel], dict[str, Any]]) -> dict[str, Any]:
    """A success answer: its body (JSON, a file or none) and headers."""
    phrase = HTTPStatus(status).phrase
    if e.media is None:
        ok: dict[str, Any] = {"description": phrase}
    elif e.media == EVENT_STREAM and e.answer is not None:
        ok = {"description": phrase, "content": {EVENT_STREAM: {"itemSchema": _event(refs[e.answer])}}}
    elif e.answer is not None:
        ok = _json(refs[e.answer], phrase, e.media)
    else:
        ok = _json({"type": "string"} if e.media.startswith("text/") else _BINARY, phrase, e.media)
    if e.headers:
        ok["headers"] = {
            name: {"description": text, "required": True, "schema": {"type": "string"}}
            for name, text in e.headers.items()
        }
    return ok


def _operation(e: Endpoint, refs: dict[type[BaseModel], dict[str, Any]]) -> dict[str, Any]:
    path_parameters = _path(e.path)[1]
    op: dict[str, Any] = {"operationId": e.name, "summary": e.summary}
    if e.description:
        op["description"] = e.description
    parameters = path_parameters + (_query(e.query) if e.query is not None else [])
    if parameters:
        op["parameters"] = parameters
    if e.body is not None:
        op["requestBody"] = {"required": e.body_required, "content": {JSON: {"schema": refs[e.body]}}}
    if e.form is not None:
        op["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": refs[e.form]}}}
    op["responses"] = {str(status): _success(e, status, refs) for status in (e.status, *e.also)} | {
        str(status): _json(refs[model or Error], HTTPStatus(status).phrase)
        for status, model in e.errors.items()
    }
    if e.caller is Caller.ANYONE:
        op["security"] = []
    return op


def build_document(endpoints: list[Endpoint]) -> dict[str, Any]:
    """The OpenAPI document of these endpoints."""
    models = _models(endpoints)
    keyed, definitions = models_json_schema(
        [(m, "validation") for m in models], ref_template=REF, schema_generator=_Generator
    )
    refs = {model: keyed[(model, "validation")] for model in models}
    paths: dict[str, dict[str, Any]] = {}
    for e in endpoints:
        paths.setdefault(_path(e.path)[0], {})[e.method] = _operation(e, refs)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Mass user creation API",
            "version": "1.0.0",
            "description": "Errors answer the JSON body of the `Error` schema. Ids in paths that are not "
            "ids (not digits, past 64 bits, not 32 hex digits) answer 404 like ids that do not exist.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


@cache
def document() -> dict[str, Any]:
    """The document of every registered endpoint (built on first use: views register on import)."""
    return build_document(ENDPOINTS)


@route(bp, "GET", "/openapi.json", answer=Document, caller=Caller.ANYONE)
def openapi_document() -> Any:
    """This document."""
    return jsonify(document())


def init_app(app: Flask) -> None:
    """Serve the document."""
    app.register_blueprint(bp)
