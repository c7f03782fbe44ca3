"""Choosing Kustomize components from deployment options, and building them with kustomize.

There is one source of truth: the tree in ``manifests/``. A choice of options becomes a small temporary
kustomization that references ``manifests/base`` and the chosen components, and sets replicas, namespace,
image and managed-service hosts through kustomize's own fields; ``kubectl kustomize`` (or ``kustomize
build``) then does all the work. The ready overlays in ``manifests/overlays`` are the same lists written
down, and ``OVERLAYS`` says which options each one stands for (a test keeps the two in step).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from maas_gateway.deploy.keycloak import KeycloakURLError, check_url, is_routable

__all__ = [
    "DEFAULT_NAMESPACE",
    "GATEWAY_IMAGE",
    "MODELS",
    "OVERLAYS",
    "RenderError",
    "RenderOptions",
    "components_for",
    "find_kustomize",
    "kustomization_for",
    "manifests_root",
    "render",
]

GATEWAY_IMAGE = "ghcr.io/maas-gateway/maas-gateway"
DEFAULT_NAMESPACE = "maas"
MODELS = ("simulator", "qwen3", "granite", "mistral", "nomic-embed")
_VLLM_MODELS = frozenset({"qwen3", "granite", "mistral", "nomic-embed"})
_DEFAULT_MAX_REPLICAS = 10
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_HOST = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*$")
_IMAGE = re.compile(
    r"^(?P<name>[^@\s]+?)(?::(?P<tag>\w[\w.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$"
)


class RenderError(Exception):
    """The manifests cannot be rendered; the message says why and what to do."""


@dataclass(frozen=True)
class RenderOptions:
    """What to deploy. The defaults are the simulator behind the Gateway API, with metrics."""

    models: tuple[str, ...] = ("simulator",)
    kserve_simulator: bool = False
    gpu_t4: bool = False
    openshift: bool = False
    metrics: bool = True
    replicas: int | None = None
    namespace: str | None = None
    image: str | None = None
    external_redis: str | None = None
    external_postgres: str | None = None
    keycloak: bool = False
    keycloak_url: str | None = None
    gateway_url: str | None = None

    def __post_init__(self) -> None:
        unknown = [model for model in self.models if model not in MODELS]
        if unknown:
            raise RenderError(f"Unknown model '{unknown[0]}'; the models are {', '.join(MODELS)}.")
        if not self.models:
            raise RenderError("Choose at least one model to deploy.")
        if len(set(self.models)) != len(self.models):
            raise RenderError("Each model can be chosen only once.")
        if self.gpu_t4 and "qwen3" not in self.models:
            raise RenderError("The T4 tuning applies to the Qwen3 model; add it to the models.")
        if self.kserve_simulator and "simulator" not in self.models:
            raise RenderError("The KServe simulator replaces the simulator; add the simulator to the models.")
        if self.replicas is not None and self.replicas < 1:
            raise RenderError("The number of gateway replicas must be at least 1.")
        if self.namespace is not None and not _DNS_LABEL.match(self.namespace):
            raise RenderError(
                f"'{self.namespace}' is not a valid namespace; use lower-case letters, digits and '-'."
            )
        if self.image is not None and not _IMAGE.match(self.image):
            raise RenderError(f"'{self.image}' is not an image reference such as registry/name:tag.")
        for label, host in (("Redis", self.external_redis), ("PostgreSQL", self.external_postgres)):
            if host is not None and not _HOST.match(host):
                raise RenderError(
                    f"'{host}' is not a host name for the managed {label}; give no scheme or port."
                )
        self._check_keycloak()

    def _check_keycloak(self) -> None:
        if not self.keycloak and (self.keycloak_url is not None or self.gateway_url is not None):
            raise RenderError("The Keycloak and gateway addresses apply to Keycloak; add --keycloak.")
        try:
            for field, label in (("keycloak_url", "Keycloak"), ("gateway_url", "the gateway")):
                url = getattr(self, field)
                if url is not None:
                    object.__setattr__(self, field, check_url(label, url))
        except KeycloakURLError as exc:
            raise RenderError(str(exc)) from None
        url = self.keycloak_url
        if self.openshift and url is not None and is_routable(url) and not url.startswith("https://"):
            raise RenderError(
                f"The OpenShift Routes for Keycloak end TLS, so '{url}' must start with https:// "
                "(it is the issuer in every token)."
            )


# The ready overlays in manifests/overlays, and the options each one stands for.
OVERLAYS: dict[str, RenderOptions] = {
    "kind": RenderOptions(models=("simulator",), metrics=False),
    "gpu": RenderOptions(models=("simulator", "qwen3")),
    "gpu-t4": RenderOptions(models=("simulator", "qwen3"), gpu_t4=True),
    "openshift": RenderOptions(models=("simulator",), openshift=True),
    "all-models": RenderOptions(models=MODELS),
}


def components_for(options: RenderOptions) -> list[str]:
    """The components, relative to the manifests root and in the order they must apply."""
    components: list[str] = []
    route = "route" if options.openshift else "httproute"
    for model in options.models:
        if model == "simulator" and options.kserve_simulator:
            components.append("components/models/simulator-kserve")
        else:
            components.append(f"components/models/{model}")
        components.append(f"components/models/{model}/{route}")
    if _VLLM_MODELS.intersection(options.models):
        components.append("components/vllm-runtime")
    if options.gpu_t4:
        components.append("components/models/qwen3/gpu-t4")
    components.append("components/openshift" if options.openshift else "components/gateway-api")
    if options.metrics:
        components.append("components/metrics")
    if options.external_redis is not None:
        components.append("components/external-redis")
    if options.external_postgres is not None:
        components.append("components/external-postgres")
    if options.keycloak:
        components.append("components/keycloak")
        if options.keycloak_url is not None and is_routable(options.keycloak_url):
            components.append(f"components/keycloak/{route}")
        if options.openshift:
            components.append("components/keycloak/openshift")
    return components


def kustomization_for(options: RenderOptions, root: str) -> dict[str, Any]:
    """The kustomization for ``options``; ``root`` is the manifests root relative to where it is written."""
    kustomization: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": options.namespace or DEFAULT_NAMESPACE,
        "labels": [{"pairs": {"app.kubernetes.io/part-of": "maas-gateway"}, "includeSelectors": False}],
        "resources": [f"{root}/base"],
        "components": [f"{root}/{component}" for component in components_for(options)],
    }
    patches: list[dict[str, Any]] = []
    if options.replicas is not None:
        kustomization["replicas"] = [{"name": "maas-gateway", "count": options.replicas}]
        most = max(options.replicas, _DEFAULT_MAX_REPLICAS)
        bounds = [
            {"op": "replace", "path": "/spec/minReplicas", "value": options.replicas},
            {"op": "replace", "path": "/spec/maxReplicas", "value": most},
        ]
        patches.append(_json_patch("autoscaling", "HorizontalPodAutoscaler", "maas-gateway", bounds))
    if options.image is not None:
        kustomization["images"] = [_image_override(options.image)]
    managed = (("maas-redis", options.external_redis), ("maas-postgres", options.external_postgres))
    for service, host in managed:
        if host is not None:
            change = [{"op": "replace", "path": "/spec/externalName", "value": host}]
            patches.append(_json_patch("", "Service", service, change))
    patches.extend(_keycloak_patches(options))
    if patches:
        kustomization["patches"] = patches
    return kustomization


def _keycloak_patches(options: RenderOptions) -> list[dict[str, Any]]:
    """The addresses in ConfigMap maas-keycloak-settings, and the Keycloak routes' host.

    Patches rather than a merging configMapGenerator: the component's generator runs after this
    kustomization's own generators, and kustomize still renames the patched ConfigMap by its content.
    """
    if not options.keycloak:
        return []
    patches: list[dict[str, Any]] = []
    settings = [
        {"op": "replace", "path": f"/data/{key}", "value": url}
        for key, url in (("keycloak-url", options.keycloak_url), ("gateway-url", options.gateway_url))
        if url is not None
    ]
    if settings:
        patches.append(_json_patch("", "ConfigMap", "maas-keycloak-settings", settings))
    url = options.keycloak_url
    if url is not None and is_routable(url):
        host = str(urlsplit(url).hostname)
        if options.openshift:
            host_change: list[dict[str, Any]] = [{"op": "replace", "path": "/spec/host", "value": host}]
            for name in ("maas-keycloak", "maas-keycloak-resources"):
                patches.append(_json_patch("route.openshift.io", "Route", name, host_change))
        else:
            hostnames: list[dict[str, Any]] = [{"op": "replace", "path": "/spec/hostnames", "value": [host]}]
            patches.append(_json_patch("gateway.networking.k8s.io", "HTTPRoute", "maas-keycloak", hostnames))
    return patches


def _json_patch(group: str, kind: str, name: str, operations: list[dict[str, Any]]) -> dict[str, Any]:
    target = {"kind": kind, "name": name}
    if group:
        target["group"] = group
    return {"target": target, "patch": json.dumps(operations)}


def _image_override(image: str) -> dict[str, str]:
    match = _IMAGE.match(image)
    assert match is not None  # checked by RenderOptions
    override = {"name": GATEWAY_IMAGE, "newName": match["name"]}
    if match["digest"]:
        override["digest"] = match["digest"]
    elif match["tag"]:
        override["newTag"] = match["tag"]
    return override


def manifests_root() -> Path:
    """The Kustomize tree shipped in this package (a real directory in a wheel or a checkout)."""
    root = Path(str(resources.files("maas_gateway.deploy").joinpath("manifests")))
    if not (root / "base" / "kustomization.yaml").is_file():
        raise RenderError(
            f"The deployment manifests are missing from {root}; reinstall maas-gateway to restore them."
        )
    return root


def find_kustomize() -> list[str]:
    """The command that builds a kustomization: ``kubectl kustomize``, or a standalone ``kustomize``."""
    kubectl = shutil.which("kubectl")
    if kubectl is not None:
        return [kubectl, "kustomize"]
    kustomize = shutil.which("kustomize")
    if kustomize is not None:
        return [kustomize, "build"]
    raise RenderError(
        "Neither kubectl nor kustomize is installed; install kubectl (it includes kustomize) to render."
    )


def render(options: RenderOptions, *, command: list[str] | None = None) -> str:
    """The manifests for ``options`` as one multi-document YAML text."""
    builder = command if command is not None else find_kustomize()
    root = manifests_root()
    with tempfile.TemporaryDirectory(prefix="maas-render-") as work:
        relative = Path(os.path.relpath(root, work)).as_posix()
        text = yaml.safe_dump(kustomization_for(options, relative), sort_keys=False)
        Path(work, "kustomization.yaml").write_text(text, "utf-8")
        try:
            built = subprocess.run([*builder, work], capture_output=True, text=True, timeout=120, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RenderError(f"Running {' '.join(builder)} failed: {exc}.") from None
    if built.returncode != 0:
        raise RenderError(f"kustomize could not build the manifests:\n{built.stderr.strip()}")
    return built.stdout
