"""Choosing a model from the Host, the path prefix and the body's ``model``; which of its backends
serves a request is the ``balancing`` package's choice (``proxy/dispatch.py``).

The order is fixed: a Host that some models list narrows the choice to those models; otherwise a path
prefix (``/simulator/v1/...``) names one model; otherwise every model is a candidate. The body's
``model`` then picks among the candidates. When the Host or prefix leaves exactly one candidate, that
model wins whatever the body says (as a host-routed proxy in front of one model server would do), and
the body's ``model`` is rewritten to the name the backend serves.
"""

from __future__ import annotations

from collections.abc import Sequence

from maas_gateway.auth.identity import Identity
from maas_gateway.errors import InvalidRequestError, ModelNotFoundError, PermissionDeniedError
from maas_gateway.routing.route import ModelRoute

__all__ = ["Router"]


class Router:
    """Immutable once built; a reload builds a new one."""

    def __init__(self, models: Sequence[ModelRoute]) -> None:
        self._models = {model.name: model for model in models}
        self._by_prefix = {model.path_prefix: model for model in models if model.path_prefix}
        self._by_host: dict[str, list[ModelRoute]] = {}
        for model in models:
            for host in model.hosts:
                self._by_host.setdefault(host, []).append(model)

    @property
    def models(self) -> list[ModelRoute]:
        return list(self._models.values())

    def get(self, name: str) -> ModelRoute | None:
        """The model named ``name`` (a fallback's, say), if there is one."""
        return self._models.get(name)

    def has_prefix(self, prefix: str) -> bool:
        return prefix in self._by_prefix

    def resolve(self, *, host: str | None, prefix: str | None, requested: str | None) -> ModelRoute:
        """Return the model a request is for, or raise a 400/404 that says why none fits."""
        candidates: Sequence[ModelRoute]
        where: str | None = None
        host_name = _strip_port(host) if host else None
        if host_name and host_name in self._by_host:
            candidates, where = self._by_host[host_name], f"host '{host_name}'"
        elif prefix is not None:
            model = self._by_prefix.get(prefix)
            if model is None:
                raise ModelNotFoundError(f"No model is served under the path prefix '/{prefix}'.")
            candidates, where = [model], f"path prefix '/{prefix}'"
        else:
            candidates = list(self._models.values())

        if where is not None and len(candidates) == 1:
            return candidates[0]
        if requested is None:
            raise InvalidRequestError(
                "The request body must name a `model`.", code="missing_model", param="model"
            )
        for model in candidates:
            if model.name == requested:
                return model
        if where is None:
            raise ModelNotFoundError(f"The model '{requested}' does not exist.", param="model")
        raise ModelNotFoundError(f"The model '{requested}' is not served at {where}.", param="model")

    def authorize(self, identity: Identity, model: ModelRoute) -> None:
        """Raise 403 unless the caller's tier and credential may use ``model``."""
        if not self.allows(identity, model):
            raise PermissionDeniedError(
                f"The model '{model.name}' is not available to the '{identity.tier}' tier "
                "with this credential.",
            )

    def allows(self, identity: Identity, model: ModelRoute) -> bool:
        return model.open_to(identity.tier) and identity.may_use(model.name)

    def visible_to(self, identity: Identity) -> list[ModelRoute]:
        return [model for model in self._models.values() if self.allows(identity, model)]


def _strip_port(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):  # IPv6 literal, e.g. [::1]:8000
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if ":" in host else host
