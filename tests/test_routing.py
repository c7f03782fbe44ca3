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
    """Two models share a host; one has its own host; one is reachable by prefix only; one by body only.

    Two serve names of their own (``served_name``), as models on vLLM often do.
    """
    return Router(
        [
            _model("chat", hosts=["Shared.Example.com"], path_prefix="chat", served_name="org/chat-7b"),
            _model("embed", hosts=["shared.example.com"], path_prefix="embed"),
            _model(
                "solo", hosts=["solo.example.com"], tiers=["premium", "enterprise"], served_name="org/solo"
            ),
            _model("prefixed", path_prefix="pfx"),
            _model("plain"),
        ]
    )


def _identity(tier: str = "free", models: set[str] | None = None) -> Identity:
    return Identity(
        "user", tier, "key_0123456789ab", models=frozenset(models) if models is not None else None
    )


def _refused(
    host: str | None, prefix: str | None, requested: str | None, router: Router | None = None
) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as caught:
        (router or _router()).resolve(host=host, prefix=prefix, requested=requested)
    assert caught.value.status_code == 400
    return caught.value


@pytest.mark.parametrize(
    "host", ["solo.example.com", "SOLO.Example.COM", "solo.example.com:8443", " solo.example.com "]
)
def test_single_model_host_routes_when_the_body_agrees_or_is_silent(host: str) -> None:
    """A host listed by one model routes to it (port and letter case ignored) when the body names that
    model, by its public or its served name, or names none."""
    router = _router()
    for requested in (None, "solo", "org/solo"):
        assert router.resolve(host=host, prefix=None, requested=requested).name == "solo"


@pytest.mark.parametrize("requested", ["chat", "org/chat-7b", "nonexistent"])
def test_single_model_host_refuses_a_body_naming_another_model(requested: str) -> None:
    """A single-model host and a body naming anything else disagree: 400 model_mismatch naming both."""
    error = _refused("solo.example.com:443", None, requested)
    assert error.code == "model_mismatch"
    assert error.param == "model"
    assert error.message == (
        f"The host 'solo.example.com' serves the model 'solo', but the request body names the model "
        f"'{requested}'."
    )


def test_path_prefix_routes_to_its_model() -> None:
    """A path prefix names one model; the body may name it by its public or served name, or not at all."""
    router = _router()
    assert router.resolve(host=None, prefix="pfx", requested=None).name == "prefixed"
    assert router.resolve(host=None, prefix="pfx", requested="prefixed").name == "prefixed"
    assert router.resolve(host="unknown.example.com", prefix="chat", requested="org/chat-7b").name == "chat"
    assert router.has_prefix("pfx")
    assert not router.has_prefix("nope")


@pytest.mark.parametrize("requested", ["plain", "embed", "gpt-4"])
def test_path_prefix_and_a_body_naming_another_model_disagree(requested: str) -> None:
    """A path prefix and a body naming another model (configured or not) are a 400 naming both."""
    error = _refused(None, "chat", requested)
    assert error.code == "model_mismatch"
    assert error.param == "model"
    assert error.message == (
        "The path prefix '/chat' serves the model 'chat', but the request body names the model "
        f"'{requested}'."
    )


def test_unknown_prefix_is_404() -> None:
    """A path prefix no model serves is a 404 naming the prefix, on a routed host too."""
    for host in (None, "solo.example.com"):
        with pytest.raises(ModelNotFoundError, match="'/nope'") as caught:
            _router().resolve(host=host, prefix="nope", requested="chat")
        assert caught.value.status_code == 404


def test_host_and_prefix_must_agree() -> None:
    """A prefix whose model the routed Host does not serve is a 400 naming both; one it serves narrows the
    Host's choice to that model, and the body must then agree with the prefix."""
    error = _refused("solo.example.com", "pfx", None)
    assert error.code == "model_mismatch"
    assert error.message == (
        "The host 'solo.example.com' serves the model 'solo', but the path prefix '/pfx' names the model "
        "'prefixed'."
    )
    shared = _refused("shared.example.com", "pfx", "prefixed")
    assert "serves the models 'chat' and 'embed', but the path prefix '/pfx'" in shared.message
    router = _router()
    assert router.resolve(host="shared.example.com", prefix="embed", requested=None).name == "embed"
    assert router.resolve(host="shared.example.com", prefix="embed", requested="embed").name == "embed"
    body = _refused("shared.example.com", "embed", "chat")
    assert body.message.startswith("The path prefix '/embed' serves the model 'embed', but")


