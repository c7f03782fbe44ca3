"""Rendering the Kustomize tree in tests and checking objects against Kubernetes and CRD schemas.

Core objects are validated strictly (unknown fields are errors) against the JSON schemas that the
kubernetes-validate package ships for each Kubernetes release, offline. Custom resources are validated
against the structural CRD subsets in tests/fixtures/crd_schemas, whose container, pod and metadata
fields refer to the same Kubernetes definitions.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import re
import shutil
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from referencing import Registry, Resource

from maas_gateway.config import GatewayConfig
from maas_gateway.deploy.config_parts import assemble

__all__ = [
    "CORE_VERSIONS",
    "build",
    "by_id",
    "diff",
    "gateway_config",
    "init_environ",
    "kustomize_or_skip",
    "parse",
    "resolve_env",
    "validate_core",
    "validate_custom",
]

# The oldest Kubernetes release the manifests claim to support, and the newest the package knows.
CORE_VERSIONS = ("1.29.0", "1.37.0")
_CRD_DIR = Path(__file__).parent.parent / "fixtures" / "crd_schemas"
_DEFINITIONS = "https://kubernetes.io/api/_definitions.json"
_GENERATED = re.compile(
    r"\b(maas-gateway-config|maas-gateway-keys|maas-keycloak-settings|maas-keycloak-realm)-[a-z0-9]{10}\b"
)
ObjectId = tuple[str, str]


def kustomize_or_skip() -> list[str]:
    """The kustomize command; a missing kubectl fails the test in CI and skips it elsewhere."""
    kubectl = shutil.which("kubectl")
    if kubectl is not None:
        return [kubectl, "kustomize"]
    message = "kubectl is not installed, so the Kustomize tree cannot be rendered."
    if os.environ.get("CI") == "true":
        pytest.fail(message + " CI must have it.")
    pytest.skip(message)


def build(command: list[str], directory: Path) -> str:
    result = subprocess.run([*command, str(directory)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"kustomize failed on {directory}:\n{result.stderr}"
    return result.stdout


def parse(text: str, *, normalise: bool = True) -> list[dict[str, Any]]:
    """The objects of a multi-document YAML text; generated name suffixes are removed when ``normalise``."""
    if normalise:
        text = _GENERATED.sub(r"\1", text)
    return [document for document in yaml.safe_load_all(text) if document]


def by_id(objects: list[dict[str, Any]]) -> dict[ObjectId, dict[str, Any]]:
    return {(item["kind"], item["metadata"]["name"]): item for item in objects}


def _schema_dir(version: str, root: Any) -> Any:
    return root.joinpath("kubernetes-json-schema", f"v{version}-local-strict")


@functools.cache
def _registry(version: str) -> Registry[Any]:
    root = resources.files("kubernetes_validate")
    definitions = json.loads(_schema_dir(version, root).joinpath("_definitions.json").read_text("utf-8"))
    registry: Registry[Any] = Registry().with_resource(_DEFINITIONS, Resource.from_contents(definitions))
    return registry


@functools.cache
def _core_validator(version: str, kind: str, api_version: str) -> jsonschema.Draft202012Validator | None:
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    path = _schema_dir(version, resources.files("kubernetes_validate")).joinpath(
        f"{kind.lower()}-{group_version}.json"
    )
    if not path.is_file():
        return None
    schema = json.loads(path.read_text("utf-8"))
    return jsonschema.Draft202012Validator(schema, registry=_registry(version))


def validate_core(item: dict[str, Any], version: str) -> bool:
    """Validate a core object strictly; False when ``version`` has no schema for its kind."""
    validator = _core_validator(version, item["kind"], item["apiVersion"])
    if validator is None:
        return False
    validator.validate(item)
    return True


@functools.cache
def _custom_validator(kind: str, api_version: str) -> jsonschema.Draft202012Validator | None:
    path = _CRD_DIR / f"{kind.lower()}-{api_version.replace('/', '-')}.json"
    if not path.is_file():
        return None
    schema = json.loads(path.read_text("utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, registry=_registry(CORE_VERSIONS[0]))


def validate_custom(item: dict[str, Any]) -> bool:
    """Validate a custom resource against its CRD subset; False when there is none for its kind."""
    validator = _custom_validator(item["kind"], item["apiVersion"])
    if validator is None:
        return False
    validator.validate(item)
    return True


def diff(
    before: dict[ObjectId, dict[str, Any]], after: dict[ObjectId, dict[str, Any]]
) -> tuple[set[ObjectId], set[ObjectId], set[ObjectId]]:
    """The objects added, removed and changed from ``before`` to ``after``."""
    added = set(after) - set(before)
    removed = set(before) - set(after)
    changed = {key for key in set(before) & set(after) if before[key] != after[key]}
    return added, removed, changed


def gateway_config(objects: dict[ObjectId, dict[str, Any]], directory: Path) -> GatewayConfig:
    """The configuration a gateway pod of this rendering assembles at start."""
    parts, keys = directory / "config.d", directory / "keys.d"
    parts.mkdir(parents=True)
    keys.mkdir(parents=True)
    for name, text in objects[("ConfigMap", "maas-gateway-config")]["data"].items():
        (parts / name).write_text(text, "utf-8")
    for name, encoded in objects[("Secret", "maas-gateway-keys")]["data"].items():
        (keys / name).write_bytes(base64.b64decode(encoded))
    config, _text = assemble([parts, keys], environ=init_environ(objects))
    return config


def init_environ(objects: dict[ObjectId, dict[str, Any]]) -> dict[str, str]:
    """The environment of the gateway's configuration step, its references resolved in ``objects``.

    The database password is ``test-password`` whatever the placeholder Secret says; other Secrets must
    be in ``objects`` (add the ones an operator creates by hand, such as maas-keycloak).
    """
    pod = objects[("StatefulSet", "maas-gateway")]["spec"]["template"]["spec"]
    (step,) = [c for c in pod["initContainers"] if c["name"] == "assemble-config"]
    environ = {}
    for variable in step.get("env", []):
        environ[variable["name"]] = resolve_env(variable, objects)
    environ["MAAS_DATABASE_PASSWORD"] = "test-password"  # a test's stand-in
    return environ


def resolve_env(variable: dict[str, Any], objects: dict[ObjectId, dict[str, Any]]) -> str:
    """A container's environment variable's value: literal, or read from a ConfigMap or Secret."""
    if "value" in variable:
        return str(variable["value"])
    source = variable["valueFrom"]
    if "configMapKeyRef" in source:
        ref = source["configMapKeyRef"]
        return str(objects[("ConfigMap", ref["name"])]["data"][ref["key"]])
    ref = source["secretKeyRef"]
    secret = objects[("Secret", ref["name"])]
    if ref["key"] in secret.get("stringData", {}):
        return str(secret["stringData"][ref["key"]])
    return base64.b64decode(secret["data"][ref["key"]]).decode("utf-8")
