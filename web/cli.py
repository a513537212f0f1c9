"""Admin commands: `flask --app web seed-demo | create-tenant | create-admin`."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import with_appcontext

from shared.accounts.auth_types import CONCRETE, AuthType
from shared.dialer.tenants import create_admin, create_tenant, seed_demo
from web.clients import settings
from web.database import sessions


def init_app(app: Flask) -> None:
    """Register the commands."""
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(create_tenant_command)
    app.cli.add_command(create_admin_command)


@click.command("seed-demo")
@with_appcontext
def seed_demo_command() -> None:
    """Create the demo tenant, its reference data and admin (safe to run again)."""
    with sessions().begin() as session:
        result = seed_demo(session, settings())
        tenant_slug, admin_name = result.tenant.slug, result.admin.username
    click.echo(f"Demo workspace: {tenant_slug}, admin user: {admin_name}")
    if result.generated_password:
        click.echo(f"Generated admin password (shown once): {result.generated_password}")
    elif settings().demo_admin_password:
        click.echo("Admin password: the value of DEMO_ADMIN_PASSWORD")
    else:
        click.echo("Admin already existed; its password is unchanged.")


@click.command("create-tenant")
@with_appcontext
@click.argument("slug")
@click.option("--name", help="Display name (defaults to the slug).")
@click.option("--extension-min", default=1000, show_default=True, type=int)
@click.option("--extension-max", default=9999, show_default=True, type=int)
@click.option(
    "--auth-default",
    type=click.Choice([kind.value for kind in CONCRETE]),
    default=AuthType.DISABLED.value,
    show_default=True,
    help="Authentication type of users whose own and whose role's are the default.",
)
def create_tenant_command(
    slug: str, name: str | None, extension_min: int, extension_max: int, auth_default: str
) -> None:
    """Create a tenant (workspace) with an Admin role."""
    with sessions().begin() as session:
        tenant = create_tenant(session, slug, name, extension_min, extension_max, auth_default)
        click.echo(f"Created tenant {tenant.slug} (id {tenant.id})")


@click.command("create-admin")
@with_appcontext
@click.argument("tenant")
@click.argument("username")
@click.option("--email", required=True)
@click.password_option(help="Prompted for when not given.")
def create_admin_command(tenant: str, username: str, email: str, password: str) -> None:
    """Create an admin user in a tenant."""
    from sqlalchemy import select

    from shared.models import Tenant

    with sessions().begin() as session:
        found = session.scalar(select(Tenant).where(Tenant.slug == tenant.lower()))
        if found is None:
            raise click.ClickException(f'No tenant "{tenant}".')
        user = create_admin(session, settings(), found, username, email, password)
        click.echo(f"Created admin {user.username} in {found.slug}")
