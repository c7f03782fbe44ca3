"""`maas deploy render` and the Kustomize tree: overlays render, and each flag changes exactly its part."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from maas_gateway.deploy import (
    OVERLAYS,
    RenderError,
    RenderOptions,
    kustomization_for,
    manifests_root,
    render,
)
from maas_gateway.deploy.render import MODELS
from tests.support.manifests import ObjectId, build, by_id, diff, kustomize_or_skip, parse
from tests.support.processes import maas

ROOT = manifests_root()
REPO = Path(__file__).parent.parent
Objects = dict[ObjectId, dict[str, Any]]
Renderer = Callable[[RenderOptions], Objects]


@pytest.fixture(scope="session")
def kustomize() -> list[str]:
    """The kustomize command (kubectl kustomize); required in CI."""
    return kustomize_or_skip()


@pytest.fixture(scope="session")
def rendered(kustomize: list[str]) -> Renderer:
    """Render options through `render` (kustomize on a generated kustomization), cached per choice."""
    cache: dict[RenderOptions, Objects] = {}

    def get(options: RenderOptions) -> Objects:
        if options not in cache:
            cache[options] = by_id(parse(render(options, command=kustomize)))
        return cache[options]

    return get


BASELINE = RenderOptions()


@pytest.mark.parametrize("name", sorted(OVERLAYS))
def test_overlay_renders_and_equals_its_render_options(name: str, kustomize: list[str]) -> None:
    """Each overlay renders with `kubectl kustomize`, is the kustomization its options give, and renders
    exactly as `maas deploy render` with those options; the deploy/ entry point renders the same."""
    overlay = ROOT / "overlays" / name
    written = yaml.safe_load((overlay / "kustomization.yaml").read_text("utf-8"))
    assert written == kustomization_for(OVERLAYS[name], "../..")
    text = build(kustomize, overlay)
    assert len(parse(text)) > 15
    assert text == render(OVERLAYS[name], command=kustomize)
    assert build(kustomize, REPO / "deploy" / name) == text


def test_deploy_directory_defaults_to_the_kind_overlay(kustomize: list[str]) -> None:
    """`kubectl apply -k deploy` deploys what the kind overlay deploys."""
    assert build(kustomize, REPO / "deploy") == build(kustomize, ROOT / "overlays" / "kind")


def test_baseline_is_the_gateway_stack_and_the_simulator(rendered: Renderer) -> None:
    """With no flag: namespace maas, the gateway with its PDB and HPA, Redis, PostgreSQL, the simulator
    behind the Gateway API, and the metrics objects; every namespaced object is in maas."""
    objects = rendered(BASELINE)
    for expected in [
        ("Namespace", "maas"),
        ("StatefulSet", "maas-gateway"),
        ("Service", "maas-gateway"),
        ("PodDisruptionBudget", "maas-gateway"),
        ("HorizontalPodAutoscaler", "maas-gateway"),
        ("Secret", "maas-secrets"),
        ("StatefulSet", "maas-redis"),
        ("StatefulSet", "maas-postgres"),
        ("Deployment", "maas-simulator"),
        ("HTTPRoute", "simulator"),
        ("Gateway", "maas-ingress"),
        ("ServiceMonitor", "maas-gateway"),
        ("ConfigMap", "maas-gateway-dashboard"),
    ]:
        assert expected in objects
    gateway = objects[("StatefulSet", "maas-gateway")]
    assert gateway["spec"]["replicas"] == 3
    assert (
        gateway["spec"]["template"]["spec"]["containers"][0]["image"]
        == "ghcr.io/maas-gateway/maas-gateway:0.1.0"
    )
    assert {o["metadata"].get("namespace") for k, o in objects.items() if k[0] != "Namespace"} == {"maas"}
    assert objects[("Secret", "maas-secrets")]["stringData"] == {
        "admin-key": "change-me-public-placeholder-admin-key",
        "database-password": "change-me-database-password",
    }


def test_qwen3_adds_its_model_runtime_and_route_and_nothing_else(rendered: Renderer) -> None:
    """--qwen3 adds the InferenceService, the vLLM runtime and the qwen3.maas.local route; the only
    existing object that changes is the gateway's configuration (one more part)."""
    added, removed, changed = diff(rendered(BASELINE), rendered(RenderOptions(models=("simulator", "qwen3"))))
    assert added == {
        ("InferenceService", "qwen3-0-6b-instruct"),
        ("ServingRuntime", "maas-vllm"),
        ("HTTPRoute", "qwen3"),
    }
    assert removed == set()
    assert changed == {("ConfigMap", "maas-gateway-config")}


def test_qwen3_alone_leaves_out_the_simulator(rendered: Renderer) -> None:
    """Choosing only Qwen3 deploys no simulator and no simulator route."""
    objects = rendered(RenderOptions(models=("qwen3",)))
    assert ("Deployment", "maas-simulator") not in objects
    assert ("HTTPRoute", "simulator") not in objects
    assert ("InferenceService", "qwen3-0-6b-instruct") in objects


