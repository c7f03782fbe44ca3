"""The rendered manifests are valid Kubernetes, valid custom resources, and refer only to what exists."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from maas_gateway.deploy import OVERLAYS, RenderOptions, manifests_root, render
from maas_gateway.deploy.dashboard import METRICS, build_dashboard, dashboard_json
from maas_gateway.deploy.render import MODELS
from tests.support.manifests import (
    CORE_VERSIONS,
    ObjectId,
    by_id,
    gateway_config,
    kustomize_or_skip,
    parse,
    validate_core,
    validate_custom,
)

ROOT = manifests_root()
Objects = dict[ObjectId, dict[str, Any]]
_CUSTOM_GROUPS = (
    "serving.kserve.io/",
    "gateway.networking.k8s.io/",
    "monitoring.coreos.com/",
    "route.openshift.io/",
)
# Every overlay, plus choices that between them use every component and option.
CHOICES = {
    **OVERLAYS,
    "everything-openshift": RenderOptions(
        models=MODELS, gpu_t4=True, openshift=True, replicas=4, namespace="llm"
    ),
    "kserve-managed": RenderOptions(
        kserve_simulator=True, external_redis="redis.example.com", external_postgres="pg.example.com"
    ),
}


@pytest.fixture(scope="module")
def renderings() -> dict[str, Objects]:
    """Each choice rendered through kustomize."""
    command = kustomize_or_skip()
    return {name: by_id(parse(render(options, command=command))) for name, options in CHOICES.items()}


def test_core_objects_validate_against_the_kubernetes_schemas(renderings: dict[str, Objects]) -> None:
    """Every core object validates strictly (no unknown field) against Kubernetes 1.29 and the newest
    release kubernetes-validate knows, offline."""
    for objects in renderings.values():
        for item in objects.values():
            if item["apiVersion"].startswith(_CUSTOM_GROUPS):
                continue
            for version in CORE_VERSIONS:
                assert validate_core(item, version), f"no {version} schema for {item['kind']}"


def test_custom_resources_validate_against_their_crd_schemas(renderings: dict[str, Objects]) -> None:
    """Every InferenceService, ServingRuntime, HTTPRoute, Gateway, ServiceMonitor and Route validates
    against its CRD schema; no custom kind goes unchecked."""
    kinds = set()
    for objects in renderings.values():
        for item in objects.values():
            if item["apiVersion"].startswith(_CUSTOM_GROUPS):
                assert validate_custom(item), f"no CRD schema for {item['apiVersion']} {item['kind']}"
                kinds.add(item["kind"])
    assert kinds == {"InferenceService", "ServingRuntime", "HTTPRoute", "Gateway", "ServiceMonitor", "Route"}


@pytest.mark.parametrize(
    ("key", "path", "bad"),
    [
        (("StatefulSet", "maas-gateway"), ["spec", "template", "spec", "replica"], 3),
        (("StatefulSet", "maas-redis"), ["spec", "replicas"], "one"),
        (
            ("InferenceService", "qwen3-0-6b-instruct"),
            ["spec", "predictor", "model", "storageUri"],
            "Qwen/Qwen3",
        ),
        (("InferenceService", "qwen3-0-6b-instruct"), ["spec", "predictor", "model", "gpus"], 1),
        (("HTTPRoute", "qwen3"), ["spec", "hostnames"], ["Qwen3.maas.local"]),
        (("ServingRuntime", "maas-vllm"), ["spec", "containers"], []),
    ],
)
def test_schemas_reject_broken_objects(
    renderings: dict[str, Objects], key: ObjectId, path: list[str], bad: object
) -> None:
    """The checks have teeth: an unknown field, a wrong type or an invalid value fails validation."""
    item = json.loads(json.dumps(renderings["gpu"][key]))
    target = item
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = bad
    with pytest.raises(jsonschema.ValidationError):
        validate_custom(item) or validate_core(item, CORE_VERSIONS[0])


def test_every_gateway_configuration_assembles_and_names_its_models(
    renderings: dict[str, Objects], tmp_path: Path
) -> None:
    """The configuration each gateway pod assembles is valid, lists exactly the chosen models, shares
    limits through Redis and keeps usage in PostgreSQL with the Secret's password."""
    names = {
        "simulator": ["simulator-model", "simulator-embed"],
        "qwen3": ["qwen3-0-6b-instruct"],
        "granite": ["granite-3-3-2b-instruct"],
        "mistral": ["mistral-7b-instruct"],
        "nomic-embed": ["nomic-embed-text-v1-5"],
    }
    for choice, objects in renderings.items():
        config = gateway_config(objects, tmp_path / choice)
        expected = [model for chosen in CHOICES[choice].models for model in names[chosen]]
        assert [model.name for model in config.models] == expected
        assert config.limits.storage == "redis://maas-redis:6379/0"
        assert config.database.url == "postgresql+asyncpg://maas:test-password@maas-postgres:5432/maas"
        assert config.server.host == "0.0.0.0"
        assert config.metrics.listen == "0.0.0.0:9464"
        assert not config.metrics.on_api_port


