"""The admin API: protected by an admin credential, documented by OpenAPI."""

from maas_gateway.admin.guard import ADMIN_KEY_ENV, AdminGuard

__all__ = ["ADMIN_KEY_ENV", "AdminGuard"]