def test_all_models_adds_every_example(rendered: Renderer) -> None:
    """--all-models adds Qwen3, Granite, Mistral and Nomic-embed, each with its route."""
    added, removed, changed = diff(rendered(BASELINE), rendered(RenderOptions(models=MODELS)))
    services = {
        "qwen3-0-6b-instruct",
        "granite-3-3-2b-instruct",
        "mistral-7b-instruct",
        "nomic-embed-text-v1-5",
    }
    assert {name for kind, name in added if kind == "InferenceService"} == services
    assert {name for kind, name in added if kind == "HTTPRoute"} == {
        "qwen3",
        "granite",
        "mistral",
        "nomic-embed",
    }
    assert removed == set()
    assert changed == {("ConfigMap", "maas-gateway-config")}


def test_gpu_t4_retunes_only_qwen3(rendered: Renderer) -> None:
    """--gpu-t4 adds the T4 runtime (stable vLLM image, XFORMERS) and changes only the Qwen3 service:
    float16, eager mode, no prefix caching, a smaller context and batch."""
    qwen3 = RenderOptions(models=("simulator", "qwen3"))
    before, after = rendered(qwen3), rendered(RenderOptions(models=("simulator", "qwen3"), gpu_t4=True))
    added, removed, changed = diff(before, after)
    assert added == {("ServingRuntime", "maas-vllm-t4")}
    assert removed == set()
    assert changed == {("InferenceService", "qwen3-0-6b-instruct")}
    model = after[("InferenceService", "qwen3-0-6b-instruct")]["spec"]["predictor"]["model"]
    assert model["runtime"] == "maas-vllm-t4"
    for flag in ("--dtype=float16", "--enforce-eager", "--no-enable-prefix-caching", "--max-num-seqs=16"):
        assert flag in model["args"]
    assert "--max-model-len=4096" in model["args"]
    runtime = after[("ServingRuntime", "maas-vllm-t4")]["spec"]["containers"][0]
    assert runtime["image"] == "vllm/vllm-openai:v0.8.5"
    assert {"name": "VLLM_ATTENTION_BACKEND", "value": "XFORMERS"} in runtime["env"]


def test_openshift_swaps_the_gateway_api_for_routes(rendered: Renderer) -> None:
    """--openshift replaces the Gateway and HTTPRoutes by Routes (targeting the gateway Service by port
    name; the gateway's paths and the model prefixes share the maas-gateway subdomain) and drops the
    fixed user ids of the StatefulSets; nothing else changes."""
    added, removed, changed = diff(rendered(BASELINE), rendered(RenderOptions(openshift=True)))
    shared = {"maas-gateway", "maas-gateway-portal", "simulator-prefix", "simulator-embed-prefix"}
    assert added == {("Route", name) for name in shared | {"simulator"}}
    assert removed == {("Gateway", "maas-ingress"), ("HTTPRoute", "simulator")}
    assert changed == {
        ("StatefulSet", "maas-gateway"),
        ("StatefulSet", "maas-redis"),
        ("StatefulSet", "maas-postgres"),
    }
    objects = rendered(RenderOptions(openshift=True))
    for key in changed:
        assert "runAsUser" not in objects[key]["spec"]["template"]["spec"]["securityContext"]
    route = objects[("Route", "simulator")]["spec"]
    assert route["to"] == {"kind": "Service", "name": "maas-gateway", "weight": 100}
    assert route["port"] == {"targetPort": "http"}
    assert route["path"] == "/v1"
    paths = {objects[("Route", name)]["spec"]["path"] for name in shared}
    assert paths == {"/v1", "/portal", "/simulator", "/simulator-embed"}
    assert {objects[("Route", name)]["spec"]["subdomain"] for name in shared} == {"maas-gateway"}


def test_no_metrics_removes_only_the_servicemonitor_and_dashboard(rendered: Renderer) -> None:
    """--no-metrics removes the ServiceMonitor and the dashboard ConfigMap and touches nothing else."""
    added, removed, changed = diff(rendered(BASELINE), rendered(RenderOptions(metrics=False)))
    assert (added, changed) == (set(), set())
    assert removed == {("ServiceMonitor", "maas-gateway"), ("ConfigMap", "maas-gateway-dashboard")}
    dashboard = rendered(BASELINE)[("ConfigMap", "maas-gateway-dashboard")]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"


def test_replicas_changes_only_the_gateway_and_autoscaler(rendered: Renderer) -> None:
    """--replicas N sets the gateway StatefulSet's replicas and the HPA's minimum (raising its maximum
    when N exceeds it)."""
    for count, most in ((5, 10), (12, 12)):
        after = rendered(RenderOptions(replicas=count))
        added, removed, changed = diff(rendered(BASELINE), after)
        assert (added, removed) == (set(), set())
        assert changed == {("StatefulSet", "maas-gateway"), ("HorizontalPodAutoscaler", "maas-gateway")}
        assert after[("StatefulSet", "maas-gateway")]["spec"]["replicas"] == count
        hpa = after[("HorizontalPodAutoscaler", "maas-gateway")]["spec"]
        assert (hpa["minReplicas"], hpa["maxReplicas"]) == (count, most)


