"""Audit trail: who did what to which resource, never with secret values."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.metrics import count_audited
from shared.models import AuditEvent


def record(
    session: Session,
    tenant_id: int,
    actor_id: int | None,
    action: str,
    target: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an audit event to the caller's transaction."""
    event = AuditEvent(tenant_id=tenant_id, actor_id=actor_id, action=action, target=target, details=details)
    session.add(event)
    count_audited(session, action, details)  # logins and lockouts are metrics too
    return event


def list_events(
    session: Session, tenant_id: int, prefix: str | None = None, limit: int = 200
) -> list[AuditEvent]:
    """The tenant's newest events, optionally only actions starting with the prefix."""
    query = select(AuditEvent).where(AuditEvent.tenant_id == tenant_id)
    if prefix:
        query = query.where(AuditEvent.action.startswith(prefix, autoescape=True))
    return list(session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit)))
