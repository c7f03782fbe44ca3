"""Routing: from Host, path prefix and body model to a model and an allowed caller (its backends:
tests/test_balancing_wiring.py)."""

from __future__ import annotations

from typing import Any

import pytest

from maas_gateway.application.policies import model_route
from maas_gateway.auth import Identity
from maas_gateway.config import ModelConfig
from maas_gateway.errors import InvalidRequestError, ModelNotFoundError, PermissionDeniedError
from maas_gateway.routing import ModelRoute, Router


def _model(name: str, **fields: Any) -> ModelRoute:
    """A model as configured (so host names are normalised as a configuration file's are)."""
    config = {"name": name, "backends": [f"http://{name}.backend:8000"], **fields}
    return model_route(ModelConfig.model_validate(config))


def _router() -> Router:
    """Two models share a host; one has its own host; one is reachable by prefix only; one by body only."""
    return Router(
        [
            _model("chat", hosts=["Shared.Example.com"], path_prefix="chat"),
            _model("embed", hosts=["shared.example.com"], path_prefix="embed"),
            _model("solo", hosts=["solo.example.com"], tiers=["premium", "enterprise"]),
            _model("prefixed", path_prefix="pfx"),
            _model("plain"),
        ]
    )


def _identity(tier: str = "free", models: set[str] | None = None) -> Identity:
    return Identity(
        "user", tier, "key_0123456789ab", models=frozenset(models) if models is not None else None
    )


@pytest.mark.parametrize(
    "host", ["solo.example.com", "SOLO.Example.COM", "solo.example.com:8443", " solo.example.com "]
)
def test_single_model_host_routes_and_ignores_the_body_model(host: str) -> None:
    """A host listed by one model routes to it (port and letter case ignored), whatever the body says."""
    router = _router()
    for requested in (None, "solo", "chat", "nonexistent"):
        assert router.resolve(host=host, prefix=None, requested=requested).name == "solo"


def test_path_prefix_routes_to_its_model() -> None:
    """A path prefix names one model, which wins over the body's model."""
    router = _router()
    assert router.resolve(host=None, prefix="pfx", requested=None).name == "prefixed"
    assert router.resolve(host="unknown.example.com", prefix="chat", requested="plain").name == "chat"
    assert router.has_prefix("pfx")
    assert not router.has_prefix("nope")


def test_unknown_prefix_is_404() -> None:
    """A path prefix no model serves is a 404 naming the prefix."""
    with pytest.raises(ModelNotFoundError, match="'/nope'") as caught:
        _router().resolve(host=None, prefix="nope", requested="chat")
    assert caught.value.status_code == 404


def test_host_takes_precedence_over_prefix() -> None:
    """When the Host is routed, the Host decides, not the path prefix."""
    assert _router().resolve(host="solo.example.com", prefix="pfx", requested=None).name == "solo"


def test_body_model_routes_without_host_or_prefix() -> None:
    """Without a routed Host or a prefix, the body's model picks among all models."""
    router = _router()
    for name in ("chat", "embed", "solo", "prefixed", "plain"):
        assert router.resolve(host=None, prefix=None, requested=name).name == name
    assert router.resolve(host="other.example.com:80", prefix=None, requested="plain").name == "plain"


def test_shared_host_picks_by_body_model() -> None:
    """A host listed by several models picks among them by the body's model."""
    router = _router()
    assert router.resolve(host="shared.example.com", prefix=None, requested="chat").name == "chat"
    assert router.resolve(host="Shared.Example.com:443", prefix=None, requested="embed").name == "embed"


def test_shared_host_refuses_a_model_it_does_not_serve() -> None:
    """On a shared host a model served elsewhere is a 404 naming the host."""
    with pytest.raises(ModelNotFoundError, match=r"not served at host 'shared\.example\.com'") as caught:
        _router().resolve(host="shared.example.com", prefix=None, requested="plain")
    assert caught.value.status_code == 404
    assert caught.value.param == "model"


def test_unknown_model_is_404() -> None:
    """A body model that does not exist is a 404 model_not_found naming it."""
    with pytest.raises(ModelNotFoundError, match="'gpt-9' does not exist") as caught:
        _router().resolve(host=None, prefix=None, requested="gpt-9")
    assert caught.value.code == "model_not_found"


@pytest.mark.parametrize("host", [None, "shared.example.com", "unrouted.example.com"])
def test_missing_model_when_ambiguous_is_400(host: str | None) -> None:
    """Without a body model, when the Host or prefix does not settle the model, the answer is 400."""
    with pytest.raises(InvalidRequestError) as caught:
        _router().resolve(host=host, prefix=None, requested=None)
    assert caught.value.status_code == 400
    assert caught.value.code == "missing_model"
    assert caught.value.param == "model"


def test_tier_restriction_denies_other_tiers() -> None:
    """A model restricted to tiers is a 403 for other tiers and allowed for those listed."""
    router = _router()
    solo = router.resolve(host="solo.example.com", prefix=None, requested=None)
    with pytest.raises(PermissionDeniedError) as caught:
        router.authorize(_identity("free"), solo)
    assert caught.value.status_code == 403
    assert "'solo'" in caught.value.message
    assert "'free'" in caught.value.message
    router.authorize(_identity("premium"), solo)
    router.authorize(_identity("enterprise"), solo)
    router.authorize(_identity("free"), router.resolve(host=None, prefix=None, requested="plain"))


def test_visible_to_filters_by_tier_and_allow_list() -> None:
    """visible_to lists the models a caller's tier and key allow-list both permit, in order."""
    router = _router()
    assert [m.name for m in router.visible_to(_identity("free"))] == ["chat", "embed", "prefixed", "plain"]
    assert [m.name for m in router.visible_to(_identity("premium"))] == [
        "chat",
        "embed",
        "solo",
        "prefixed",
        "plain",
    ]
    assert [m.name for m in router.visible_to(_identity("premium", {"solo", "plain"}))] == ["solo", "plain"]
    assert router.visible_to(_identity("free", {"solo"})) == []


def test_key_allow_list_denies_other_models() -> None:
    """A key limited to some models gets 403 for the others even when its tier allows them."""
    router = _router()
    identity = _identity("premium", {"chat"})
    router.authorize(identity, router.resolve(host=None, prefix=None, requested="chat"))
    with pytest.raises(PermissionDeniedError):
        router.authorize(identity, router.resolve(host=None, prefix=None, requested="plain"))
    assert not router.allows(identity, router.models[2])