def test_namespace_moves_every_object(rendered: Renderer) -> None:
    """--namespace NS renames the Namespace and moves every namespaced object, and changes nothing else."""
    before, after = rendered(BASELINE), rendered(RenderOptions(namespace="llm"))
    assert ("Namespace", "llm") in after
    assert ("Namespace", "maas") not in after
    for key, item in after.items():
        if key[0] == "Namespace":
            continue
        assert item["metadata"]["namespace"] == "llm"
        moved = {**item, "metadata": {**item["metadata"], "namespace": "maas"}}
        assert moved == before[key]


def test_image_replaces_every_gateway_image_and_nothing_else(rendered: Renderer) -> None:
    """--image changes the gateway and simulator containers' image only."""
    image = "registry.example.com/team/maas-gateway:1.2.3"
    before, after = rendered(BASELINE), rendered(RenderOptions(image=image))
    added, removed, changed = diff(before, after)
    assert (added, removed) == (set(), set())
    assert changed == {("StatefulSet", "maas-gateway"), ("Deployment", "maas-simulator")}
    for key in changed:
        pod = after[key]["spec"]["template"]["spec"]
        assert {c["image"] for c in pod["containers"] + pod.get("initContainers", [])} == {image}


def test_external_services_replace_the_statefulsets(rendered: Renderer) -> None:
    """--external-redis/--external-postgres HOST drop each StatefulSet and its headless Service and turn
    the client Service into an ExternalName for HOST, so the gateway's configuration is unchanged."""
    options = RenderOptions(external_redis="redis.corp.example", external_postgres="pg.corp.example")
    added, removed, changed = diff(rendered(BASELINE), rendered(options))
    assert added == set()
    assert removed == {
        ("StatefulSet", "maas-redis"),
        ("StatefulSet", "maas-postgres"),
        ("Service", "maas-redis-headless"),
        ("Service", "maas-postgres-headless"),
    }
    assert changed == {("Service", "maas-redis"), ("Service", "maas-postgres")}
    after = rendered(options)
    for name, host in (("maas-redis", "redis.corp.example"), ("maas-postgres", "pg.corp.example")):
        spec = after[("Service", name)]["spec"]
        assert (spec["type"], spec["externalName"]) == ("ExternalName", host)
        assert "selector" not in spec


def test_kserve_simulator_replaces_the_simulator_deployment(rendered: Renderer) -> None:
    """--kserve-simulator serves the same simulator models from a KServe InferenceService instead."""
    added, removed, changed = diff(rendered(BASELINE), rendered(RenderOptions(kserve_simulator=True)))
    assert added == {("InferenceService", "maas-simulator")}
    assert removed == {("Deployment", "maas-simulator"), ("Service", "maas-simulator")}
    assert changed == {("ConfigMap", "maas-gateway-config")}


def test_cli_render_prints_the_same_manifests(kustomize: list[str]) -> None:
    """`maas deploy render` flags map onto the same options: --gpu-t4 implies Qwen3, and no model flag
    means the simulator."""
    cases = [
        (["--gpu-t4", "--replicas", "2"], RenderOptions(models=("qwen3",), gpu_t4=True, replicas=2)),
        (["--no-metrics", "--openshift"], RenderOptions(metrics=False, openshift=True)),
        (["--all-models", "--namespace", "llm"], RenderOptions(models=MODELS, namespace="llm")),
    ]
    for flags, options in cases:
        result = subprocess.run(maas("deploy", "render", *flags), capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
        assert result.stdout == render(options, command=kustomize)


def test_cli_render_refuses_bad_values_with_a_sentence() -> None:
    """A bad flag value exits 2 with a whole-sentence message and prints no manifests."""
    result = subprocess.run(
        maas("deploy", "render", "--namespace", "Not_Valid"), capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert "'Not_Valid' is not a valid namespace; use lower-case letters, digits and '-'." in result.stderr


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"models": ("gpt5",)}, "Unknown model 'gpt5'"),
        ({"models": ()}, "Choose at least one model"),
        ({"models": ("simulator",), "gpu_t4": True}, "The T4 tuning applies to the Qwen3 model"),
        ({"models": ("qwen3",), "kserve_simulator": True}, "The KServe simulator replaces the simulator"),
        ({"replicas": 0}, "at least 1"),
        ({"image": "bad image"}, "is not an image reference"),
        ({"external_redis": "redis://x:6379"}, "is not a host name for the managed Redis"),
    ],
)
def test_render_options_reject_contradictions(options: dict[str, Any], message: str) -> None:
    """Options that cannot be deployed are refused before kustomize runs, with a sentence saying why."""
    with pytest.raises(RenderError, match=message):
        RenderOptions(**options)
