"""Choosing a model from the Host, the path prefix and the body's ``model``; which of its backends
serves a request is the ``balancing`` package's choice (``proxy/dispatch.py``).

Each of the three may narrow the choice, and all that a request gives must agree; the gateway never
picks a model the request did not ask for:

- A Host that some models list narrows the candidates to those models.
- A path prefix (``/simulator/v1/...``) names one model; with a routed Host it must be one of the
  Host's models.
- The body's ``model`` then picks among the candidates. Once the Host or prefix has narrowed them, it
  may be left out when one candidate remains, and otherwise must name a candidate: by its public name,
  or by the name its backend serves (``served_name``) when only one candidate serves that name. Any
  other name is a 400 ``model_mismatch`` naming both sides, since a request for one model answered by
  another is the surprise this order exists to prevent.
- Without a routed Host or a prefix, the body's ``model`` must name a model by its public name.

The pipeline then rewrites the body's ``model`` to the name the backend serves.
"""

from __future__ import annotations

from collections.abc import Sequence

from maas_gateway.auth.identity import Identity
from maas_gateway.errors import InvalidRequestError, ModelNotFoundError, PermissionDeniedError
from maas_gateway.routing.route import ModelRoute

__all__ = ["Router"]

_SHOWN_NAME_CHARS = 200  # a body's `model` is echoed in errors; a megabyte of it should not be


class Router:
    """Immutable once built; a reload builds a new one."""

    def __init__(self, models: Sequence[ModelRoute]) -> None:
        self._models = {model.name: model for model in models}
        self._by_prefix = {model.path_prefix: model for model in models if model.path_prefix}
        # Every model's extra paths together: a path that no model lists is not looked at further.
        self.extra_paths = frozenset(path for model in models for path in model.extra_paths)
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
        host_name = _strip_port(host) if host else None
        on_host = self._by_host.get(host_name) if host_name else None
        if prefix is not None:
            model = self._by_prefix.get(prefix)
            if model is None:
                raise ModelNotFoundError(f"No model is served under the path prefix '/{prefix}'.")
            if on_host is not None and model not in on_host:
                raise InvalidRequestError(
                    f"The host '{host_name}' serves {_models(on_host)}, but the path prefix "
                    f"'/{prefix}' names the model '{model.name}'.",
                    code="model_mismatch",
                )
            return _pick(model, f"The path prefix '/{prefix}'", requested)
        if on_host is not None:
            return _pick_among(on_host, f"The host '{host_name}'", requested)
        if requested is None:
            raise InvalidRequestError(
                "The request body must name a `model`; GET /v1/models lists the models you may use.",
                code="missing_model",
                param="model",
            )
        model = self._models.get(requested)
        if model is None:
            raise ModelNotFoundError(f"The model '{_shown(requested)}' does not exist.", param="model")
        return model

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


def _pick(model: ModelRoute, where: str, requested: str | None) -> ModelRoute:
    """The one model a prefix (or a single-model Host) names, if the body agrees or says nothing."""
    if requested is None or requested == model.name or requested == model.upstream_model:
        return model
    raise _mismatch(where, [model], requested)


def _pick_among(candidates: Sequence[ModelRoute], where: str, requested: str | None) -> ModelRoute:
    if len(candidates) == 1:
        return _pick(candidates[0], where, requested)
    if requested is None:
        raise InvalidRequestError(
            f"{where} serves several models ({_names(candidates)}): the request body must name one of "
            "them in `model`.",
            code="missing_model",
            param="model",
        )
    for model in candidates:
        if model.name == requested:
            return model
    # A served name picks only when it is unambiguous: backends often all serve e.g. "model".
    served = [model for model in candidates if model.upstream_model == requested]
    if len(served) == 1:
        return served[0]
    raise _mismatch(where, candidates, requested)


def _mismatch(where: str, candidates: Sequence[ModelRoute], requested: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"{where} serves {_models(candidates)}, but the request body names the model '{_shown(requested)}'.",
        code="model_mismatch",
        param="model",
    )


def _models(models: Sequence[ModelRoute]) -> str:
    """'the model 'a'' or 'the models 'a' and 'b'', for a sentence."""
    return f"the model '{models[0].name}'" if len(models) == 1 else f"the models {_names(models)}"


def _names(models: Sequence[ModelRoute]) -> str:
    quoted = [f"'{model.name}'" for model in models]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _shown(name: str) -> str:
    return name if len(name) <= _SHOWN_NAME_CHARS else name[:_SHOWN_NAME_CHARS] + "…"


def _strip_port(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):  # IPv6 literal, e.g. [::1]:8000
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if ":" in host else host
