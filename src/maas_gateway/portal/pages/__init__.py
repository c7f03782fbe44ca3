"""Every page module of the portal. Adding a page: a module here with ``pages = Pages()`` and its
decorated functions, one template in ``portal/templates`` extending ``base.html``, and one line below."""

from __future__ import annotations

from maas_gateway.portal.navigation import Page
from maas_gateway.portal.pages import (
    admin_audit,
    admin_budgets,
    admin_keys,
    admin_models,
    admin_overview,
    admin_requests,
    admin_teams,
    admin_usage,
    admin_users,
    budgets,
    keys,
    models,
    oidc_sign_in,
    overview,
    plan,
    playground,
    register,
    sign_in,
    usage,
)

__all__ = ["all_pages"]

_MODULES = (
    sign_in,
    oidc_sign_in,
    register,
    overview,
    keys,
    usage,
    budgets,
    models,
    playground,
    plan,
    admin_overview,
    admin_users,
    admin_teams,
    admin_usage,
    admin_budgets,
    admin_keys,
    admin_requests,
    admin_models,
    admin_audit,
)


def all_pages() -> list[Page]:
    return [page for module in _MODULES for page in module.pages.entries]
