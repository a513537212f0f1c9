"""The column mapping of an import: parsed and checked as a whole before a job exists."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from shared.errors import InvalidMapping
from shared.mapping.fields import BY_KEY, FIELDS, Field, Source
from shared.models import AUTH_TYPES, MAX_ID, REFERENCE_LABELS, SIP_MODES, PbxDomain

SETTINGS_KEYS = {"sip", "auth_type", "security", "digits_only_passwords", "credentials"}
# How the new users get their first password: in success.csv, or by an emailed invitation.
TEMPORARY_PASSWORD, INVITATION = "temporary_password", "invitation"
CREDENTIALS = (TEMPORARY_PASSWORD, INVITATION)
HINTS_KEY = "columns"  # hints of the suggested mapping (SIP URI, device columns), ignored here
SIP_LABELS = {"sip.device": "PBX device", "sip.uri": "SIP URI"}
SESSION_TIMEOUT_MAX = 7 * 24 * 60  # minutes: a week
LOCK_AFTER_MAX = 100  # failed logins


@dataclass(frozen=True)
class FieldSource:
    """Where a field's value comes from: a column of the file, one value for all rows, or generated."""

    column: str | None = None
    value: Any = None
    generate: bool = False


@dataclass(frozen=True)
class Security:
    allowed_networks: list[str] | None = None
    session_timeout_minutes: int | None = None
    force_password_change: bool = True
    lock_after_failed_logins: int | None = None


@dataclass(frozen=True)
class Mapping:
    """A checked mapping: each mapped field's source, and the settings for every user of the file."""

    sources: dict[str, FieldSource]
    sip_mode: str = "webrtc"
    pbx_domain_id: int | None = None
    device_column: str | None = None
    uri_column: str | None = None
    auth_type: str = "default"
    security: Security | None = None
    digits_only_passwords: bool = False
    credentials: str = TEMPORARY_PASSWORD

    @property
    def invites(self) -> bool:
        """Whether the users get an emailed invitation instead of a temporary password."""
        return self.credentials == INVITATION

    def source(self, key: str) -> FieldSource | None:
        """The source of a field, or None when it is not mapped."""
        return self.sources.get(key)

    @property
    def columns(self) -> list[str]:
        """Every file column the mapping reads."""
        used = [s.column for s in self.sources.values() if s.column]
        return used + [c for c in (self.device_column, self.uri_column) if c]


class _Parser:
    """Collects every problem instead of stopping at the first."""

    def __init__(self, raw: dict[str, Any], headers: list[str]) -> None:
        self.raw = raw
        self.headers = headers
        self.problems: list[dict[str, str]] = []
        self.ids: list[tuple[str, type, int]] = []  # (field, model, id) to check against the tenant

    def problem(self, field_name: str, message: str) -> None:
        self.problems.append({"field": field_name, "message": message})

    def column(self, field_name: str, spec: Any, label: str) -> str | None:
        if not isinstance(spec, dict) or not isinstance(spec.get("column"), str) or not spec["column"]:
            self.problem(field_name, f'{label} must be given as {{"column": "<header>"}}.')
            return None
        if spec["column"] not in self.headers:
            self.problem(field_name, f'{label}: the file has no column "{spec["column"]}".')
            return None
        return spec["column"]

    def field(self, f: Field) -> FieldSource | None:
        spec = self.raw.get(f.key)
        if spec is None:
            if f.required:
                self.problem(f.key, f"{f.label} must be mapped.")
            return None
        if f.column_only:
            column = self.column(f.key, spec, f.label)
            return FieldSource(column=column) if column else None
        if not isinstance(spec, dict):
            self.problem(f.key, f"{f.label} must be {self._forms(f)}.")
            return None
        if Source.GENERATE in f.sources and spec.get("generate") is True:
            return FieldSource(generate=True)
        if "column" in spec:
            column = self.column(f.key, spec, f.label)
            return FieldSource(column=column) if column else None
        if Source.VALUE in f.sources and "value" in spec:
            return self.value(f, spec["value"])
        self.problem(f.key, f"{f.label} must be {self._forms(f)}.")
        return None

    @staticmethod
    def _forms(f: Field) -> str:
        forms = {
            Source.COLUMN: '{"column": "<header>"}',
            Source.VALUE: '{"value": [<ID>, ...]}' if f.many else '{"value": <ID>}',
            Source.GENERATE: '{"generate": true}',
        }
        return " or ".join(forms[s] for s in f.sources)

    def value(self, f: Field, raw: Any) -> FieldSource | None:
        if f.many and not isinstance(raw, list):
            self.problem(f.key, f"{f.label}: value must be a list of IDs.")
            return None
        good = []
        for value in raw if f.many else [raw]:
            if isinstance(value, bool) or not isinstance(value, int):
                self.problem(f.key, f"{f.label}: {value!r} is not an ID.")
            else:
                self.ids.append((f.key, f.entity, value))
                good.append(value)
        if not f.many and not good:
            return None
        return FieldSource(value=good if f.many else good[0])


