"""The developer and admin portal served by the gateway at ``/portal/`` (docs/portal.md)."""

from maas_gateway.portal.app import create_portal_app
from maas_gateway.portal.context import PageContext, PageError
from maas_gateway.portal.navigation import Pages
from maas_gateway.portal.services import PortalServices, PortalUser

__all__ = ["PageContext", "PageError", "Pages", "PortalServices", "PortalUser", "create_portal_app"]
