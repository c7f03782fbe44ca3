"""The Keycloak component's renderings and what Keycloak makes of them, for the deploy tests.

Keycloak cannot run in the tests; these helpers read the rendered objects as Keycloak and the gateway's
configuration step would: the container's environment resolved from ConfigMaps and Secrets, and the realm
file with its ``${VAR}`` placeholders filled in from that environment, as Keycloak does at import.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

import yaml

from maas_gateway.deploy import RenderOptions, manifests_root, render
from maas_gateway.deploy.keycloak import CLIENT_ID, secret_manifest
from tests.support.manifests import ObjectId, by_id, parse, resolve_env

__all__ = [
    "CHOICES",
    "PLACEHOLDER",
    "Objects",
    "client_of",
    "demo_key_tiers",
    "imported_realm",
    "keycloak_container",
    "keycloak_env",
    "realm_file",
    "render_choices",
    "with_secret",
]

Objects = dict[ObjectId, dict[str, Any]]
PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

# Choices that between them use every Keycloak component and address option.
CHOICES = {
    "default": RenderOptions(keycloak=True),
    "gateway-api": RenderOptions(
        keycloak=True, keycloak_url="http://keycloak.maas.local", gateway_url="http://simulator.maas.local"
    ),
    "openshift": RenderOptions(
        keycloak=True,
        openshift=True,
        namespace="llm",
        keycloak_url="https://sso.apps.example.com",
        gateway_url="https://maas-gateway.apps.example.com",
    ),
    "openshift-port-forward": RenderOptions(keycloak=True, openshift=True),
    "managed-postgres": RenderOptions(keycloak=True, external_postgres="pg.example.com", metrics=False),
}


def with_secret(objects: Objects, namespace: str) -> Objects:
    """The rendering plus the Secret an operator creates with `maas deploy keycloak-secrets`."""
    secret = yaml.safe_load(secret_manifest(namespace))
    return {**objects, ("Secret", secret["metadata"]["name"]): secret}


def render_choices(command: list[str]) -> dict[str, Objects]:
    """Each choice rendered through kustomize, with the generated Secret added as the docs say."""
    return {
        name: with_secret(by_id(parse(render(options, command=command))), options.namespace or "maas")
        for name, options in CHOICES.items()
    }


def keycloak_container(objects: Objects) -> dict[str, Any]:
    pod = objects[("Deployment", "maas-keycloak")]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return dict(container)


def keycloak_env(objects: Objects) -> dict[str, str]:
    """Keycloak's environment, each reference resolved in ``objects``."""
    variables = keycloak_container(objects).get("env", [])
    return {variable["name"]: resolve_env(variable, objects) for variable in variables}


def imported_realm(objects: Objects) -> dict[str, Any]:
    """The realm file as Keycloak imports it: each ${VAR} replaced from the Keycloak container's env."""
    (text,) = objects[("ConfigMap", "maas-keycloak-realm")]["data"].values()
    environment = keycloak_env(objects)

    def fill(value: Any) -> Any:
        if isinstance(value, str):
            return PLACEHOLDER.sub(lambda match: environment[match.group(1)], value)
        if isinstance(value, list):
            return [fill(item) for item in value]
        if isinstance(value, dict):
            return {key: fill(item) for key, item in value.items()}
        return value

    return dict(fill(json.loads(text)))


def realm_file() -> dict[str, Any]:
    """The realm file as shipped, placeholders and all."""
    path = manifests_root() / "components" / "keycloak" / "realm.json"
    return dict(json.loads(path.read_text("utf-8")))


def client_of(realm: dict[str, Any]) -> dict[str, Any]:
    (client,) = [client for client in realm["clients"] if client["clientId"] == CLIENT_ID]
    return dict(client)


def demo_key_tiers() -> dict[str, str]:
    """Each demo key's user and tier in `maas up`'s configuration (config/demo.yaml)."""
    text = resources.files("maas_gateway.config").joinpath("demo.yaml").read_text("utf-8")
    return {key["user"]: key["tier"] for key in yaml.safe_load(text)["api_keys"]}
