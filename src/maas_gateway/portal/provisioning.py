"""Creating portal accounts outside a running gateway: ``maas users create --password`` and ``maas up``'s
demo accounts, written straight to the database the gateway uses (``database.url``).

``maas up`` creates the origin system's demo developer ``dev1`` / ``openshift`` (tier free) and an
``admin`` account, idempotently: an account that exists is never touched, so a password changed since
survives restarts.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from maas_gateway.database import Database
from maas_gateway.portal.account_service import AccountService
from maas_gateway.portal.passwords import Passwords
from maas_gateway.portal.sql_accounts import SqlAccountStore

__all__ = ["DEMO_DEVELOPER", "DEMO_PASSWORD", "DemoAccounts", "create_account", "ensure_demo_accounts"]

DEMO_DEVELOPER = "dev1"
DEMO_PASSWORD = "openshift"  # noqa: S105  # the origin system's published demo password, on purpose
_ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class DemoAccounts:
    admin_password: str | None  # the generated password, when the admin account was created just now
    admin_created: bool


async def create_account(url: str, user: str, password: str, *, tier: str, is_admin: bool) -> bool:
    """Create ``user``'s account in the database at ``url``; ``False`` when it exists already."""
    database = Database(url)
    try:
        service = AccountService(SqlAccountStore(database), Passwords())
        return await service.create(user, password, tier=tier, is_admin=is_admin)
    finally:
        await database.aclose()


async def ensure_demo_accounts(url: str, admin_password: str | None, *, tier: str) -> DemoAccounts:
    """Create ``dev1`` and ``admin`` unless they exist. ``admin_password`` (MAAS_ADMIN_PASSWORD) or, without
    one, a random password is used for a new admin account; only a generated one is returned."""
    database = Database(url)
    try:
        service = AccountService(SqlAccountStore(database), Passwords())
        if await service.store.get(DEMO_DEVELOPER) is None:
            await service.create(DEMO_DEVELOPER, DEMO_PASSWORD, tier=tier)
        if await service.store.get(_ADMIN) is not None:
            return DemoAccounts(None, admin_created=False)
        generated = None if admin_password else secrets.token_urlsafe(12)
        created = await service.create(_ADMIN, admin_password or generated or "", tier=tier, is_admin=True)
        return DemoAccounts(generated if created else None, admin_created=created)
    finally:
        await database.aclose()
