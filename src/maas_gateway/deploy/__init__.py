"""Deploying the gateway to Kubernetes and OpenShift, and checking a running deployment.

The manifests are a Kustomize tree shipped inside this package (``manifests/``: a base, components that
add models, ingress, metrics or managed services, and ready overlays). ``render`` builds a choice of
components with kustomize itself, ``gpu`` explains a cluster's GPU nodes, ``config_parts`` assembles the
gateway's configuration file from the parts a deployment mounts, and ``verify`` checks any running
gateway end to end.
"""

from maas_gateway.deploy.render import (
    MODELS,
    OVERLAYS,
    RenderError,
    RenderOptions,
    components_for,
    kustomization_for,
    manifests_root,
    render,
)

__all__ = [
    "MODELS",
    "OVERLAYS",
    "RenderError",
    "RenderOptions",
    "components_for",
    "kustomization_for",
    "manifests_root",
    "render",
]