def _services(objects: Objects) -> dict[str, dict[str, Any]]:
    found = {name: item for (kind, name), item in objects.items() if kind == "Service"}
    for (kind, name), item in objects.items():
        if kind == "InferenceService":  # KServe's raw deployment Service
            found[f"{name}-predictor"] = {"spec": {"ports": [{"port": 80, "name": "http"}]}, "isvc": item}
    return found


def _pod_templates(objects: Objects) -> list[dict[str, Any]]:
    return [o["spec"]["template"] for (k, _n), o in objects.items() if k in ("Deployment", "StatefulSet")]


def test_references_between_objects_resolve(renderings: dict[str, Objects], tmp_path: Path) -> None:
    """Backends, routes, selectors, volumes, secrets, runtimes and scale targets all name objects and
    ports that the same rendering creates."""
    for choice, objects in renderings.items():
        services = _services(objects)
        config = gateway_config(objects, tmp_path / choice)
        for model in config.models:
            for url in model.backend_urls:
                parsed = urlsplit(url)
                ports = [port["port"] for port in services[str(parsed.hostname)]["spec"]["ports"]]
                assert (parsed.port or 80) in ports, url
        for (kind, name), item in objects.items():
            spec = item.get("spec", {})
            if kind == "HTTPRoute":
                assert all(("Gateway", ref["name"]) in objects for ref in spec["parentRefs"])
                for rule in spec["rules"]:
                    for ref in rule["backendRefs"]:
                        assert ref["port"] in [p["port"] for p in services[ref["name"]]["spec"]["ports"]]
            if kind == "Route":
                ports = services[spec["to"]["name"]]["spec"]["ports"]
                assert spec["port"]["targetPort"] in [p["targetPort"] for p in ports]
            if kind == "InferenceService" and "model" in spec["predictor"]:
                assert ("ServingRuntime", spec["predictor"]["model"]["runtime"]) in objects
            if kind in ("HorizontalPodAutoscaler",):
                assert (spec["scaleTargetRef"]["kind"], spec["scaleTargetRef"]["name"]) in objects
            selector = spec.get("selector")
            if (
                kind in ("Service", "PodDisruptionBudget", "ServiceMonitor")
                and spec.get("type") != "ExternalName"
            ):
                labels = selector.get("matchLabels", selector)
                targets = _pod_templates(objects) if kind != "ServiceMonitor" else list(services.values())
                assert any(
                    labels.items() <= t.get("metadata", {}).get("labels", {}).items() for t in targets
                ), f"{kind}/{name} selects nothing"
            if kind == "ServiceMonitor":
                assert spec["endpoints"][0]["port"] in [
                    p["name"] for p in services["maas-gateway"]["spec"]["ports"]
                ]
        for template in _pod_templates(objects):
            _check_pod(template["spec"], objects)


def _check_pod(pod: dict[str, Any], objects: Objects) -> None:
    if "serviceAccountName" in pod:
        assert ("ServiceAccount", pod["serviceAccountName"]) in objects
    for volume in pod.get("volumes", []):
        if "configMap" in volume:
            assert ("ConfigMap", volume["configMap"]["name"]) in objects
        if "secret" in volume:
            assert ("Secret", volume["secret"]["secretName"]) in objects
    for container in pod["containers"] + pod.get("initContainers", []):
        for variable in container.get("env", []):
            ref = variable.get("valueFrom", {}).get("secretKeyRef")
            if ref and not ref.get("optional"):
                secret = objects[("Secret", ref["name"])]
                assert ref["key"] in {**secret.get("data", {}), **secret.get("stringData", {})}


def _routed_paths(kind: str, spec: dict[str, Any]) -> list[tuple[str, str]]:
    """(match type, path) of every path a Route or HTTPRoute sends to a backend; no path means '/'."""
    if kind == "Route":
        return [("PathPrefix", spec.get("path", "/"))]  # the router matches a Route's path as a prefix
    paths = []
    for rule in spec["rules"]:
        for match in rule.get("matches", [{}]):
            path = match.get("path", {})
            paths.append((path.get("type", "PathPrefix"), path.get("value", "/")))
    return paths


