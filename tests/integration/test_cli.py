"""The admin commands: `flask --app web seed-demo | create-tenant | create-admin`."""

from __future__ import annotations

from sqlalchemy import func, select

from shared.accounts.passwords import verify_password
from shared.models import Tenant, User


def test_seed_demo_prints_a_generated_password_once_and_is_idempotent(clean_db, base_settings, session):
    from web import create_app

    with session.begin():
        session.query(User).delete()
        session.query(Tenant).delete()
    runner = create_app(base_settings).test_cli_runner()
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0, first.output
    password = first.output.split("Generated admin password (shown once): ", 1)[1].strip()
    admin = session.scalar(select(User).where(User.username == "admin"))
    assert verify_password(base_settings, admin.password_hash, password)
    second = runner.invoke(args=["seed-demo"])
    assert second.exit_code == 0 and "Generated" not in second.output
    assert "password is unchanged" in second.output
    assert session.scalar(select(func.count()).select_from(Tenant)) == 1


def test_create_tenant_and_admin(clean_db, base_settings, session):
    from web import create_app

    runner = create_app(base_settings).test_cli_runner()
    made = runner.invoke(args=["create-tenant", "Acme", "--extension-min", "200", "--extension-max", "299"])
    assert made.exit_code == 0 and "Created tenant acme" in made.output
    again = runner.invoke(args=["create-tenant", "acme"])
    assert again.exit_code != 0
    admin = runner.invoke(
        args=["create-admin", "acme", "boss", "--email", "Boss@Acme.example", "--password", "Boss-Pass-123"]
    )
    assert admin.exit_code == 0, admin.output
    user = session.scalar(select(User).where(User.username == "boss"))
    assert user.email == "boss@acme.example" and user.extension == "299"
    assert verify_password(base_settings, user.password_hash, "Boss-Pass-123")
    missing = runner.invoke(args=["create-admin", "nope", "x", "--email", "x@x.example", "--password", "p"])
    assert missing.exit_code != 0 and 'No tenant "nope"' in missing.output


def test_create_tenant_takes_an_authentication_default(clean_db, base_settings, session):
    from web import create_app

    runner = create_app(base_settings).test_cli_runner()
    made = runner.invoke(args=["create-tenant", "secure", "--auth-default", "email_otp"])
    assert made.exit_code == 0, made.output
    assert session.scalar(select(Tenant).where(Tenant.slug == "secure")).auth_default == "email_otp"
    bad = runner.invoke(args=["create-tenant", "other", "--auth-default", "sms"])
    assert bad.exit_code != 0 and "sms" in bad.output