def parse_mapping(raw: Any, headers: list[str]) -> tuple[Mapping | None, _Parser]:
    """Parse the shape of a mapping against the file's headers (no database needed)."""
    p = _Parser(raw if isinstance(raw, dict) else {}, headers)
    if not isinstance(raw, dict):
        p.problem("mapping", "The mapping must be a JSON object.")
        return None, p
    for key in sorted(set(raw) - set(BY_KEY) - SETTINGS_KEYS - {HINTS_KEY}):
        p.problem(key, f'Unknown mapping field "{key}".')
    sources = {f.key: source for f in FIELDS if (source := p.field(f)) is not None}
    mode, domain_id, device, uri = _sip(p, raw.get("sip") or {"mode": "webrtc"})
    auth_type = raw.get("auth_type", "default")
    if auth_type not in AUTH_TYPES:
        p.problem("auth_type", f"Authentication type must be one of {', '.join(AUTH_TYPES)}.")
    security = _security(p, raw.get("security"))
    digits_only = raw.get("digits_only_passwords", False)
    if not isinstance(digits_only, bool):
        p.problem("digits_only_passwords", "digits_only_passwords must be true or false.")
    credentials = raw.get("credentials", TEMPORARY_PASSWORD)
    if credentials not in CREDENTIALS:
        p.problem("credentials", f"credentials must be one of {', '.join(CREDENTIALS)}.")
    if p.problems:
        return None, p
    mapping = Mapping(
        sources=sources,
        sip_mode=mode,
        pbx_domain_id=domain_id,
        device_column=device,
        uri_column=uri,
        auth_type=auth_type,
        security=security,
        digits_only_passwords=digits_only,
        credentials=credentials,
    )
    return mapping, p


def _sip(p: _Parser, sip: Any) -> tuple[str, int | None, str | None, str | None]:
    mode = sip.get("mode") if isinstance(sip, dict) else None
    domain_id = device = uri = None
    if mode not in SIP_MODES:
        p.problem("sip.mode", f"SIP mode must be one of {', '.join(SIP_MODES)}.")
        return "webrtc", None, None, None
    if mode == "classic_pbx":
        domain_id = sip.get("domain_id")
        if isinstance(domain_id, bool) or not isinstance(domain_id, int):
            p.problem("sip.domain_id", "Use CommPeak classic PBX needs a PBX domain.")
            domain_id = None
        else:
            p.ids.append(("sip.domain_id", PbxDomain, domain_id))
        if sip.get("device") is None:
            p.problem("sip.device", "Use CommPeak classic PBX needs the column with PBX device numbers.")
        else:
            device = p.column("sip.device", sip["device"], SIP_LABELS["sip.device"])
    elif mode == "custom_uri":
        if sip.get("uri") is None:
            p.problem("sip.uri", "Use Custom URI needs the column with each user's SIP URI.")
        else:
            uri = p.column("sip.uri", sip["uri"], SIP_LABELS["sip.uri"])
    return mode, domain_id, device, uri


def _positive(p: _Parser, raw: dict[str, Any], key: str, label: str, most: int) -> int | None:
    value = raw.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        p.problem(f"security.{key}", f"{label} must be a whole number from 1 to {most}.")
        return None
    return value


def _security(p: _Parser, raw: Any) -> Security | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        p.problem("security", "Advanced security settings must be an object or null.")
        return None
    networks = raw.get("allowed_networks")
    clean: list[str] | None = None
    if networks not in (None, []):
        if not isinstance(networks, list):
            p.problem("security.allowed_networks", "Allowed IP networks must be a list of CIDR networks.")
        else:
            clean = []
            for net in networks:
                try:
                    clean.append(str(ipaddress.ip_network(str(net).strip(), strict=False)))
                except ValueError:
                    p.problem("security.allowed_networks", f'"{net}" is not an IP network like 10.0.0.0/8.')
    force = raw.get("force_password_change", True)
    if not isinstance(force, bool):
        p.problem("security.force_password_change", "Force password change must be true or false.")
        force = True
    return Security(
        allowed_networks=clean,
        session_timeout_minutes=_positive(
            p, raw, "session_timeout_minutes", "Session timeout", SESSION_TIMEOUT_MAX
        ),
        force_password_change=force,
        lock_after_failed_logins=_positive(
            p, raw, "lock_after_failed_logins", "Lock after failed logins", LOCK_AFTER_MAX
        ),
    )


def check_mapping(session: Session, tenant_id: int, raw: Any, headers: list[str]) -> Mapping:
    """The parsed mapping, or InvalidMapping listing every problem (columns and IDs of the tenant)."""
    mapping, p = parse_mapping(raw, headers)
    for field_name, model, entity_id in p.ids:
        entity = session.get(model, entity_id) if 1 <= entity_id <= MAX_ID else None
        if entity is None or entity.tenant_id != tenant_id:
            p.problem(field_name, f"{REFERENCE_LABELS[model]} {entity_id} does not exist.")
    if p.problems or mapping is None:
        raise InvalidMapping(p.problems)
    return mapping


def named_columns(raw: Any) -> list[str]:
    """Every column a raw mapping names (fields, PBX device, SIP URI), in mapping order, once each."""
    if not isinstance(raw, dict):
        return []
    specs = [raw.get(f.key) for f in FIELDS]
    sip = raw.get("sip")
    if isinstance(sip, dict):
        specs += [sip.get("device"), sip.get("uri")]
    named = [s["column"] for s in specs if isinstance(s, dict) and isinstance(s.get("column"), str)]
    return list(dict.fromkeys(named))


def load_mapping(raw: dict[str, Any], headers: list[str]) -> Mapping:
    """Rebuild a mapping that was checked when its job was made."""
    mapping, p = parse_mapping(raw, headers)
    if mapping is None:
        raise InvalidMapping(p.problems)
    return mapping
