"""Answers every endpoint shares: errors, health, the document itself, pages and lists."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from shared.dialer.users import MAX_PER_PAGE
from web.contract.bases import MAX_PAGE, Answer, Query, QueryInt


class ErrorBody(Answer):
    code: str = Field(pattern=r"^[a-z0-9_]+$", description="stable snake_case code")
    message: str = Field(description="what is wrong and how to fix it")
    details: Any = Field(default=None, description="the problems one by one, where there are several")


class Error(Answer):
    """Every 4xx and 5xx answer (API.md)."""

    error: ErrorBody


class Health(Answer):
    status: Literal["ok"]


class Readiness(Answer):
    """200 when the database, Redis and a worker answer; else 503 naming what is missing."""

    status: Literal["ready", "not_ready"]
    checks: dict[str, str] = Field(description='"ok" or "error: <kind>" for database, redis, workers')
    workers: list[str]
    missing: list[str] | None = None
    error: ErrorBody | None = None


class Document(Answer):
    """The OpenAPI document itself."""

    model_config = ConfigDict(extra="allow")
    openapi: str


class PageQuery(Query):
    page: QueryInt = Field(default=1, ge=1, le=MAX_PAGE, description="the page, from 1")
    per_page: QueryInt = Field(default=50, ge=1, le=MAX_PER_PAGE, description="items a page")


def list_of(item: type[BaseModel], name: str) -> type[BaseModel]:
    """An answer `{"items": [...]}` of one kind of item."""
    return create_model(name, __base__=Answer, items=(list[item], ...))  # type: ignore[valid-type]