def test_body_model_routes_without_host_or_prefix() -> None:
    """Without a routed Host or a prefix, the body's model picks among all models."""
    router = _router()
    for name in ("chat", "embed", "solo", "prefixed", "plain"):
        assert router.resolve(host=None, prefix=None, requested=name).name == name
    assert router.resolve(host="other.example.com:80", prefix=None, requested="plain").name == "plain"


def test_a_served_name_alone_names_no_model() -> None:
    """Without a Host or prefix to settle the model, a served name is not a model's name: 404."""
    with pytest.raises(ModelNotFoundError, match="'org/chat-7b' does not exist"):
        _router().resolve(host=None, prefix=None, requested="org/chat-7b")


def test_shared_host_picks_by_body_model() -> None:
    """A host listed by several models picks among them by the body's model, public or served name."""
    router = _router()
    assert router.resolve(host="shared.example.com", prefix=None, requested="chat").name == "chat"
    assert router.resolve(host="Shared.Example.com:443", prefix=None, requested="embed").name == "embed"
    assert router.resolve(host="shared.example.com", prefix=None, requested="org/chat-7b").name == "chat"


def test_shared_host_refuses_a_model_it_does_not_serve() -> None:
    """On a shared host a model served elsewhere, or nowhere, is a 400 listing the host's models."""
    for requested in ("plain", "gpt-4"):
        error = _refused("shared.example.com", None, requested)
        assert error.code == "model_mismatch"
        assert error.param == "model"
        assert error.message == (
            "The host 'shared.example.com' serves the models 'chat' and 'embed', but the request body "
            f"names the model '{requested}'."
        )


def test_shared_host_without_a_body_model_lists_its_models() -> None:
    """On a host of several models a body without `model` is a 400 missing_model listing them."""
    router = Router([*_router().models, _model("third", hosts=["shared.example.com"])])
    error = _refused("shared.example.com:8000", None, None, router)
    assert error.code == "missing_model"
    assert error.param == "model"
    assert error.message == (
        "The host 'shared.example.com' serves several models ('chat', 'embed' and 'third'): the request "
        "body must name one of them in `model`."
    )


def test_a_served_name_shared_on_a_host_picks_nothing() -> None:
    """On a shared host a served name picks its model only when no other model there serves it too."""
    router = Router(
        [
            _model("a", hosts=["h.example.com"], served_name="model"),
            _model("b", hosts=["h.example.com"], served_name="model"),
            _model("c", hosts=["h.example.com"], served_name="own"),
        ]
    )
    assert router.resolve(host="h.example.com", prefix=None, requested="own").name == "c"
    assert _refused("h.example.com", None, "model", router).code == "model_mismatch"


def test_unknown_model_is_404() -> None:
    """A body model that does not exist is a 404 model_not_found naming it."""
    with pytest.raises(ModelNotFoundError, match="'gpt-9' does not exist") as caught:
        _router().resolve(host=None, prefix=None, requested="gpt-9")
    assert caught.value.code == "model_not_found"


def test_a_long_body_model_is_cut_short_in_errors() -> None:
    """An error repeats at most the first 200 characters of a body's model, whatever its length."""
    for host, prefix in ((None, None), ("solo.example.com", None), (None, "pfx")):
        with pytest.raises((ModelNotFoundError, InvalidRequestError)) as caught:
            _router().resolve(host=host, prefix=prefix, requested="x" * 100_000)
        assert "'" + "x" * 200 + "…'" in caught.value.message
        assert len(caught.value.message) < 400


@pytest.mark.parametrize("host", [None, "unrouted.example.com"])
def test_missing_model_without_host_or_prefix_is_400(host: str | None) -> None:
    """Without a body model, when neither the Host nor a prefix settles the model, the answer is 400."""
    error = _refused(host, None, None)
    assert error.code == "missing_model"
    assert error.param == "model"
    assert "GET /v1/models" in error.message


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