def test_no_route_publishes_metrics_or_the_whole_host(renderings: dict[str, Objects]) -> None:
    """No Route or HTTPRoute matches `/` or `/metrics`: ingress reaches only /v1, the model path prefixes
    and /portal. Metrics have their own container and Service port, which the ServiceMonitor scrapes
    and no route targets."""
    for objects in renderings.values():
        for (kind, name), item in objects.items():
            if kind not in ("Route", "HTTPRoute"):
                continue
            for match_type, path in _routed_paths(kind, item["spec"]):
                assert path not in ("/", "/metrics"), f"{kind}/{name} routes {path}"
                assert not "/metrics".startswith(path), f"{kind}/{name} routes {path}, which covers /metrics"
                assert match_type in ("PathPrefix", "Exact"), f"{kind}/{name} matches by {match_type}"
                assert path == "/v1" or path == "/portal" or path.strip("/") in _path_prefixes(objects)
            if kind == "Route":
                assert item["spec"]["port"]["targetPort"] == "http"
            else:
                ports = [ref["port"] for rule in item["spec"]["rules"] for ref in rule["backendRefs"]]
                assert set(ports) == {8000}
        gateway = objects[("StatefulSet", "maas-gateway")]["spec"]["template"]["spec"]["containers"][0]
        assert {"name": "metrics", "containerPort": 9464, "protocol": "TCP"} in gateway["ports"]
        service_ports = {p["name"]: p for p in objects[("Service", "maas-gateway")]["spec"]["ports"]}
        assert service_ports["metrics"]["targetPort"] == "metrics"
        monitor = objects.get(("ServiceMonitor", "maas-gateway"))
        if monitor is not None:
            assert monitor["spec"]["endpoints"][0]["port"] == "metrics"


def _path_prefixes(objects: Objects) -> set[str]:
    config = objects[("ConfigMap", "maas-gateway-config")]["data"]
    prefixes = set()
    for text in config.values():
        for model in (yaml.safe_load(text) or {}).get("models", []):
            if model.get("path_prefix"):
                prefixes.add(model["path_prefix"])
    return prefixes


def test_gpu_models_force_usage_in_streams_with_the_origin_tuning(renderings: dict[str, Objects]) -> None:
    """Every vLLM model outside the T4 tuning starts with --enable-force-include-usage; generative ones
    use 85% of GPU memory and one GPU each."""
    for (kind, name), item in renderings["all-models"].items():
        if kind != "InferenceService" or "model" not in item["spec"]["predictor"]:
            continue
        model = item["spec"]["predictor"]["model"]
        assert model["resources"]["limits"]["nvidia.com/gpu"] == "1"
        if name != "nomic-embed-text-v1-5":
            assert "--enable-force-include-usage" in model["args"]
            assert "--gpu-memory-utilization=0.85" in model["args"]


def test_dashboard_file_is_generated_from_the_metric_names() -> None:
    """The shipped dashboard is exactly what `maas deploy dashboard` builds from METRICS, uses every
    metric, and no other manifest names a metric (so a rename happens in one place)."""
    shipped = ROOT / "components" / "metrics" / "dashboard.json"
    assert shipped.read_text("utf-8") == dashboard_json()
    dashboard = build_dashboard()
    expressions = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    for metric in METRICS.values():
        assert any(metric in expression for expression in expressions), metric
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
    for path in ROOT.rglob("*.yaml"):
        text = path.read_text("utf-8")
        assert not any(metric in text for metric in METRICS.values()), path


def test_every_gateway_replica_spools_to_a_persistent_volume_of_its_own(
    renderings: dict[str, Objects],
) -> None:
    """In every choice the gateway is a StatefulSet whose spool (the assembled configuration's
    database.spool_dir) is on a volume claimed per replica and kept on scale-down and deletion, never an
    emptyDir that dies with the pod; its pods run as a fixed user with fsGroup (but for OpenShift, whose
    SCC assigns both) so the volume is writable."""
    for name, objects in renderings.items():
        gateway = objects[("StatefulSet", "maas-gateway")]["spec"]
        pod = gateway["template"]["spec"]
        assert "spool" not in {volume["name"] for volume in pod["volumes"]}, name
        claims = {claim["metadata"]["name"]: claim["spec"] for claim in gateway["volumeClaimTemplates"]}
        assert claims["spool"]["accessModes"] == ["ReadWriteOnce"]
        assert gateway["persistentVolumeClaimRetentionPolicy"] == {
            "whenScaled": "Retain",
            "whenDeleted": "Retain",
        }
        mounts = {mount["name"]: mount["mountPath"] for mount in pod["containers"][0]["volumeMounts"]}
        parts = objects[("ConfigMap", "maas-gateway-config")]["data"]
        spool_dir = yaml.safe_load(parts["60-database.yaml"])["database"]["spool_dir"]
        assert spool_dir.startswith(mounts["spool"] + "/"), name
        if "openshift" in name:
            assert "fsGroup" not in pod["securityContext"]
        else:
            assert pod["securityContext"]["fsGroup"] == 10001
