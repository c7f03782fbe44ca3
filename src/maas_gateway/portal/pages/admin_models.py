"""The configured models and their backends, for administrators: each backend's state as this replica
sees it now (healthy, unhealthy or ejected, why, requests in flight, the last load sample)."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.responses import Response

from maas_gateway.balancing.backend import BackendSnapshot
from maas_gateway.config.schema import ModelConfig
from maas_gateway.portal.context import PageContext
from maas_gateway.portal.navigation import Pages

__all__ = ["pages"]

pages = Pages()


@dataclass(frozen=True, slots=True)
class ModelRow:
    model: ModelConfig
    backends: list[BackendSnapshot]

    @property
    def healthy(self) -> int:
        return sum(1 for backend in self.backends if backend.state == "healthy")


@pages.page("/admin/models", title="Models", section="admin", order=60)
async def models(context: PageContext) -> Response:
    services = context.services
    rows = [ModelRow(model, services.backends(model.name)) for model in services.config().models]
    return context.render("admin_models.html", title="Models", rows=rows)
