"""The route table of the HTTP contract: each view bound to its request and answer models.

    @route(bp, "GET", "/users", query=UsersQuery, answer=UserPage)
    def users_index(query: UsersQuery) -> Any: ...

`route` adds the URL rule, checks the caller (admins by default; `prefetch` may first read from
Redis what the check and the view need, in one round trip), parses the query and the
JSON body into their models (a 400 names every bad field) before the view runs, and records
the endpoint in ENDPOINTS, from which web/contract/openapi.py writes the document. Path ids use the
`id` (1 to 2³¹-1) and `hex` (32 hex digits) converters: anything else never reaches a
query; it answers 404 like an id that does not exist.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from functools import wraps
from typing import Any, ClassVar, TypeVar

from flask import Blueprint, Flask, request
from pydantic import BaseModel, ValidationError
from werkzeug.routing import BaseConverter

from shared.errors import DomainError
from shared.models import MAX_ID
from web.security import api_auth

F = TypeVar("F", bound=Callable[..., Any])
JSON = "application/json"


def at_most(limit: int) -> str:
    """A regular expression for the whole numbers 1 to `limit`, in ASCII digits without leading zeros."""
    digits = str(limit)
    shorter = [f"[1-9][0-9]{{0,{len(digits) - 2}}}"] if len(digits) > 1 else []
    same_length = [  # the same first i digits, a smaller one at i, any digits after it
        f"{digits[:i]}[{lowest}-{int(d) - 1}][0-9]{{{len(digits) - i - 1}}}"
        for i, d in enumerate(digits)
        if int(d) > int(lowest := "1" if i == 0 else "0")
    ]
    return "|".join([*shorter, *same_length, digits])


class IdConverter(BaseConverter):
    """A database id in a path: ASCII digits, 1 to MAX_ID, no leading zero.

    Anything else ('³', 10**20, 2**31 on PostgreSQL's INTEGER keys) matches no rule, so it is a
    404 whatever the method (a converter that refused it after matching would make werkzeug
    answer 405 for the other methods of the path), and it never reaches a query.
    """

    regex = at_most(MAX_ID)
    part_isolating = True
    schema: ClassVar[dict[str, Any]] = {"type": "integer", "minimum": 1, "maximum": MAX_ID}

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: Any) -> str:
        return str(int(value))


class HexIdConverter(BaseConverter):
    """An upload's or import's id in a path: 32 lower-case hex digits."""

    regex = r"[0-9a-f]{32}"
    part_isolating = True
    schema: ClassVar[dict[str, Any]] = {"type": "string", "pattern": "^[0-9a-f]{32}$"}


CONVERTERS: dict[str, type[BaseConverter]] = {"id": IdConverter, "hex": HexIdConverter}


class Caller(Enum):
    """Who may call an endpoint."""

    ADMIN = "admin"  # a bearer token or a page session of an admin (web.security.api_auth)
    TOKEN = "token"  # the bearer token itself is the subject (revoking it); the view checks it
    ANYONE = "anyone"


@dataclass(frozen=True)
class Endpoint:
    """One operation of the contract, as the document shows it."""

    method: str
    path: str  # the Flask rule with the blueprint's prefix
    name: str  # operationId: the view's name
    summary: str
    caller: Caller
    status: int
    answer: type[BaseModel] | None  # the JSON answer; None for a file or an empty answer
    also: tuple[int, ...]  # other success statuses with the same answer (200 for a save that replaced)
    media: str | None  # the answer's media type (None: no body)
    query: type[BaseModel] | None
    body: type[BaseModel] | None
    body_required: bool  # False: a request without a body means the body model's defaults
    form: type[BaseModel] | None
    errors: dict[int, type[BaseModel] | None]  # status -> model (None: the contract's Error)
    headers: dict[str, str] = field(default_factory=dict)  # answer headers -> description
    description: str = ""


ENDPOINTS: list[Endpoint] = []


def route(
    blueprint: Blueprint,
    method: str,
    rule: str,
    *,
    answer: type[BaseModel] | None = None,
    status: int = 200,
    also: tuple[int, ...] = (),
    media: str | None = JSON,
    query: type[BaseModel] | None = None,
    body: type[BaseModel] | None = None,
    body_required: bool = True,
    form: type[BaseModel] | None = None,
    errors: tuple[int, ...] | dict[int, type[BaseModel] | None] = (),
    headers: dict[str, str] | None = None,
    caller: Caller = Caller.ADMIN,
    prefetch: Callable[..., None] | None = None,
    name: str | None = None,
    summary: str | None = None,
    description: str = "",
) -> Callable[[F], F]:
    """Register a view under `rule`, bound to its models (see the module's docstring)."""

    def decorate(view: F) -> F:
        endpoint = name or view.__name__

        @wraps(view)
        def handle(**kwargs: Any) -> Any:
            if query is not None:
                kwargs["query"] = parse(query, request.args.to_dict(), "invalid_parameter")
            if body is not None:
                sent = body_required or request.get_data()  # read, so a chunked body counts too
                kwargs["body"] = parse(body, json_object() if sent else {}, "invalid_field")
            return view(**kwargs)

        guarded = api_auth(handle) if caller is Caller.ADMIN else handle
        if prefetch is not None:
            guarded = _prefetching(prefetch, guarded)
        blueprint.add_url_rule(rule, endpoint, guarded, methods=[method])
        ENDPOINTS.append(
            Endpoint(
                method=method.lower(),
                path=(blueprint.url_prefix or "") + rule,
                name=endpoint,
                summary=summary or (view.__doc__ or endpoint).strip().splitlines()[0].rstrip("."),
                caller=caller,
                status=status,
                also=also,
                answer=answer,
                media=media,
                query=query,
                body=body,
                body_required=body_required,
                form=form,
                errors=_errors(method, rule, caller, query, body, form, errors),
                headers=headers or {},
                description=description,
            )
        )
        return view

    return decorate


def _prefetching(prefetch: Callable[..., None], guarded: Callable[..., Any]) -> Callable[..., Any]:
    """Run `prefetch(**path)` before the caller is checked: reads the check can share a round trip with."""

    @wraps(guarded)
    def handle(**kwargs: Any) -> Any:
        prefetch(**kwargs)
        return guarded(**kwargs)

    return handle


def _errors(
    method: str,
    rule: str,
    caller: Caller,
    query: type[BaseModel] | None,
    body: type[BaseModel] | None,
    form: type[BaseModel] | None,
    extra: tuple[int, ...] | dict[int, type[BaseModel] | None],
) -> dict[int, type[BaseModel] | None]:
    """The error answers any such endpoint can give, plus the ones it names."""
    codes: set[int] = {503}  # the database or Redis does not answer
    if caller is not Caller.ANYONE:
        codes.add(401)
    if caller is Caller.ADMIN:
        codes.add(403)  # not an admin
        if method.upper() != "GET":
            codes.add(400)  # a cookie caller without the CSRF token
    if "<" in rule:
        codes.add(404)
    if query is not None or body is not None or form is not None:
        codes.add(400)
    if body is not None or form is not None:
        codes.add(413)
    found: dict[int, type[BaseModel] | None] = dict.fromkeys(sorted(codes))
    found |= extra if isinstance(extra, dict) else dict.fromkeys(extra)
    return dict(sorted(found.items()))


def json_object() -> dict[str, Any]:
    """The request's JSON object, or a 400 that says what is wrong."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise DomainError("invalid_json", "Send a JSON object with Content-Type: application/json.")
    return data


def parse(model: type[BaseModel], data: dict[str, Any], code: str) -> Any:
    """The data as the model, or a 400 naming each missing and each bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid(exc, code, getattr(model, "error_codes", {})) from None


def field_path(loc: tuple[int | str, ...]) -> str:
    """Where a problem is, as the answers name it: `rows.2.values`."""
    return ".".join(str(part) for part in loc)


def invalid(exc: ValidationError, code: str, codes: dict[str, str] | None = None) -> DomainError:
    """A 400 listing the fields: `missing` (names) and `invalid` (field and message).

    `codes` keeps a field's own older error code (invalid_auth_default) when it is the only bad one.
    """
    missing: list[str] = []
    bad: list[dict[str, str]] = []
    for problem in exc.errors(include_url=False, include_input=False):
        where = field_path(problem["loc"])
        if problem["type"] == "missing":
            missing.append(where)
        else:
            bad.append({"field": where, "message": problem["msg"]})
    details: dict[str, Any] = {}
    if missing:
        details["missing"] = missing
    if bad:
        details["invalid"] = bad
    if not bad:
        return DomainError("missing_fields", "Missing: " + ", ".join(missing), details)
    fields = {p["field"] for p in bad}
    if not missing and len(fields) == 1 and (own := (codes or {}).get(fields.pop())):
        code = own
    told = [f"{p['field']}: {p['message']}" for p in bad] + [f"{name}: missing" for name in missing]
    return DomainError(code, "; ".join(told) + ".", details)


def init_app(app: Flask) -> None:
    """Register the path converters (before any blueprint's rules)."""
    app.url_map.converters.update(CONVERTERS)
